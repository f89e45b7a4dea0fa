"""The error a failed step raises: what failed, during which phase, and what was undone."""

from __future__ import annotations

from releasectl.engine import signals
from releasectl.engine.lease import lease_lapsed
from releasectl.errors import LockHeldError, MigrationFailed, ReleasectlError
from releasectl.models.plan import Step


def failure_error(
    env: str, step: Step, index: int, phase: str, exc: BaseException, rollback: str | None
) -> ReleasectlError:
    what = f"{step.component} {step.action} {step.from_} -> {step.to}"
    if step.migration:
        what += f" ({step.migration})"
    text = f"step {index + 1} failed during {phase}: {what}: {exc}"
    if lease_lapsed(exc):
        return LockHeldError(
            f"{text}\n{rollback}\nthe environment stays dirty until "
            f"`releasectl recover --env {env}` (run by whoever holds the lock now)"
        )
    if rollback and rollback.startswith("rollback failed"):
        text += (
            f"\n{rollback}\nthe environment is dirty: fix the cause, then run "
            f"`releasectl recover --env {env}`"
        )
    elif rollback:
        text += f"\nrolled back: {rollback}; recorded state is unchanged"
    if isinstance(exc, ReleasectlError) and exc.exit_code != 1 and phase == "check":
        exc.message = text
        return exc
    if isinstance(exc, LockHeldError):  # lost the lock (`unlock --force`): exit 4
        return LockHeldError(text)
    cancelled = signals.requested()
    if cancelled is not None:
        return signals.Cancelled(cancelled, text)
    return MigrationFailed(text)


def unrecorded(env: str, index: int, step: Step, exc: BaseException) -> ReleasectlError:
    """The step ran and verified, but recording it failed (the state backend refused or could
    not be written): the journal still says so, and `recover` rolls the step forward."""
    text = (
        f"step {index + 1} ({step.component} {step.action} {step.from_} -> {step.to}) ran and "
        f"verified, but recording it failed: {exc}\nthe environment is dirty: `releasectl "
        f"recover --env {env}` records the step (or `recover --rollback` undoes it)"
    )
    if isinstance(exc, LockHeldError):
        return LockHeldError(text)
    return MigrationFailed(text)
