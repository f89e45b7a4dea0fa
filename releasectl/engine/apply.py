"""The engine: runs a Plan under the environment's lock, one step at a time.

Every target is checked before the first step (engine/preflight.py). For each step: pre-check,
journal entry, scoped backup, run and verify within a deadline that also ends with the lock's
lease or a cancellation (engine/lease.py, engine/signals.py), then the new version recorded and
the journal cleared in one atomic state write, and the history appended. On failure: roll the
step back (restore its backup or run the reverse part), leave the recorded versions as they
were, record the failure and stop. A crash leaves the journal behind: `status` shows the
environment dirty and `recover` rolls the step back, or forward when it had verified.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import IO

from releasectl.engine import signals
from releasectl.engine.failure import failure_error, unrecorded
from releasectl.engine.journal import (
    Completed,
    entry,
    recorded_components,
    undo_completed,
    undo_step,
)
from releasectl.engine.lease import LEASE_LAPSED, lease_lapsed, record_processes, step_deadline
from releasectl.engine.preflight import preflight
from releasectl.engine.session import Session
from releasectl.errors import (
    DeniedError,
    DirtyError,
    InputError,
    MigrationFailed,
    ReleasectlError,
    StaleError,
)
from releasectl.models.plan import Plan, Step
from releasectl.models.state import (
    ReleaseRecord,
    State,
)
from releasectl.observe.events import (
    BackupFailed,
    BackupWritten,
    StepFailed,
    StepFinished,
    StepStarted,
)
from releasectl.planning.build import plan_migrations, plan_problems, raise_problems
from releasectl.planning.drift import find_drift
from releasectl.planning.kinds import operation_of
from releasectl.planning.planner import has_changes, plan_digest
from releasectl.state.base import Lock
from releasectl.targets.base import Failure
from releasectl.util import failpoints, timeutil
from releasectl.workspace.catalogue import Migration

KEEP_PLANS = 200


@dataclass
class StepOutcome:
    index: int
    step: Step
    result: str  # success | failed
    duration: float
    backup: str | None = None
    output: str | None = None
    error: str | None = None
    rollback: str | None = None


@dataclass
class ApplyResult:
    plan: Plan
    outcomes: list[StepOutcome] = field(default_factory=list)
    state: State | None = None
    changed: bool = False


class StepReporter:
    """Optional hooks for progress output; the CLI passes one in."""

    def step_started(self, index: int, total: int, step: Step) -> None:
        pass

    def step_finished(self, index: int, total: int, outcome: StepOutcome) -> None:
        pass


class StepEvents(StepReporter):
    """Emits each step's start and end on the session's event sink, then calls `inner`."""

    def __init__(self, inner: StepReporter, session: Session) -> None:
        self.inner, self.session = inner, session

    def step_started(self, index: int, total: int, step: Step) -> None:
        where = (self.session.env, index, total, step.component, step.action, step.from_, step.to)
        self.session.events.emit(StepStarted(*where, step.migration, at=time.time()))
        self.inner.step_started(index, total, step)

    def step_finished(self, index: int, total: int, outcome: StepOutcome) -> None:
        s, took = outcome.step, round(outcome.duration, 3)
        where = (self.session.env, index, total, s.component, s.action, s.from_, s.to, s.migration)
        self.session.events.emit(
            StepFinished(*where, took, outcome.backup)
            if outcome.result == "success"
            else StepFailed(*where, took, outcome.backup, outcome.error or "", outcome.rollback)
        )
        self.inner.step_finished(index, total, outcome)


class Engine:
    def __init__(self, session: Session, steps: StepReporter | None = None) -> None:
        self.session = session
        self.workspace = session.workspace
        self.env = session.env
        self.steps: StepReporter = StepEvents(steps or StepReporter(), session)
        self.started = time.monotonic()

    # --- apply ----------------------------------------------------------------------------

    def apply(
        self,
        plan: Plan,
        *,
        lock_timeout: float | None = None,
        prechecked: bool = False,
        atomic: bool = False,
    ) -> ApplyResult:
        """Run `plan`. `prechecked`: the caller made the plan in this process with
        `releasectl.planning.build`, which already ran the static checks of its migrations;
        any other plan (a saved one) is planned again and must equal the new plan in every
        field (`releasectl.planning.replan`), which runs every static check again.
        `atomic`: when a step fails, also undo the steps this apply completed (newest first),
        so the environment ends as it was before the apply (like `helm upgrade --atomic`)."""
        session = self.session
        self.started = time.monotonic()
        if plan.env != self.env:
            raise InputError(f"the plan is for environment {plan.env!r}, not {self.env!r}")
        if not prechecked:  # a saved plan: it must be the plan made now, in every field
            self._check_saved(plan)
        if (
            plan_digest(plan.env, plan.manifest_checksum, plan.release, plan.state, plan.steps)
            != plan.digest
        ):
            raise StaleError("the plan file was modified after it was made (digest mismatch)")
        operation = operation_of(plan)
        session.authorize(operation, breaking=any(s.breaking for s in plan.steps))
        for component in dict.fromkeys(s.component for s in plan.steps):
            session.authorize(
                operation,
                component=component,
                breaking=any(s.breaking for s in plan.steps if s.component == component),
            )
        self._check_promotion(plan)
        migrations = plan_migrations(self.workspace, plan)
        if not prechecked:
            raise_problems(plan_problems(self.workspace, plan))
        session.backups.check_ready()
        # Targets resolve their settings (${VAR}) before the lock: a missing variable fails
        # before anything runs.
        for component in dict.fromkeys(s.component for s in plan.steps):
            session.target(component)

        result = ApplyResult(plan)
        with session.lock(operation, lock_timeout) as lock, signals.shielded():
            state = session.read_state()
            self._check_fresh(plan, state, migrations)
            if not has_changes(plan):
                result.state = state
                return result
            done: list[Completed] = []
            try:
                preflight(session, plan, state)
                for index, step in enumerate(plan.steps):
                    signals.check()  # cancelled between steps: nothing is half done
                    before = state.components.get(step.component) if state else None
                    try:
                        state = self._run_step(
                            plan, index, step, migrations.get(index), state, lock, result
                        )
                    except ReleasectlError as failure:
                        if not atomic or not done or self._dirty() or lease_lapsed(failure):
                            raise
                        try:
                            undo_completed(session, lock, plan.digest, done, failure)
                        except Exception as undo:
                            raise MigrationFailed(
                                f"{failure}\n--atomic: undoing the completed steps failed: "
                                f"{undo}\nthe environment is dirty: run `releasectl recover`, "
                                "then apply the release you want"
                            ) from undo
                        raise MigrationFailed(
                            f"{failure}\n--atomic: undid the {len(done)} step(s) this apply "
                            "had completed; the environment is as it was before the apply"
                        ) from failure
                    done.append(
                        Completed(
                            index, step, migrations.get(index), result.outcomes[-1].backup, before
                        )
                    )
            finally:
                session.close()
            state = self._finish(plan, state, lock)
            result.state = state
            result.changed = True
        return result

    def _check_saved(self, plan: Plan) -> None:
        """Re-plan from the workspace and the recorded state; refuse (exit 3) unless `plan`
        equals the result in every field (see `releasectl.planning.replan`)."""
        from releasectl.engine.promotion import with_promotion_warning
        from releasectl.planning.replan import check_saved

        check_saved(
            self.workspace,
            plan,
            self.session.read_state(),
            annotate=lambda fresh: with_promotion_warning(self.workspace, self.env, fresh),
        )

    def _dirty(self) -> bool:
        state = self.session.read_state()
        return state is not None and state.dirty

    def _check_promotion(self, plan: Plan) -> None:
        from releasectl.engine.promotion import promotion_problem

        problem = promotion_problem(self.workspace, self.env, plan)
        if problem:
            raise DeniedError(problem)

    def _check_fresh(
        self, plan: Plan, state: State | None, migrations: dict[int, Migration]
    ) -> None:
        if state is not None and state.dirty:
            raise DirtyError(
                f"environment {self.env!r} has an interrupted step (step {state.journal.index + 1}"
                f" of plan {state.journal.plan[:12]}): run `releasectl recover --env {self.env}`"
                if state.journal
                else "environment is dirty"
            )
        lineage = state.lineage if state else None
        serial = state.serial if state else 0
        if (lineage, serial) != (plan.state.lineage, plan.state.serial):
            raise StaleError(
                f"stale plan: the state of {self.env!r} moved on since it was planned (serial "
                f"{plan.state.serial} planned, {serial} now); plan again"
            )
        if state is not None and plan.digest in state.plans:
            raise StaleError(f"plan {plan.digest[:12]} was already applied to {self.env!r}")
        if plan.release.to is not None and plan.manifest_checksum is not None:
            current = self.workspace.release(plan.release.to).checksum
            if current != plan.manifest_checksum:
                raise StaleError(
                    f"stale plan: releases/{plan.release.to}.yaml changed since it was planned"
                )
        for index, migration in migrations.items():
            if migration.checksum != plan.steps[index].checksum:
                raise StaleError(f"stale plan: {migration.rel} changed since it was planned")
        reapplied = {(s.component, s.migration) for s in plan.steps if s.action == "down"}
        drift = [
            d
            for d in find_drift(self.workspace, state)
            if (d.component, d.migration) not in reapplied
        ]
        if drift:
            from releasectl.planning.drift import drift_error

            raise drift_error(self.workspace, drift)

    # --- one step -------------------------------------------------------------------------

    def _run_step(
        self,
        plan: Plan,
        index: int,
        step: Step,
        migration: Migration | None,
        state: State | None,
        lock: Lock,
        result: ApplyResult,
    ) -> State:
        session = self.session
        total = len(plan.steps)
        self.steps.step_started(index, total, step)
        started = time.monotonic()
        target = session.target(step.component)
        output = ""
        failpoints.hit("before-step", index)
        backup_id: str | None = None
        phase = "check"
        timeout = self._timeout(migration)
        try:
            target.check(step, migration)  # before the journal: a refusal records nothing
            state = session.write_state(
                state,
                lock,
                journal=entry(session, plan.digest, index, step, "backup", None, timeout),
            )
            phase = "backup"
            if step.backup:
                failpoints.hit("before-backup", index)
                backup_id = self.take_backup(step.component, step, migration, plan)
                failpoints.hit("after-backup", index)
            state = session.write_state(
                state,
                lock,
                journal=entry(session, plan.digest, index, step, "run", backup_id, timeout),
            )
            phase = "run"
            failpoints.hit("before-run", index)
            session.on_process = record_processes(session, lock)
            deadline = step_deadline(lock, timeout)
            deadline.check(f"step {index + 1}")  # a holder that froze before it ran stops here
            output = target.run(step, migration, deadline)
            failpoints.hit("after-run", index)
            phase = "verify"  # a crash here rolls back, as during run: no journal write
            deadline = step_deadline(lock, timeout)
            deadline.check(f"step {index + 1}")
            target.verify(step, migration, deadline)
            state = session.write_state(
                state, lock, journal=entry(session, plan.digest, index, step, "record", backup_id)
            )
            failpoints.hit("before-record", index)
        except Exception as exc:  # every failure of a step is rolled back, then re-raised
            session.on_process = None
            duration = time.monotonic() - started
            outcome = StepOutcome(index, step, "failed", duration, backup_id, error=str(exc))
            self._fail(plan, index, step, migration, state, lock, phase, exc, backup_id, outcome)
            result.outcomes.append(outcome)
            self.steps.step_finished(index, total, outcome)
            raise failure_error(self.env, step, index, phase, exc, outcome.rollback) from exc
        session.on_process = None
        try:
            state = self._record(state, lock, step, migration, plan.digest)
        except Exception as exc:  # ran and verified, not recorded: `recover` records it
            raise unrecorded(self.env, index, step, exc) from exc
        failpoints.hit("after-record", index)
        duration = time.monotonic() - started
        outcome = StepOutcome(index, step, "success", duration, backup_id, output=output or None)
        session.history.append(
            step.action,
            "success",
            component=step.component,
            migration=step.migration,
            from_=step.from_,
            to=step.to,
            duration=round(duration, 3),
            plan=plan.digest,
            backup=backup_id,
            release=plan.release.to,
            output=output or None,
        )
        result.outcomes.append(outcome)
        self.steps.step_finished(index, total, outcome)
        return state

    def _timeout(self, migration: Migration | None) -> float | None:
        if migration is not None and migration.meta.timeout is not None:
            return migration.meta.timeout
        return 600.0

    def take_backup(
        self, component: str, step: Step | None, migration: Migration | None, plan: Plan | None
    ) -> str:
        """Stream the target's backup into the store; the step's, or the whole component's."""
        session = self.session
        meta = session.backups.new_meta(
            component=component,
            type_=self.workspace.component(component).type,
            actor=session.actor,
            kind="step" if step else "manual",
            plan=plan.digest if plan else None,
            step=step.model_dump(mode="json", by_alias=True) if step else None,
        )
        target = session.target(component)

        def fill(out: IO[bytes]) -> None:
            info = target.backup(step, migration, out)
            meta.items, meta.scope, meta.detail = info.items, list(info.scope), dict(info.detail)

        where = {
            "component": component,
            "migration": step.migration if step else None,
            "plan": plan.digest if plan else None,
        }
        started = time.monotonic()
        try:
            session.backups.store(meta, fill)
        except Exception as exc:
            took = round(time.monotonic() - started, 3)
            session.history.append("backup", "failed", duration=took, error=str(exc), **where)
            session.events.emit(BackupFailed(self.env, component, meta.kind, took, str(exc)))
            raise
        took = round(time.monotonic() - started, 3)
        session.history.append(
            "backup", "success", backup=meta.id, duration=took, size=meta.size, **where
        )
        session.events.emit(BackupWritten(self.env, component, meta.id, meta.kind, meta.size, took))
        return meta.id

    def _fail(
        self,
        plan: Plan,
        index: int,
        step: Step,
        migration: Migration | None,
        state: State | None,
        lock: Lock,
        phase: str,
        exc: BaseException,
        backup_id: str | None,
        outcome: StepOutcome,
    ) -> None:
        session = self.session
        session.history.append(
            step.action,
            "failed",
            component=step.component,
            migration=step.migration,
            from_=step.from_,
            to=step.to,
            duration=round(outcome.duration, 3),
            plan=plan.digest,
            backup=backup_id,
            release=plan.release.to,
            error=f"{phase}: {exc}",
        )
        if phase == "check":  # nothing ran, nothing was journaled: the pre-check refused
            return
        assert state is not None  # the journal was written
        if lease_lapsed(exc):  # no longer ours to undo: the journal stays for `recover`
            outcome.rollback = "not rolled back: " + LEASE_LAPSED
            return
        session.on_process = record_processes(session, lock)  # a reverse script, say
        try:
            state, outcome.rollback = undo_step(
                session,
                lock,
                state,
                plan=plan.digest,
                index=index,
                step=step,
                migration=migration,
                backup_id=backup_id,
                failure=Failure(phase, exc),
            )
        except Exception as rollback_exc:
            # the journal stays: the environment is dirty until `recover` succeeds
            outcome.rollback = f"rollback failed: {rollback_exc}"
            return
        finally:
            session.on_process = None
        session.write_state(state, lock, journal=None)

    def _record(
        self, state: State, lock: Lock, step: Step, migration: Migration | None, digest: str
    ) -> State:
        """The step's new version and applied migration, with the journal cleared: one write."""
        failpoints.hit("record")  # the fault suite: a state write failing after the target changed
        return self.session.write_state(
            state,
            lock,
            journal=None,
            components=recorded_components(state, step, migration, digest),
        )

    def _finish(self, plan: Plan, state: State | None, lock: Lock) -> State:
        session = self.session
        assert state is not None or not plan.steps
        changes: dict[str, object] = {
            "plans": ((*state.plans, plan.digest) if state else (plan.digest,))[-KEEP_PLANS:]
        }
        if plan.release.to is not None:
            record = ReleaseRecord(
                version=plan.release.to,
                applied_at=timeutil.iso(),
                applied_by=session.actor,
                plan=plan.digest,
                verified=True,
            )
            changes["release"] = plan.release.to
            changes["releases"] = (*(state.releases if state else ()), record)
        state = session.write_state(state, lock, **changes)
        session.history.append(
            "apply",
            "success",
            plan=plan.digest,
            release=plan.release.to,
            from_=plan.release.from_,
            to=plan.release.to,
            duration=round(time.monotonic() - self.started, 3),
        )
        for component in {s.component for s in plan.steps}:
            session.backups.prune(component)
        return state
