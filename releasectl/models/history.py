"""One line of the append-only, hash-chained audit history."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from releasectl.models.base import Model

Result = Literal["success", "failed", "rolled_back", "skipped", "started"]


class HistoryEntry(Model):
    seq: int = Field(ge=1, description="1-based position in the history.")
    time: str = Field(description="UTC time the entry was written, ISO 8601.")
    actor: str = Field(description="Who ran it: the CI actor, the git author or the OS user.")
    env: str = Field(description="The environment.")
    action: str = Field(
        description="up, down, deploy, backup, restore, rollback, unlock, "
        "recover, apply, lock-takeover, ..."
    )
    component: str | None = Field(default=None, description="The component (null: none).")
    migration: str | None = Field(default=None, description="Migration id, NNNN_slug.")
    from_: int | str | None = Field(
        default=None, alias="from", description="Version before the action (null: none)."
    )
    to: int | str | None = Field(default=None, description="Version after the action.")
    duration: float | None = Field(default=None, description="Seconds.")
    size: int | None = Field(default=None, ge=0, description="Bytes stored (backups).")
    result: Result = Field(description="How it ended.")
    error: str | None = Field(default=None, description="Why it failed (redacted).")
    plan: str | None = Field(default=None, description="Plan digest.")
    backup: str | None = Field(default=None, description="Backup id.")
    release: str | None = Field(default=None, description="Release being applied.")
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
    hash: str = Field(
        description="SHA-256 of this entry without `hash` and `sig`, chained through `prev`."
    )
    forced: bool | None = Field(
        default=None, description="True when the command ran with --force (unlock, recover)."
    )
    sig: str | None = Field(
        default=None,
        description="HMAC-SHA256 of `hash` with the environment's history key (history.sign).",
    )
