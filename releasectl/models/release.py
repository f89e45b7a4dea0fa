"""`releases/<X.Y.Z>.yaml`: the desired version of every component."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from releasectl.models.base import SEMVER_RE, Model, SemVer
from releasectl.models.constraints import SCHEMA_PATTERN, check_syntax


def _pin_version(value: Any) -> Any:
    # An integer is a migration number; anything else is kept as text so the workspace loader
    # can check it against the component's type and quote it back ('1.3' not 1.3).
    if isinstance(value, bool):
        raise ValueError("must be a migration number or a semantic version, not a boolean")
    if isinstance(value, float):
        return str(value)
    return value


PinVersion = Annotated[
    Annotated[int, WithJsonSchema({"type": "integer", "minimum": 0})]
    | Annotated[str, WithJsonSchema({"type": "string", "pattern": SEMVER_RE.pattern})],
    BeforeValidator(_pin_version),
    Field(
        description="Migration number (redis, kubernetes, cedar, sql, script) or semantic "
        "version (service).",
        examples=[2, "1.3.0"],
    ),
]
ConstraintText = Annotated[
    str,
    BeforeValidator(lambda v: check_syntax(v) if isinstance(v, str | int) else v),
    WithJsonSchema(
        {
            "description": "Comma-separated clauses: >=2, >=1.1.0,<2.0.0, ^1.2, ~1.2.3, ==1.0.0",
            "anyOf": [
                {"type": "string", "pattern": SCHEMA_PATTERN},
                {"type": "integer", "minimum": 0},
            ],
        }
    ),
    Field(description="Comma-separated clauses: >=2, >=1.1.0,<2.0.0, ^1.2, ~1.2.3, ==1.0.0"),
]


class Pin(Model):
    version: PinVersion
    requires: dict[str, ConstraintText] = Field(
        default_factory=dict,
        description="Versions of other components this version needs; checked in the desired "
        "state and after every step of a plan.",
    )


class Release(Model):
    apiVersion: Literal["releasectl/v1"] = Field(
        default="releasectl/v1", description="Version of the file format."
    )
    kind: Literal["Release"] = Field(default="Release", description="A release manifest.")
    version: SemVer
    description: str | None = Field(default=None, description="What this release brings.")
    date: str | None = Field(default=None, description="Release date (YYYY-MM-DD), informative.")
    components: dict[str, Pin] = Field(
        description="The desired version of every component, by name (as in releasectl.yaml)."
    )
    upgrades_from: ConstraintText | None = Field(
        default=None,
        description="Recorded releases that may move here directly (and that this release may "
        "be rolled back to).",
    )
    notes: str | None = Field(default=None, description="Free text for the changelog.")
