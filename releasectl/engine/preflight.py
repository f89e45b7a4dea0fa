"""What `apply` checks under the lock before its first step, so that a plan either starts on
an environment it can finish on or changes nothing (Flyway and Terraform connect first):

- the history can take entries truthfully: its last line is readable and it still holds
  every entry the state anchored (`releasectl.state.anchor`);
- every target of the plan is reachable, and where a target records its own schema version
  (the SQL history table, the Redis schema key, the rendered files' headers, the Cedar
  store's manifest: `Target.recorded_version`), it is the version the plan starts from.

`refuse_drift` serves a plan with nothing to run: drift blocks `apply` all the same.

Without this an unreachable database would fail only at its own step, after the config steps
before it had run: a half-upgraded environment.
"""

from __future__ import annotations

from releasectl.engine.session import Session
from releasectl.errors import DriftError, ReleasectlError, TargetError, bundle
from releasectl.models.plan import Plan
from releasectl.models.state import State
from releasectl.planning.drift import drift_error, find_drift
from releasectl.state.anchor import check_tail
from releasectl.workspace import Workspace


def preflight(session: Session, plan: Plan, state: State | None) -> None:
    check_tail(session.state_backend, state)
    problems: list[ReleasectlError] = []
    starts: dict[str, int | str | None] = {}
    for step in plan.steps:
        starts.setdefault(step.component, step.from_)
    for component, start in starts.items():
        target = session.target(component)
        try:
            said = target.recorded_version()
        except ReleasectlError as exc:
            problems.append(
                TargetError(f"{component}: not reachable: {exc}", location=exc.location)
            )
            continue
        except OSError as exc:
            problems.append(TargetError(f"{component}: not reachable: {exc}"))
            continue
        if said is None or not isinstance(start, int | None):
            continue
        expected = start or 0
        if said != expected:
            problems.append(
                DriftError(
                    f"{component}: the target records version {said}, but the plan starts from "
                    f"{expected} (the recorded state of {session.env!r}): it was changed outside "
                    "releasectl, or the state belongs to another target; compare them, and "
                    "record the truth with `releasectl baseline` or restore the target"
                )
            )
    if problems:
        error = bundle(problems)
        error.message += "\nnothing was run: every target is checked before the first step"
        raise error


def refuse_drift(workspace: Workspace, state: State | None) -> None:
    """Drift blocks `apply` whether or not it has steps to run (exit 3)."""
    drift = find_drift(workspace, state)
    if drift:
        raise drift_error(workspace, drift)
