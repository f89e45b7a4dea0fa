from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

API_VERSION = "releasectl/v1"

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _number_to_text(value: Any) -> Any:
    # YAML reads `1.3` as a float and `2` as an int; a semantic version must be text, and the
    # error should quote what the user wrote.
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    return value


def check_semver(value: str) -> str:
    if not SEMVER_RE.match(value):
        raise ValueError(f"{value!r} is not a semantic version (X.Y.Z)")
    return value


def _semver(value: Any) -> Any:
    value = _number_to_text(value)
    if isinstance(value, str):
        return check_semver(value)
    return value


def _name(value: Any) -> Any:
    if isinstance(value, str) and not NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid name (lowercase letters, digits and '-', at most 63)"
        )
    return value


# The patterns below only reach the JSON Schemas (json_schema_extra), for editors: the
# validators above keep their own messages ("'1.3' is not a semantic version (X.Y.Z)").
SemVer = Annotated[
    str,
    BeforeValidator(_semver),
    Field(
        description="A semantic version, X.Y.Z[-pre][+build]",
        examples=["1.3.0"],
        json_schema_extra={"pattern": SEMVER_RE.pattern},
    ),
]
Name = Annotated[str, BeforeValidator(_name), Field(json_schema_extra={"pattern": NAME_RE.pattern})]
