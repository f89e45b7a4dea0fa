"""The journal: what a step writes into the state before it runs, how a journaled step is
undone, and what `recover` does with a journal a crash left behind.

A step that fails, a completed step that `apply --atomic` takes back, and a step a crash
interrupted are all undone the same way: journal the undo, let the target roll the step back
(restore its backup or run its reverse part), record it in the history. If the target fails,
the journal entry stays and the environment is dirty until `recover` succeeds.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from releasectl.engine import lease, signals
from releasectl.engine.session import Session
from releasectl.errors import LockHeldError
from releasectl.models.plan import Step
from releasectl.models.state import AppliedMigration, ComponentState, Journal, State
from releasectl.observe.events import RolledBack
from releasectl.state.base import Lock
from releasectl.targets.base import Failure
from releasectl.util import failpoints, timeutil
from releasectl.workspace.catalogue import Migration


def entry(
    session: Session,
    plan: str,
    index: int,
    step: Step,
    phase: str,
    backup_id: str | None = None,
    timeout: float | None = None,
) -> Journal:
    """A journal entry; `timeout`: the step's, which sets the deadline by which it stops."""
    return Journal(
        plan=plan,
        index=index,
        step=step,
        phase=phase,
        backup_id=backup_id,
        started_at=timeutil.iso(),
        actor=session.actor,
        pid=os.getpid(),
        host=socket.gethostname(),
        pid_started=_started(),
        deadline=None if timeout is None else _after(timeout),
    )


def _started() -> float | None:
    from releasectl.util.procs import start_time

    return start_time(os.getpid())


def _after(seconds: float) -> str:
    from datetime import timedelta

    return timeutil.iso(timeutil.now() + timedelta(seconds=seconds))


def recorded_components(
    state: State, step: Step, migration: Migration | None, digest: str
) -> dict[str, ComponentState]:
    """The components of `state` after `step` succeeded."""
    components = dict(state.components)
    current = components.get(step.component, ComponentState())
    applied = list(current.applied)
    if step.action == "up" and migration is not None:
        applied = [a for a in applied if a.id != migration.id]
        applied.append(
            AppliedMigration(
                id=migration.id,
                version=migration.number,
                checksum=migration.checksum,
                applied_at=timeutil.iso(),
                plan=digest,
            )
        )
    elif step.action == "down" and migration is not None:
        applied = [a for a in applied if a.id != migration.id]
    components[step.component] = ComponentState(
        version=step.to, applied=tuple(applied), updated_at=timeutil.iso()
    )
    return components


def undo_step(
    session: Session,
    lock: Lock,
    state: State,
    *,
    plan: str,
    index: int,
    step: Step,
    migration: Migration | None,
    backup_id: str | None,
    failure: Failure,
    note: str = "",
) -> tuple[State, str]:
    """Roll `step` back through its target. Returns the state (still carrying the rollback
    journal entry: the caller clears it with whatever else it records) and what was done."""
    # the rollback entry keeps the step's process group, so a crash during the rollback
    # still tells `recover` that the step's script had started (and which group to end)
    current = session.read_state()
    ran = current.journal if current is not None else None
    journal = entry(session, plan, index, step, "rollback", backup_id)
    if ran is not None and ran.pgid is not None:
        journal = journal.model_copy(update={"pgid": ran.pgid, "run_id": ran.run_id})
    state = session.write_state(state, lock, journal=journal)
    failpoints.hit("in-rollback", index)
    started = time.monotonic()
    fields = {
        "component": step.component,
        "migration": step.migration,
        "from_": step.to,
        "to": step.from_,
        "plan": plan,
        "backup": backup_id,
    }
    try:
        with session.backup_stream(backup_id) as src:
            said = session.target(step.component).rollback(step, migration, src, failure)
    except Exception as exc:
        session.history.append(
            "rollback", "failed", duration=_since(started), error=str(exc), **fields
        )
        session.events.emit(_rolled_back(session, step, failure, "failed", started, str(exc)))
        raise
    session.history.append(
        "rollback", "success", duration=_since(started), output=note + said, **fields
    )
    session.events.emit(_rolled_back(session, step, failure, "success", started))
    return state, said


