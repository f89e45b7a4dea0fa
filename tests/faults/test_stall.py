"""A lock holder frozen past its lease (SIGSTOP: a paused VM, a stuck runner), its lock taken
by `recover` from another process, then resumed (SIGCONT): it must write nothing more.
State, history and lock live in the private Redis (a 3 s lease); the data in every kind."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from tests.conftest import wait_for
from tests.faults.conftest import MakeFault
from tests.faults.harness import Child, Fault
from tests.faults.kinds import KINDS
from tests.faults.test_kill import inside_points

CASES = [
    pytest.param(kind, step, op, id=f"{kind}-inside-step{step}-op{op}")
    for kind in ("redis-server", "sqlite", "postgres", "config", "cedar")
    for step, op in inside_points(kind, 1, 3)
]


def take_over(fault: Fault, child: Child) -> None:
    """Wait for the lease to end, check recover refuses a live holder, force it, resume."""
    until = time.monotonic() + 30
    while fault.status()["lock"] is not None:
        assert time.monotonic() < until, "the lock never expired"
        time.sleep(0.1)
    refused = fault.cli("recover")
    assert refused.code == 4 and "still alive" in refused.err, refused
    forced = fault.cli("recover", "--force")
    assert forced.code == 0, forced
    recorded = fault.status()
    assert not recorded["dirty"]
    before = fault.picture()
    os.kill(child.pid, signal.SIGCONT)
    code = child.wait()
    assert code == 4, child.text()  # it found its lease gone and stopped
    assert "lease" in child.err.read_text() or "lost the lock" in child.err.read_text()
    assert fault.picture() == before  # nothing written after the takeover


@pytest.mark.parametrize(("kind", "step", "op"), CASES)
def test_a_holder_frozen_inside_a_step(
    make_fault: MakeFault, injected: Callable[[str], None], kind: str, step: int, op: int
) -> None:
    fault = make_fault(kind, redis_state=True)
    hit = sum(KINDS[kind].ops[:step]) + op
    child = fault.apply(failpoint=f"{fault.kind.inside}@{hit}=stop")
    assert child.wait(stopped=True) == -signal.SIGSTOP, child.text()
    injected(f"{kind}: SIGSTOP inside step {step + 1} past the lease, recover --force, SIGCONT")
    take_over(fault, child)
    fault.settle()


def test_a_holder_frozen_while_its_script_runs(
    make_fault: MakeFault, injected: Callable[[str], None]
) -> None:
    """The script goes on while its apply is frozen; recover --force ends it and rolls the
    step back; the resumed apply writes nothing."""
    fault = make_fault("script", redis_state=True)
    child = fault.apply()
    marker = fault.root / ".running-2"
    wait_for("the script to start", marker.exists, 60, poll=0.01, details=child.text)
    os.kill(child.pid, signal.SIGSTOP)
    assert child.wait(stopped=True) == -signal.SIGSTOP
    injected("script: SIGSTOP of the apply while its script runs, recover --force, SIGCONT")
    take_over(fault, child)
    fault.settle()
