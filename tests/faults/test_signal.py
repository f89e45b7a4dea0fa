"""A CI runner cancels: SIGTERM (and SIGINT) at step boundaries and inside steps of every kind
of target. The step stops and is rolled back (or, once verified, recorded), the lock is
released, the exit code is 143 / 130, and the environment is clean: no recover needed."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from tests.conftest import wait_for
from tests.faults.conftest import MakeFault
from tests.faults.kinds import KINDS
from tests.faults.test_kill import inside_points

CODES = {"term": 143, "int": 130}
CASES = [
    pytest.param(kind, point, action, id=f"{kind}-{point}-{action}")
    for kind in KINDS
    for point, action in (
        ("after-backup@1" if KINDS[kind].backup else "before-run@1", "term"),
        ("after-run@2", "term"),
        ("before-run@0", "int"),
    )
] + [
    pytest.param(kind, f"inside:{step}:{op}", "term", id=f"{kind}-inside-step{step}-op{op}")
    for kind in KINDS
    if kind != "script"
    for step, op in inside_points(kind, 1, 2)
]


@pytest.mark.parametrize(("kind", "point", "action"), CASES)
def test_cancelled_at_a_point(
    make_fault: MakeFault,
    injected: Callable[[str], None],
    kind: str,
    point: str,
    action: str,
) -> None:
    fault = make_fault(kind)
    if point.startswith("inside:"):
        _, step, op = point.split(":")
        hit = sum(fault.kind.ops[: int(step)]) + int(op)
        rule = f"{fault.kind.inside}@{hit}={action}"
    else:
        rule = f"{point}={action}"
    child = fault.apply(failpoint=rule)
    assert child.wait() == CODES[action], child.text()
    name = "SIGTERM" if action == "term" else "SIGINT"
    assert f"cancelled by {name}" in child.err.read_text()
    injected(f"{kind}: {name} at {point}")
    shown = fault.status()
    assert not shown["dirty"] and shown["lock"] is None, shown  # clean: nothing to recover
    fault.settle()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_cancelled_while_a_script_runs(
    make_fault: MakeFault, injected: Callable[[str], None], sig: signal.Signals
) -> None:
    fault = make_fault("script")
    child = fault.apply()
    marker = fault.root / ".running-2"
    wait_for("the script to start", marker.exists, 60, poll=0.01, details=child.text)
    os.kill(child.pid, sig)
    assert child.wait(timeout=10) == 128 + sig, child.text()
    injected(f"script: {sig.name} while its script runs")
    shown = fault.status()
    assert not shown["dirty"] and shown["lock"] is None and fault.version(shown) == 1
    fault.settle()
