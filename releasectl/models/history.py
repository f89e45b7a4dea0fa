"""One line of the append-only, hash-chained audit history."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from releasectl.models.base import Model

Result = Literal["success", "failed", "rolled_back", "skipped", "started"]


class HistoryEntry(Model):
    seq: int = Field(ge=1, description="1-based position in the history.")
    time: str = Field(description="UTC time the entry was written, ISO 8601.")
    actor: str
    env: str
    action: str = Field(
        description="up, down, deploy, backup, restore, rollback, unlock, "
        "recover, apply, lock-takeover, ..."
    )
    component: str | None = None
    migration: str | None = None
    from_: int | str | None = Field(default=None, alias="from")
    to: int | str | None = None
    duration: float | None = Field(default=None, description="Seconds.")
    size: int | None = Field(default=None, ge=0, description="Bytes stored (backups).")
    result: Result
    error: str | None = None
    plan: str | None = Field(default=None, description="Plan digest.")
    backup: str | None = Field(default=None, description="Backup id.")
    release: str | None = None
    output: str | None = Field(default=None, description="Captured output (scripts), redacted.")
    imported: bool | None = Field(
        default=None,
        description="True for an entry imported from the old framework's migration_history.csv "
        "(`import-legacy`): it tells what happened before releasectl, as that file said.",
    )
    source: str | None = Field(
        default=None,
        description="Where an imported or baseline entry came from (file:line of the old "
        "history, or the state file).",
    )
    details: dict[str, str] | None = Field(
        default=None,
        description="Columns of an imported history row that have no field of their own "
        "(the old `event`, notes, ...).",
    )
    prev: str = Field(description="SHA-256 of the previous entry's line (64 zeros for the first).")
    hash: str = Field(description="SHA-256 of this entry without `hash`, chained through `prev`.")
