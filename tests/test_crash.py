"""Crash safety with real processes: kill -9 an apply at every step boundary and inside a
running migration, then `status` shows it dirty, `apply` refuses, `recover` rolls the step
back (or forward once it had verified) and the data matches. A concurrent apply gets exit 4."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from releasectl.clients.redis import Endpoint
from tests.builders import slow_script_workspace
from tests.conftest import run_cli, run_proc, wait_for

REDIS_URL = "redis+embedded://.releasectl/local/redis.db"
REDIS_STEP = 5  # in the example's plan for 1.1.0: redis up 0 -> 1 (0001_initial_settings)


def status(root: Path) -> dict[str, Any]:
    result = run_cli("status", "--format", "json", cwd=root)
    assert result.code == 0, result
    data: dict[str, Any] = json.loads(result.out)
    return data


def redis_keys(root: Path) -> set[bytes]:
    endpoint = Endpoint(REDIS_URL, root, name="test")
    try:
        return set(endpoint.client().scan_iter(count=1000))
    finally:
        endpoint.close()


@pytest.mark.parametrize(
    ("point", "dirty", "after_recover"),
    [
        ("before-step", False, 0),  # nothing journaled yet
        ("before-backup", True, 0),
        ("after-backup", True, 0),
        ("before-run", True, 0),
        ("after-run", True, 0),  # ran, not verified: rolled back
        ("before-record", True, 1),  # verified: rolled forward
        ("after-record", False, 1),
    ],
)
def test_kill_at_step_boundary(example: Path, point: str, dirty: bool, after_recover: int) -> None:
    crashed = run_proc(
        "apply", "--yes", cwd=example, env={"RELEASECTL_FAILPOINT": f"{point}@{REDIS_STEP}"}
    )
    assert crashed.code == -signal.SIGKILL, crashed
    before = status(example)
    assert before["dirty"] is dirty
    assert before["components"]["redis"]["version"] == (1 if point == "after-record" else 0)
    assert before["components"]["config"]["version"] == 2  # earlier steps stay applied
    if dirty:
        journal = before["journal"]
        assert journal["index"] == REDIS_STEP and journal["step"]["component"] == "redis"
        text = run_cli("status", cwd=example).out
        assert "DIRTY" in text and "run `releasectl recover`" in text
        refused = run_cli("apply", "--yes", cwd=example)
        assert refused.code == 3 and "releasectl recover" in refused.err
    recovered = run_cli("recover", cwd=example)
    assert recovered.code == 0, recovered
    after = status(example)
    assert after["dirty"] is False
    assert after["components"]["redis"]["version"] == after_recover
    keys = redis_keys(example)
    assert (b"config:auth" in keys) is bool(after_recover)
    finished = run_cli("apply", "--yes", cwd=example)
    assert finished.code == 0, finished
    final = status(example)
    assert final["release"] == "1.1.0" and final["components"]["redis"]["version"] == 2
    assert run_cli("history", "--verify", cwd=example).code == 0


def test_kill_during_rollback_then_recover(example: Path) -> None:
    assert run_cli("apply", "--yes", cwd=example).code == 0
    bad = example / "migrations/redis/0003_bad"
    bad.mkdir()
    (bad / "up.yaml").write_text(
        "ops:\n  - set: {key: 'new:key', value: '1'}\n"
        "  - hset: {key: 'schema:redis:version', fields: {x: '1'}}\n"
    )
    (bad / "down.yaml").write_text("ops:\n  - del: {keys: ['new:key']}\n")
    keys_before = redis_keys(example)
    crashed = run_proc(
        "migrate", "redis", "3", "--yes", cwd=example, env={"RELEASECTL_FAILPOINT": "in-rollback@0"}
    )
    assert crashed.code == -signal.SIGKILL, crashed
    assert status(example)["journal"]["phase"] == "rollback"
    assert run_cli("recover", cwd=example).code == 0
    assert redis_keys(example) == keys_before
    assert status(example)["components"]["redis"]["version"] == 2


def _slow_script_workspace(root: Path) -> Path:
    return slow_script_workspace(
        root,
        up="""
            echo changed > data/value.txt
            touch data/created-by-up.txt
            touch "$RELEASECTL_WORKSPACE/started"
            sleep 30
        """,
        down="rm -f data/created-by-up.txt\n",
        timeout=60,
    )


def test_kill_inside_a_running_migration(tmp_path: Path) -> None:
    root = _slow_script_workspace(tmp_path / "ws")
    proc = subprocess.Popen(
        [sys.executable, "-m", "releasectl", "apply", "--yes"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    wait_for(
        "the script to start",
        (root / "started").exists,
        details=lambda: proc.communicate(timeout=5),
    )
    os.killpg(proc.pid, signal.SIGKILL)  # the machine went away: apply and its script
    proc.wait(10)
    before = status(root)
    assert before["dirty"] is True and before["journal"]["phase"] == "run"
    assert (root / "data/value.txt").read_text() == "changed\n"
    recovered = run_cli("recover", cwd=root)
    assert recovered.code == 0, recovered
    assert (root / "data/value.txt").read_text() == "original\n"
    assert not (root / "data/created-by-up.txt").exists()
    assert status(root)["components"]["hooks"]["version"] == 0


def test_concurrent_apply_gets_exit_4(example: Path) -> None:
    first = subprocess.Popen(
        [sys.executable, "-m", "releasectl", "apply", "--yes"],
        cwd=example,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RELEASECTL_FAILPOINT": "before-run@0=sleep:4"},
    )
    lock = example / ".releasectl/locks/local.lock"
    wait_for("the first apply to take the lock", lock.exists)
    second = run_cli("apply", "--yes", cwd=example)
    assert second.code == 4, second
    assert "environment 'local' is locked: held by tester" in second.err
    assert "lock id" in second.err
    shown = status(example)
    assert shown["lock"]["holder"] == "tester"
    _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert status(example)["release"] == "1.1.0"


def test_stale_lock_of_a_killed_apply_is_taken_over(example: Path) -> None:
    crashed = run_proc("apply", "--yes", cwd=example, env={"RELEASECTL_FAILPOINT": "before-step@0"})
    assert crashed.code == -signal.SIGKILL
    assert (example / ".releasectl/locks/local.lock").exists()
    result = run_cli("apply", "--yes", cwd=example)
    assert result.code == 0, result
    assert "took over a stale lock" in result.err
    actions = [
        json.loads(line)["action"]
        for line in (example / ".releasectl/history/local.jsonl").read_text().splitlines()
    ]
    assert "lock-takeover" in actions


def test_unlock_needs_the_lock_id(example: Path) -> None:
    lock = example / ".releasectl/locks/local.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(
        json.dumps(
            {
                "id": "abc",
                "env": "local",
                "holder": "ci-runner-7",
                "operation": "apply",
                "host": "elsewhere",
                "pid": 1,
                "since": "2026-11-25T00:00:00.000Z",
            }
        )
    )
    held = run_cli("apply", "--yes", cwd=example)
    assert held.code == 4 and "held by ci-runner-7" in held.err
    assert run_cli("unlock", "nope", cwd=example).code == 1
    done = run_cli("unlock", "abc", cwd=example)
    assert done.code == 0, done
    assert not lock.exists()
    assert run_cli("apply", "--yes", cwd=example).code == 0
