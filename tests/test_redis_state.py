"""The Redis state backend on the private redis-server and on the embedded server: state
writes with serial and fencing checks, the SET NX PX lock (holder, waiting, races between
threads and processes, expiry and takeover, renewal, break), and the history list."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from releasectl.errors import ExitCode, InputError, LockHeldError, StaleError
from releasectl.models.state import State
from releasectl.state.base import LockInfo
from releasectl.state.redis import RedisBackend
from tests.conftest import REPO


@pytest.fixture(params=["server", "embedded"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisBackend]:
    if request.param == "server":
        url = request.getfixturevalue("redis_url")
    else:
        url = f"redis+embedded://{tmp_path}/state.rdb"
    made = RedisBackend(url, "staging", prefix="rtest")
    yield made
    made.close()


def info(holder: str = "alice", operation: str = "apply") -> LockInfo:
    return LockInfo.new("staging", holder, operation, "2024-05-01T10:00:00Z")


def state(serial: int, lineage: str = "L1") -> State:
    return State(env="staging", lineage=lineage, serial=serial)


def test_state_round_trip_and_serials(backend: RedisBackend) -> None:
    assert backend.read() is None
    backend.write(state(1), None)
    backend.write(state(2), None)
    assert backend.read() == state(2)
    with pytest.raises(StaleError, match="serial 2, recorded 2"):
        backend.write(state(2), None)
    with pytest.raises(StaleError):
        backend.write(state(3, lineage="other"), None)
    assert backend.read() == state(2)


def test_lock_shows_holder_and_blocks_others(backend: RedisBackend) -> None:
    lock = backend.acquire(info("alice"), ttl=30, timeout=0)
    held = backend.current_lock()
    assert held is not None and held.id == lock.info.id and held.holder == "alice"
    assert held.token is not None and held.token >= 1
    started = time.monotonic()
    with pytest.raises(LockHeldError) as caught:
        backend.acquire(info("bob"), ttl=30, timeout=0.5)
    assert time.monotonic() - started >= 0.5  # it waited `timeout` seconds
    assert caught.value.exit_code == ExitCode.LOCKED
    assert "is locked: held by alice" in str(caught.value) and lock.info.id in str(caught.value)
    backend.write(state(1), lock)
    lock.release()
    assert backend.current_lock() is None
    second = backend.acquire(info("bob"), ttl=30, timeout=0)
    assert (second.info.token or 0) > (lock.info.token or 0)
    second.release()


def test_waiting_acquire_gets_the_lock_once_released(backend: RedisBackend) -> None:
    lock = backend.acquire(info("alice"), ttl=30, timeout=0)
    threading.Timer(0.3, lock.release).start()
    second = backend.acquire(info("bob"), ttl=30, timeout=5)
    assert backend.current_lock() == second.info
    second.release()


def test_threads_race_for_the_lock(backend: RedisBackend) -> None:
    barrier = threading.Barrier(8)
    winners: list[str] = []
    losers: list[str] = []

    def contend(name: str) -> None:
        barrier.wait()
        try:
            backend.acquire(info(name), ttl=30, timeout=0)
            winners.append(name)
        except LockHeldError:
            losers.append(name)

    threads = [threading.Thread(target=contend, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1 and len(losers) == 7
    held = backend.current_lock()
    assert held is not None and held.holder == winners[0]


PROC = textwrap.dedent(
    """
    import sys, time
    from releasectl.errors import LockHeldError
    from releasectl.models.state import State
    from releasectl.state.base import LockInfo
    from releasectl.state.redis import RedisBackend

    url, name, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    backend = RedisBackend(url, "staging", prefix="rtest")
    lock_info = LockInfo.new("staging", name, "apply", "now")
    if mode == "race":
        start = float(sys.argv[4])
        time.sleep(max(0.0, start - time.time()))
        try:
            lock = backend.acquire(lock_info, ttl=30, timeout=0)
            print("won", flush=True)
            time.sleep(1)
            lock.release()
        except LockHeldError:
            print("lost", flush=True)
    else:  # hold: take the lock, wait for a line, then try to write
        lock = backend.acquire(lock_info, ttl=float(sys.argv[4]), timeout=0)
        print("locked", flush=True)
        sys.stdin.readline()
        try:
            backend.write(State(env="staging", lineage="L1", serial=1), lock)
            print("written", flush=True)
        except LockHeldError as exc:
            print("refused:", exc, flush=True)
    """
)


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PROC, *args],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_processes_race_for_the_lock(redis_url: str) -> None:
    start = str(time.time() + 1.5)
    procs = [spawn(redis_url, f"p{i}", "race", start) for i in range(3)]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sorted(outputs) == ["lost", "lost", "won"], outputs


def test_expired_holder_is_fenced_off(redis_url: str) -> None:
    """A holder that stalls (SIGSTOP: no renewal) loses the lock to a newcomer after the ttl;
    when it wakes up, its write is refused."""
    import signal

    holder = spawn(redis_url, "stalled", "hold", "0.6")
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "locked"
    backend = RedisBackend(redis_url, "staging", prefix="rtest")
    try:
        holder.send_signal(signal.SIGSTOP)
        with pytest.raises(LockHeldError):
            backend.acquire(info("bob"), ttl=30, timeout=0)  # still held for now
        newcomer = backend.acquire(info("bob"), ttl=30, timeout=5)  # taken after expiry
        backend.write(state(1), newcomer)
        holder.send_signal(signal.SIGCONT)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        out = holder.communicate(timeout=30)[0]
        assert out.startswith("refused: refused to write the state of 'staging': lost the lock")
        assert "held by bob" in out
        assert backend.read() == state(1)  # the newcomer's write stands
        assert backend.current_lock() == newcomer.info  # nor was the newcomer's lock removed
        newcomer.release()
    finally:
        backend.close()
        if holder.poll() is None:
            holder.kill()


def test_renewal_keeps_a_short_lock_alive(backend: RedisBackend) -> None:
    lock = backend.acquire(info(), ttl=0.3, timeout=0)
    time.sleep(1.0)  # three ttls
    lock.check()
    backend.write(state(1), lock)
    with pytest.raises(LockHeldError):
        backend.acquire(info("bob"), ttl=1, timeout=0)
    lock.release()


def test_break_lock_by_id(backend: RedisBackend) -> None:
    lock = backend.acquire(info(), ttl=30, timeout=0)
    with pytest.raises(InputError, match="does not match the lock"):
        backend.break_lock(str(uuid.uuid4()))
    assert backend.current_lock() == lock.info
    broken = backend.break_lock(lock.info.id)
    assert broken == lock.info and backend.current_lock() is None
    with pytest.raises(LockHeldError, match="lost the lock"):
        lock.check()
    with pytest.raises(LockHeldError):
        backend.write(state(1), lock)
    lock.release()  # harmless: compare-and-delete finds nothing of ours
    with pytest.raises(InputError, match="is not locked"):
        backend.break_lock(lock.info.id)


def test_history_order_and_exact_lines(backend: RedisBackend) -> None:
    assert backend.last_history_line() is None
    assert list(backend.history_lines()) == []
    lines = [f'{{"n": {i}, "text": "é \\u2028 \\"q\\" \\t"}}' for i in range(2500)]
    for line in lines:
        backend.append_history(line)
    assert list(backend.history_lines()) == lines
    assert backend.last_history_line() == lines[-1]


def test_open_backend_from_workspace(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from releasectl.state import open_backend
    from releasectl.workspace import Workspace

    (tmp_path / "releasectl.yaml").write_text(
        textwrap.dedent(
            """
            apiVersion: releasectl/v1
            kind: Workspace
            name: demo
            components:
              cache: {type: redis}
            environments:
              staging:
                state: {backend: redis, url: "${STATE_URL}", key_prefix: demo}
                targets:
                  cache: {url: "redis+embedded://.releasectl/cache.rdb"}
            """
        )
    )
    monkeypatch.setenv("STATE_URL", redis_url)
    backend = open_backend(Workspace.load(tmp_path), "staging")
    assert isinstance(backend, RedisBackend)
    backend.write(state(1), None)
    assert backend.state_key == "demo:staging:state"
    assert "redis://127.0.0.1" in backend.describe()
    backend.close()
