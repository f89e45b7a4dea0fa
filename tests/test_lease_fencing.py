"""A holder that stalls past its lease stops before it can write again; an orphaned script is
ended by `recover`; `unlock` does not break the lock of a live holder. Real processes, a real
private Redis for state and data, real scripts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from tests.builders import make_workspace, slow_script_workspace
from tests.conftest import RedisServer, run_cli, wait_for
from tests.redis_helpers import same_keyspace, snapshot

PREFIX = "fence"


def spawn(root: Path, *args: str, failpoint: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ}
    if failpoint:
        env["RELEASECTL_FAILPOINT"] = failpoint
    return subprocess.Popen(
        [sys.executable, "-m", "releasectl", *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def status(root: Path) -> dict[str, Any]:
    result = run_cli("status", "--format", "json", cwd=root)
    assert result.code == 0, result
    data: dict[str, Any] = json.loads(result.out)
    return data


def process_state(pid: int) -> str:
    data = Path(f"/proc/{pid}/stat").read_bytes()
    return data[data.rfind(b")") + 2 :].split()[0].decode()


def data_keys(client: redis.Redis) -> dict[bytes, tuple[bytes, bytes, int]]:
    return {k: v for k, v in snapshot(client).items() if not k.startswith(PREFIX.encode())}


# --- 1. a stalled lock holder -----------------------------------------------------------


def redis_workspace(root: Path, url: str) -> Path:
    ops = "".join(f"  - set: {{key: 'k{i}', value: 'v{i}'}}\n" for i in range(6))
    return make_workspace(
        root,
        components={"cache": {"type": "redis"}},
        targets={"cache": {"url": url}},
        env={
            "state": {"backend": "redis", "url": url, "key_prefix": PREFIX},
            "lock": {"ttl": 3.0},
        },
        releases={"1.0.0": {"cache": 1}},
        migrations={
            "cache": {
                "0001_keys": {
                    "up.yaml": "ops:\n" + ops,
                    "down.yaml": "ops:\n  - del: {keys: [k0, k1, k2, k3, k4, k5]}\n",
                }
            }
        },
    )


def test_a_holder_stopped_past_its_lease_writes_nothing_after_recover(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.set("keep", "me")
    root = redis_workspace(tmp_path / "ws", redis_server.url)
    before = data_keys(client)
    # the apply freezes itself (SIGSTOP) after two of the six ops, as `kill -STOP` would
    holder = spawn(root, "apply", "--yes", failpoint="in-run@2=stop")
    try:
        wait_for("the holder to stop", lambda: process_state(holder.pid) == "T")
        assert client.get("k1") == b"v1" and client.get("k2") is None
        wait_for("the lock to expire", lambda: status(root)["lock"] is None)
        refused = run_cli("recover", cwd=root)
        assert refused.code == 4, refused
        assert "still alive" in refused.err and "--force" in refused.err
        recovered = run_cli("recover", "--force", cwd=root)
        assert recovered.code == 0, recovered
        assert "rolled back" in recovered.out
    finally:
        os.kill(holder.pid, signal.SIGCONT)
    _out, err = holder.communicate(timeout=60)
    assert holder.returncode == 4, err
    assert "lease" in err
    shown = status(root)
    assert shown["dirty"] is False
    assert shown["components"]["cache"]["version"] == 0
    assert same_keyspace(before, data_keys(client)) == []  # no k2..k5 landed after recover
    assert run_cli("history", "--verify", cwd=root).code == 0
    history = [json.loads(line) for line in client.lrange(f"{PREFIX}:local:history", 0, -1)]
    forced = [h for h in history if h["action"] == "recover"]
    assert forced and forced[-1].get("forced") is True
    assert run_cli("apply", "--yes", cwd=root).code == 0
    assert client.get("k5") == b"v5"
    client.close()


# --- 2. an orphaned script --------------------------------------------------------------


def script_workspace(root: Path) -> Path:
    return slow_script_workspace(
        root,
        up="""
            echo changed > data/value.txt
            touch "$RELEASECTL_WORKSPACE/started"
            sleep 2
            echo ran > data/result.txt
        """,
        down="rm -f data/result.txt\n",
        timeout=60,
    )


def test_recover_ends_the_script_an_apply_killed_left_running(tmp_path: Path) -> None:
    root = script_workspace(tmp_path / "ws")
    holder = spawn(root, "apply", "--yes")
    wait_for("the script to start", (root / "started").exists)
    os.kill(holder.pid, signal.SIGKILL)  # apply only: its script's process group lives on
    holder.communicate(timeout=30)
    journal = status(root)["journal"]
    assert journal["pgid"] and journal["run_id"]
    recovered = run_cli("recover", cwd=root)
    assert recovered.code == 0, recovered
    assert "ended" in recovered.out and "of the step's script" in recovered.out
    time.sleep(2.5)  # past the moment the script would have written its result
    assert not (root / "data/result.txt").exists()
    assert (root / "data/value.txt").read_text() == "original\n"
    assert status(root)["components"]["hooks"]["version"] == 0


def test_a_script_never_runs_unrecorded(tmp_path: Path) -> None:
    """The apply dies before it records the script's process group: the script never starts."""
    root = script_workspace(tmp_path / "ws")
    proc = subprocess.run(
        [sys.executable, "-m", "releasectl", "apply", "--yes"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "RELEASECTL_FAILPOINT": "state-write@2=kill"},
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    time.sleep(0.3)
    assert not (root / "started").exists()
    assert run_cli("recover", cwd=root).code == 0
    assert (root / "data/value.txt").read_text() == "original\n"


# --- 3. unlock of a live lock -----------------------------------------------------------


def test_unlock_refuses_a_live_holder_unless_forced(example: Path) -> None:
    holder = spawn(example, "apply", "--yes", failpoint="before-run@0=sleep:3")
    lock = example / ".releasectl/locks/local.lock"
    wait_for("the lock", lock.exists)
    wait_for("the lock's content", lambda: lock.read_text().strip().endswith("}"))
    lock_id = json.loads(lock.read_text())["id"]
    refused = run_cli("unlock", lock_id, cwd=example)
    assert refused.code == 4, refused
    assert "holder is alive on this host" in refused.err and "--force" in refused.err
    assert lock.exists()
    forced = run_cli("unlock", lock_id, "--force", cwd=example)
    assert forced.code == 0, forced
    _out, err = holder.communicate(timeout=120)
    assert holder.returncode == 4, err  # its next state write found the lock gone
    entries = [
        json.loads(line)
        for line in (example / ".releasectl/history/local.jsonl").read_text().splitlines()
    ]
    unlocks = [e for e in entries if e["action"] == "unlock"]
    assert len(unlocks) == 1 and unlocks[0]["forced"] is True
    if status(example)["dirty"]:
        assert run_cli("recover", cwd=example).code == 0
    assert run_cli("apply", "--yes", cwd=example).code == 0
    assert run_cli("history", "--verify", cwd=example).code == 0


def test_unlock_of_a_dead_holder_needs_no_force(example: Path) -> None:
    lock = example / ".releasectl/locks/local.lock"
    lock.parent.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock.write_text(
        json.dumps(
            {
                "id": "dead1",
                "env": "local",
                "holder": "ci",
                "operation": "apply",
                "host": socket.gethostname(),
                "pid": dead.pid,
                "since": "2026-01-01T00:00:00.000Z",
            }
        )
    )
    assert run_cli("unlock", "dead1", cwd=example).code == 0
    assert not lock.exists()