def _rolled_back(
    session: Session,
    step: Step,
    failure: Failure,
    result: str,
    started: float,
    error: str | None = None,
) -> RolledBack:
    return RolledBack(
        env=session.env,
        component=step.component,
        migration=step.migration,
        from_=step.to,
        to=step.from_,
        result=result,
        duration=_since(started),
        cause=failure.phase,
        error=error,
    )


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


@dataclass(frozen=True)
class Completed:
    """A step this apply completed, with what undoing it needs (for --atomic)."""

    index: int
    step: Step
    migration: Migration | None
    backup: str | None
    before: ComponentState | None


def undo_completed(
    session: Session, lock: Lock, plan: str, done: Sequence[Completed], cause: BaseException
) -> None:
    """Undo completed steps, newest first; each component's record goes back to what it was."""
    for item in reversed(done):
        state = session.read_state()
        assert state is not None
        state, _ = undo_step(
            session,
            lock,
            state,
            plan=plan,
            index=item.index,
            step=item.step,
            migration=item.migration,
            backup_id=item.backup,
            failure=Failure("atomic", cause),
            note="--atomic: ",
        )
        components = dict(state.components)
        if item.before is None:
            components.pop(item.step.component, None)
        else:
            components[item.step.component] = item.before
        session.write_state(state, lock, journal=None, components=components)


def recover(session: Session, *, force_back: bool = False, force: bool = False) -> str:
    """Finish the step a crash interrupted: clear it if it had not run, roll it forward if it
    had verified (phase `record`, unless `force_back`), roll it back otherwise.

    Refuses (exit 4) while the step's holder may still act (`lease.holder_may_act`) unless
    `force`; ends what is left of the step's script on this host before undoing it."""
    with session.lock("recover") as lock, signals.shielded():
        state = session.read_state()
        if state is None or state.journal is None:
            return f"environment {session.env!r} is clean: nothing to recover"
        journal = state.journal
        busy = lease.holder_may_act(journal)
        if busy is not None and not force:
            raise LockHeldError(
                f"refusing to recover step {journal.index + 1} ({journal.step.component}) of "
                f"{session.env!r}: {busy}. Undoing it now could be overwritten by it. Stop that "
                "process, or run `releasectl recover --force` once you are sure it cannot act"
            )
        ended = lease.end_processes(journal)
        step = journal.step
        migration = None
        if step.migration:
            known = session.workspace.catalogue.of(step.component)
            number = step.to if step.action == "up" else step.from_
            migration = known.get(int(number)) if known and number is not None else None
        what = (
            f"step {journal.index + 1} ({step.component} {step.action} {step.from_} -> {step.to})"
        )
        forward = journal.phase == "record" and not force_back
        session.on_process = lease.record_processes(session, lock)  # the reverse part's
        try:
            if forward:
                components = recorded_components(state, step, migration, journal.plan)
                session.write_state(state, lock, journal=None, components=components)
                done = "rolled forward: the step had run and verified before the crash"
            elif journal.phase == "backup":
                session.write_state(state, lock, journal=None)
                done = "cleared: the step was interrupted before it ran"
            else:
                state, said = undo_step(
                    session,
                    lock,
                    state,
                    plan=journal.plan,
                    index=journal.index,
                    step=step,
                    migration=migration,
                    backup_id=journal.backup_id,
                    failure=Failure(
                        "crash",
                        RuntimeError("interrupted"),
                        # a script step runs behind a gate that opens only once its group is
                        # journaled: no group recorded, no script ran
                        started=journal.pgid is not None if step.type == "script" else None,
                    ),
                )
                session.write_state(state, lock, journal=None)
                done = f"rolled back: {said}"
        finally:
            session.on_process = None
            session.close()
        done = ended + done
        session.history.append(
            "recover",
            "success",
            component=step.component,
            migration=step.migration,
            from_=step.from_ if forward else step.to,
            to=step.to if forward else step.from_,
            plan=journal.plan,
            backup=journal.backup_id,
            output=done,
            forced=True if busy is not None else None,
            error=f"--force: {busy}" if busy is not None else None,
        )
        return f"{what}: {done}"
