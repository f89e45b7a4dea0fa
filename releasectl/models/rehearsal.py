"""A rehearsal (`plan --rehearse`, the `rehearsal` key of a plan document): the plan's steps,
their verify parts and then the rollback, run on throwaway copies of each target's scoped
data, and whether the rollback gave back exactly what the copy held before."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from releasectl.models.analysis import DataChange, RedisChanges
from releasectl.models.base import Model


class Difference(Model):
    what: str = Field(description="The key, table, row set or file that differs.")
    detail: str = Field(description="How it differs.")


class CopyInfo(Model):
    component: str = Field(description="The component the copy is of.")
    type: str = Field(description="The component's type.")
    kind: str | None = Field(
        default=None, description="What the copy is: embedded Redis, SQLite copy, ..."
    )
    made: bool = Field(description="The copy was made (false: see `reason`).")
    reason: str | None = Field(default=None, description="Why the copy was not made.")
    scope: list[str] = Field(default_factory=list, description="What was copied.")
    items: int = Field(default=0, description="Keys, rows or files copied.")
    bytes: int = Field(default=0, description="Size of the snapshot loaded into the copy.")
    seconds: float = Field(default=0.0, description="Time to snapshot and load the copy.")


class StepRehearsal(Model):
    index: int = Field(description="The step's number in `steps` (1-based).")
    component: str = Field(description="The step's component.")
    action: str = Field(description="up, down or deploy.")
    from_: int | str | None = Field(alias="from", description="Version before the step.")
    to: int | str | None = Field(description="Version after the step.")
    migration: str | None = Field(default=None, description="The step's migration.")
    status: Literal["ok", "failed", "not-rehearsed"] = Field(
        description="ok: ran, verified and rolled back (exactly, unless `rollback` is "
        "not-compared); failed: one of them did not; not-rehearsed: see `reason`."
    )
    reason: str | None = Field(default=None, description="Why the step was not rehearsed.")
    run: Literal["ok", "failed"] | None = Field(
        default=None, description="The step's check, backup and run on the copy."
    )
    verify: Literal["ok", "failed", "none"] | None = Field(
        default=None, description="The step's verify part on the copy."
    )
    error: str | None = Field(default=None, description="Why the step failed (phase: error).")
    seconds: float | None = Field(default=None, description="Duration of run and verify.")
    rollback: Literal["exact", "differs", "failed", "not-run", "not-compared"] | None = Field(
        default=None,
        description="exact: after the rollback the copy equals its snapshot from before the "
        "step; differs: see `differences`; not-compared: the rollback ran, but a later step's "
        "rollback had already left the copy different, so there is nothing exact to compare.",
    )
    rollback_by: str | None = Field(
        default=None, description="How it was undone (the rollback step, or the backup)."
    )
    rollback_error: str | None = Field(
        default=None, description="Why the rollback failed or was not compared."
    )
    differences: list[Difference] = Field(
        default_factory=list, description="What differs from the copy before the step."
    )
    observed_redis: RedisChanges | None = Field(
        default=None, description="Keys the step deleted, renamed, expired or created on the copy."
    )
    observed_data: list[DataChange] = Field(
        default_factory=list, description="Tables, columns and rows the step removed on the copy."
    )


class Rehearsal(Model):
    verdict: Literal["ok", "failed", "incomplete", "nothing"] = Field(
        description="ok: every step rehearsed and rolled back exactly; failed: a step or its "
        "rollback failed or differed; incomplete: some steps were not rehearsed; nothing: no "
        "step could be."
    )
    seconds: float = Field(description="Duration of the whole rehearsal.")
    copies: list[CopyInfo] = Field(description="One copy per component, made or not.")
    steps: list[StepRehearsal] = Field(description="Every step of the plan, in order.")
