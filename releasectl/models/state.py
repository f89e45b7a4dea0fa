"""Recorded state of an environment, and the `status` document."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from releasectl.models.base import Model
from releasectl.models.plan import Step


class AppliedMigration(Model):
    id: str = Field(description="Migration id, NNNN_slug.")
    version: int = Field(description="The schema version the migration brings (its NNNN).")
    checksum: str = Field(description="SHA-256 of the migration's files when it was applied.")
    applied_at: str = Field(description="UTC time, ISO 8601.")
    plan: str | None = Field(default=None, description="Digest of the plan that applied it.")


class ComponentState(Model):
    version: int | str | None = Field(
        default=None, description="Schema version (migrated) or semantic version (service)."
    )
    applied: tuple[AppliedMigration, ...] = Field(
        default=(), description="Applied migrations, oldest first."
    )
    updated_at: str | None = Field(default=None, description="UTC time of the last change.")


class Journal(Model):
    """Written before a step runs and cleared after it is recorded; present after a crash."""

    plan: str = Field(description="Digest of the plan being applied.")
    index: int = Field(description="0-based index of the step in the plan.")
    step: Step = Field(description="The step that was running.")
    phase: Literal["backup", "run", "verify", "record", "rollback"] = Field(
        description="How far the step got."
    )
    backup_id: str | None = Field(default=None, description="Backup taken before the step.")
    started_at: str = Field(description="UTC time the step started, ISO 8601.")
    actor: str = Field(description="Who ran it.")
    pid: int = Field(description="Process id of the apply.")
    host: str = Field(description="Host name of the apply.")
    pid_started: float | None = Field(
        default=None,
        description="Start time of the apply's process (clock ticks since boot), to tell a "
        "reused pid apart.",
    )
    deadline: str | None = Field(
        default=None,
        description="UTC time by which the step stops by itself (its timeout); until then a "
        "holder on another host may still be acting, and `recover` refuses without --force.",
    )
    pgid: int | None = Field(
        default=None,
        description="Process group of the step's running script, on `host`: `recover` ends it "
        "before rolling the step back.",
    )
    run_id: str | None = Field(
        default=None,
        description="Id given to the step's processes (RELEASECTL_RUN_ID in their environment).",
    )


class HistoryAnchor(Model):
    """Where the history stood at the last entry: a history shorter than `count`, or whose
    entry `count` does not hash to `head`, lost its tail or was rewritten."""

    count: int = Field(ge=0, description="Entries in the history.")
    head: str = Field(description="`hash` of entry `count` (64 zeros when empty).")
    signature: str | None = Field(
        default=None,
        description="HMAC-SHA256 of env, lineage, count and head with the environment's "
        "history key (environments with `history.sign`).",
    )


class ReleaseRecord(Model):
    version: str = Field(description="The release.")
    applied_at: str = Field(description="UTC time it was applied, ISO 8601.")
    applied_by: str = Field(description="Who applied it.")
    plan: str = Field(description="Digest of the plan that applied it.")
    verified: bool = Field(description="Every step ran and verified.")


class State(Model):
    format_version: Literal[1] = Field(default=1, description="Version of this document's shape.")
    env: str = Field(description="The environment.")
    lineage: str = Field(description="Random id given when the state is first written.")
    serial: int = Field(ge=0, description="Incremented on every write.")
    release: str | None = Field(
        default=None, description="Current release, if a whole release was applied."
    )
    components: dict[str, ComponentState] = Field(
        default_factory=dict, description="Recorded version and migrations, by component."
    )
    journal: Journal | None = Field(
        default=None, description="The step a crash interrupted (null: none; see recover)."
    )
    releases: tuple[ReleaseRecord, ...] = Field(
        default=(), description="Releases applied to this environment, oldest first."
    )
    plans: tuple[str, ...] = Field(
        default=(), description="Digests of the plans applied here (a plan applies once)."
    )
    history: HistoryAnchor | None = Field(
        default=None,
        description="Count and head hash of the history, moved by every entry, so a truncated "
        "history is detected.",
    )

    @property
    def dirty(self) -> bool:
        return self.journal is not None


class ComponentStatus(Model):
    version: int | str | None = Field(description="Recorded version (null: none).")
    applied: list[str] = Field(description="Ids of the applied migrations, oldest first.")
    type: str | None = Field(default=None, description="The component's type.")
    desired: int | str | None = Field(
        default=None, description="Version the environment's release wants."
    )
    drift: list[str] = Field(
        default_factory=list, description="Applied migrations whose files changed since."
    )


class Status(Model):
    env: str = Field(description="The environment.")
    release: str | None = Field(description="Recorded release (null: none).")
    dirty: bool = Field(description="A crash interrupted a step: run `releasectl recover`.")
    components: dict[str, ComponentStatus] = Field(description="Every component, by name.")
    serial: int = Field(default=0, description="Serial of the recorded state.")
    lineage: str | None = Field(default=None, description="Lineage of the recorded state.")
    journal: Journal | None = Field(default=None, description="The interrupted step, if any.")
    lock: dict[str, str | int | float | None] | None = Field(
        default=None, description="Who holds the environment's lock (null: nobody)."
    )
    history_problems: list[str] = Field(
        default_factory=list,
        description="What is wrong with the history: an unreadable last entry, a missing tail "
        "(empty: intact as far as the state's anchor shows).",
    )
