"""The file backend's lock: exclusive, shows its holder, stale locks of dead processes are
taken over, `unlock` needs the id."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from releasectl.errors import InputError, LockHeldError, StaleError
from releasectl.models.state import State
from releasectl.state.base import LockInfo
from releasectl.state.file import FileBackend


def info(holder: str) -> LockInfo:
    return LockInfo.new("local", holder, "apply", "2026-11-25T00:00:00.000Z")


def test_second_holder_is_refused_with_holder_named(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path, "local")
    with backend.acquire(info("alice"), ttl=60, timeout=0) as lock:
        with pytest.raises(LockHeldError, match=r"locked: held by alice \(pid \d+") as exc:
            backend.acquire(info("bob"), ttl=60, timeout=0.3)
        assert lock.info.id in str(exc.value)
        assert backend.current_lock() == lock.info
    assert backend.current_lock() is None


def test_stale_lock_of_dead_process_is_taken_over(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path, "local")
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(proc.stdout)
    stale = LockInfo(
        id="old",
        env="local",
        holder="ghost",
        operation="apply",
        host=info("x").host,
        pid=dead,
        since="2026-01-01T00:00:00Z",
    )
    backend.lock_path.parent.mkdir(parents=True)
    backend.lock_path.write_text(json.dumps(stale.as_dict()))
    lock = backend.acquire(info("alice"), ttl=60, timeout=0)
    assert lock.taken_over == stale
    assert backend.current_lock() == lock.info
    lock.release()


def test_lock_of_other_host_is_not_taken(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path, "local")
    other = LockInfo(
        id="far",
        env="local",
        holder="ci",
        operation="apply",
        host="elsewhere",
        pid=1,
        since="2026-01-01T00:00:00Z",
    )
    backend.lock_path.parent.mkdir(parents=True)
    backend.lock_path.write_text(json.dumps(other.as_dict()))
    with pytest.raises(LockHeldError, match="held by ci"):
        backend.acquire(info("alice"), ttl=60, timeout=0)
    with pytest.raises(InputError, match="does not match"):
        backend.break_lock("wrong")
    assert backend.break_lock("far") == other
    backend.acquire(info("alice"), ttl=60, timeout=0).release()


def test_state_write_refuses_a_serial_that_moved(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path, "local")
    with backend.acquire(info("a"), ttl=60, timeout=0) as lock:
        backend.write(State(env="local", lineage="l1", serial=1), lock)
        backend.write(State(env="local", lineage="l1", serial=2), lock)
        with pytest.raises(StaleError):
            backend.write(State(env="local", lineage="l1", serial=2), lock)
        with pytest.raises(StaleError):
            backend.write(State(env="local", lineage="other", serial=3), lock)
    read = backend.read()
    assert read is not None and read.serial == 2


def test_write_without_the_lock_is_refused(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path, "local")
    lock = backend.acquire(info("a"), ttl=60, timeout=0)
    backend.break_lock(lock.info.id)
    with pytest.raises(LockHeldError, match="lost the lock"):
        backend.write(State(env="local", lineage="l", serial=1), lock)
