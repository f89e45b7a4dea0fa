"""Recorded state of an environment, and the `status` document."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from releasectl.models.base import Model
from releasectl.models.plan import Step


class AppliedMigration(Model):
    id: str = Field(description="Migration id, NNNN_slug.")
    version: int
    checksum: str = Field(description="SHA-256 of the migration's files when it was applied.")
    applied_at: str = Field(description="UTC time, ISO 8601.")
    plan: str | None = Field(default=None, description="Digest of the plan that applied it.")


class ComponentState(Model):
    version: int | str | None = Field(
        default=None, description="Schema version (migrated) or semantic version (service)."
    )
    applied: tuple[AppliedMigration, ...] = ()
    updated_at: str | None = None


class Journal(Model):
    """Written before a step runs and cleared after it is recorded; present after a crash."""

    plan: str = Field(description="Digest of the plan being applied.")
    index: int = Field(description="0-based index of the step in the plan.")
    step: Step
    phase: Literal["backup", "run", "verify", "record", "rollback"]
    backup_id: str | None = None
    started_at: str
    actor: str
    pid: int
    host: str


class ReleaseRecord(Model):
    version: str
    applied_at: str
    applied_by: str
    plan: str
    verified: bool = Field(description="Every step ran and verified.")


class State(Model):
    format_version: Literal[1] = 1
    env: str
    lineage: str = Field(description="Random id given when the state is first written.")
    serial: int = Field(ge=0, description="Incremented on every write.")
    release: str | None = Field(
        default=None, description="Current release, if a whole release was applied."
    )
    components: dict[str, ComponentState] = Field(default_factory=dict)
    journal: Journal | None = None
    releases: tuple[ReleaseRecord, ...] = Field(
        default=(), description="Releases applied to this environment, oldest first."
    )
    plans: tuple[str, ...] = Field(
        default=(), description="Digests of the plans applied here (a plan applies once)."
    )

    @property
    def dirty(self) -> bool:
        return self.journal is not None


class ComponentStatus(Model):
    version: int | str | None
    applied: list[str]
    type: str | None = None
    desired: int | str | None = None
    drift: list[str] = Field(
        default_factory=list, description="Applied migrations whose files changed since."
    )


class Status(Model):
    env: str
    release: str | None
    dirty: bool
    components: dict[str, ComponentStatus]
    serial: int = 0
    lineage: str | None = None
    journal: Journal | None = None
    lock: dict[str, str | int | float | None] | None = None
