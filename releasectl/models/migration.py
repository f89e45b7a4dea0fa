"""`migration.yaml`: optional metadata of one migration."""

from __future__ import annotations

from pydantic import Field

from releasectl.models.base import Model


class MigrationMeta(Model):
    description: str | None = Field(
        default=None, description="What the migration does, shown in plans and PR comments."
    )
    timeout: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,  # an infinite timeout would be none at all
        description="Seconds the up, down or verify part may run.",
    )
    scope: tuple[str, ...] | None = Field(
        default=None,
        description="What the step's backup covers: Redis key patterns, SQL tables, object "
        "names (Kind/name) or file paths, by component type.",
    )
    breaking: bool = Field(
        default=False, description="Applying it needs --allow-breaking (like a major bump)."
    )
