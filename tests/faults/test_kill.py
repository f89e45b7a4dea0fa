"""kill -9 of a real `apply`, at every step boundary of every step and at seeded random points
inside steps (between a migration's operations, inside a rollback, while a script runs), for
every kind of target. Each fault then goes through Fault.settle."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable

import pytest

from tests.faults.conftest import MakeFault
from tests.faults.kinds import KINDS, TOP

BOUNDARIES = (
    "before-step",
    "before-backup",
    "after-backup",
    "before-run",
    "after-run",
    "before-record",
    "after-record",
)
BOUNDARY_CASES = [
    pytest.param(kind, point, step, id=f"{kind}-{point}@{step}")
    for kind in KINDS
    for step in range(TOP)
    for point in BOUNDARIES
    if KINDS[kind].backup or "backup" not in point
]


@pytest.mark.parametrize(("kind", "point", "step"), BOUNDARY_CASES)
def test_kill_at_a_step_boundary(
    make_fault: MakeFault, injected: Callable[[str], None], kind: str, point: str, step: int
) -> None:
    fault = make_fault(kind)
    child = fault.apply(failpoint=f"{point}@{step}")
    assert child.wait() == -signal.SIGKILL, child.text()
    injected(f"{kind}: kill -9 at {point} of step {step + 1}")
    fault.settle()


def inside_points(kind: str, count: int, seed: int) -> list[tuple[int, int]]:
    """(step, operation) pairs inside steps, chosen by a seeded RNG (the same every run)."""
    ops = KINDS[kind].ops
    every = [(step, op) for step in range(TOP) for op in range(ops[step])]
    return sorted(random.Random(f"{kind}:{seed}").sample(every, min(count, len(every))))


INSIDE_CASES = [
    pytest.param(kind, step, op, id=f"{kind}-inside-step{step}-op{op}")
    for kind in KINDS
    if kind != "script"
    for step, op in inside_points(kind, 2, 1)
]


@pytest.mark.parametrize(("kind", "step", "op"), INSIDE_CASES)
def test_kill_between_the_operations_of_a_step(
    make_fault: MakeFault, injected: Callable[[str], None], kind: str, step: int, op: int
) -> None:
    fault = make_fault(kind)
    hit = sum(fault.kind.ops[:step]) + op  # the failpoint counts hits across the steps
    child = fault.apply(failpoint=f"{fault.kind.inside}@{hit}")
    assert child.wait() == -signal.SIGKILL, child.text()
    injected(f"{kind}: kill -9 inside step {step + 1}, before operation {op + 1}")
    fault.settle()


@pytest.mark.parametrize("kind", list(KINDS))
def test_kill_during_the_rollback_of_a_step(
    make_fault: MakeFault, injected: Callable[[str], None], kind: str
) -> None:
    """The step is cancelled after it ran (SIGTERM), and the process dies while rolling it
    back: recover finishes the rollback."""
    fault = make_fault(kind)
    child = fault.apply(failpoint="after-run@1=term,in-rollback@1=kill")
    assert child.wait() == -signal.SIGKILL, child.text()
    shown = fault.status()
    assert shown["journal"]["phase"] == "rollback", shown
    injected(f"{kind}: kill -9 during the rollback of step 2")
    fault.settle()


@pytest.mark.parametrize("orphan", [True, False], ids=["apply-only", "apply-and-script"])
def test_kill_while_a_script_runs(
    make_fault: MakeFault, injected: Callable[[str], None], orphan: bool
) -> None:
    """kill -9 of the apply alone (its script runs on, orphaned: recover ends it) or of the
    apply and its script (a lost machine)."""
    fault = make_fault("script")
    child = fault.apply()
    marker = fault.root / ".running-2"
    until = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < until and child.status is None, child.text()
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    if not orphan:
        pgid = fault.status()["journal"]["pgid"]
        os.killpg(pgid, signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL, child.text()
    injected(f"script: kill -9 of {'the apply only' if orphan else 'apply and script'}")
    fault.settle()
    assert not (fault.root / "data/two.txt").exists() or fault.version() >= 2
