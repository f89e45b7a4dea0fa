"""CI cancels a job with SIGTERM (some runners SIGINT first) and kills it 10 s later: the
running step stops, is rolled back and recorded, the lock is released, and the exit code is
143 (SIGTERM) or 130 (SIGINT), well within those 10 s. Real processes and scripts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from releasectl.util.procs import members
from tests.builders import slow_script_workspace
from tests.conftest import run_cli, wait_for

GRACE = 10.0  # what runners give between SIGTERM and SIGKILL


def history(root: Path) -> list[dict[str, Any]]:
    path = root / ".releasectl/history/local.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def status(root: Path) -> dict[str, Any]:
    result = run_cli("status", "--format", "json", cwd=root)
    assert result.code == 0, result
    data: dict[str, Any] = json.loads(result.out)
    return data


def script_workspace(root: Path) -> Path:
    return slow_script_workspace(
        root,
        up="""
            echo changed > data/value.txt
            touch "$RELEASECTL_WORKSPACE/started"
            sleep 60
        """,
        down="echo undone > data/down.txt\n",
        timeout=120,
    )


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_a_script_rolls_it_back_and_exits(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    root = script_workspace(tmp_path / "ws")
    proc = subprocess.Popen(
        [sys.executable, "-m", "releasectl", "apply", "--yes"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    wait_for(
        "the script to start",
        (root / "started").exists,
        60,
        details=lambda: proc.communicate(timeout=5),
    )
    journal = json.loads((root / ".releasectl/state/local.json").read_text())["journal"]
    sent = time.monotonic()
    os.kill(proc.pid, sig)  # the runner signals releasectl, not the script
    _out, err = proc.communicate(timeout=GRACE)
    took = time.monotonic() - sent
    assert proc.returncode == code, err
    assert took < GRACE / 2, took
    assert f"cancelled by {sig.name}" in err
    shown = status(root)
    assert shown["dirty"] is False and shown["lock"] is None
    assert shown["components"]["hooks"]["version"] == 0
    assert (root / "data/value.txt").read_text() == "original\n"
    assert not (root / ".releasectl/locks/local.lock").exists()
    assert members(journal["pgid"], journal["run_id"], None) == []  # script and sleep: gone
    entries = history(root)
    failed = [e for e in entries if e["action"] == "up" and e["result"] == "failed"]
    assert failed and f"cancelled by {sig.name}" in failed[-1]["error"]
    assert any(e["action"] == "rollback" and e["result"] == "success" for e in entries)
    assert run_cli("history", "--verify", cwd=root).code == 0


@pytest.mark.parametrize(
    ("point", "redis"),
    [("before-backup", 0), ("after-backup", 0), ("after-run", 0), ("before-record", 1)],
)
def test_sigterm_at_a_step_boundary(example: Path, point: str, redis: int) -> None:
    """The example's Redis step (5) gets SIGTERM at a boundary (the failpoint signals the
    process itself): a step that had not verified is rolled back, one that had is recorded;
    the earlier steps stay, no later step starts, exit 143."""
    before = status(example)
    proc = subprocess.run(
        [sys.executable, "-m", "releasectl", "apply", "--yes"],
        cwd=example,
        capture_output=True,
        text=True,
        env={**os.environ, "RELEASECTL_FAILPOINT": f"{point}@5=term"},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 143, proc.stderr
    shown = status(example)
    assert shown["dirty"] is False and shown["lock"] is None
    assert shown["components"]["config"]["version"] == 2
    assert shown["components"]["redis"]["version"] == redis
    assert shown["components"]["auth-service"]["version"] is None  # never started
    assert shown["serial"] > before["serial"]
    assert run_cli("history", "--verify", cwd=example).code == 0
    assert run_cli("apply", "--yes", cwd=example).code == 0
    assert status(example)["release"] == "1.1.0"


def test_sigterm_while_waiting_for_the_lock_changes_nothing(example: Path) -> None:
    lock = example / ".releasectl/locks/local.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(
        json.dumps(
            {
                "id": "other",
                "env": "local",
                "holder": "someone",
                "operation": "apply",
                "host": "elsewhere",
                "pid": 1,
                "since": "2026-01-01T00:00:00.000Z",
            }
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "releasectl", "apply", "--yes", "--lock-timeout", "60"],
        cwd=example,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=GRACE)
    assert proc.returncode == 143, err
    assert json.loads(lock.read_text())["id"] == "other"
    assert not (example / ".releasectl/state/local.json").exists()
