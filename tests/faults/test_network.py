"""The network fails in the middle of a step: a TCP proxy (tests/faults/proxy.py) in front of
the private Redis or PostgreSQL cuts every connection when the step sends a chosen command,
sometimes after the server got it, sometimes refusing connections for a while after. The
target, or the state backend, goes away mid-step; every fault ends consistent."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from tests.conftest import RedisServer, postgres_base
from tests.faults.conftest import MakeFault
from tests.faults.proxy import Cut, proxy_to

DOWN = 1.5  # seconds a "down" cut refuses connections

TARGET_CASES = [
    # kind, trigger, forwarded, down
    pytest.param("redis-server", b"RPUSH", False, 0.0, id="redis-cut-before-rpush"),
    pytest.param("redis-server", b"RPUSH", True, 0.0, id="redis-cut-after-rpush"),
    pytest.param("redis-server", b"three", False, DOWN, id="redis-down-at-step3"),
    pytest.param("postgres", b"ADD COLUMN", False, 0.0, id="postgres-cut-at-alter"),
    pytest.param("postgres", b"COMMIT", True, 0.0, id="postgres-cut-after-commit-sent"),
    pytest.param("postgres", b"upgraded", False, DOWN, id="postgres-down-at-step3"),
]


def upstream(kind: str, redis_server: RedisServer) -> tuple[str, int]:
    if kind == "redis-server":
        return "127.0.0.1", redis_server.port
    parts = urlsplit(postgres_base())
    return parts.hostname or "127.0.0.1", parts.port or 5432


@pytest.mark.parametrize(("kind", "trigger", "forward", "down"), TARGET_CASES)
def test_the_target_connection_is_cut_mid_step(
    make_fault: MakeFault,
    injected: Callable[[str], None],
    redis_server: RedisServer,
    kind: str,
    trigger: bytes,
    forward: bool,
    down: float,
) -> None:
    with proxy_to(*upstream(kind, redis_server)) as proxy:
        fault = make_fault(kind, target_via=proxy.port)
        proxy.cut = cut = Cut(trigger, forward=forward, down_for=down)
        result = fault.cli("apply", "--yes")
        assert cut.done.is_set(), result
        assert result.code == 1, result
        injected(f"{kind}: connection cut at {trigger.decode()!r}{' (down)' if down else ''}")
        time.sleep(max(0.0, proxy.down_until - time.monotonic()))
        fault.settle()


STATE_CASES = [
    pytest.param(b'"phase": "run"', False, 0.0, id="cut-at-the-journal-write"),
    pytest.param(b'"phase": "record"', False, DOWN, id="down-at-the-record-journal"),
    pytest.param(b'"phase": "record"', True, DOWN, id="down-after-the-record-journal"),
]


@pytest.mark.parametrize(("trigger", "forward", "down"), STATE_CASES)
def test_the_state_backend_connection_is_cut_mid_step(
    make_fault: MakeFault,
    injected: Callable[[str], None],
    redis_server: RedisServer,
    trigger: bytes,
    forward: bool,
    down: float,
) -> None:
    """State, history and lock in Redis behind the proxy, the data in SQLite: the state write
    fails after the target changed (the step committed, its record did not)."""
    with proxy_to("127.0.0.1", redis_server.port) as proxy:
        url = f"redis://127.0.0.1:{proxy.port}/0"
        fault = make_fault("sqlite", redis_state=True, state_url=url, ttl=3.0)
        proxy.cut = cut = Cut(trigger, forward=forward, down_for=down)
        result = fault.cli("apply", "--yes")
        assert cut.done.is_set(), result
        assert result.code != 0, result
        injected(f"state backend: connection cut at {trigger.decode()}{' (down)' if down else ''}")
        time.sleep(max(0.0, proxy.down_until - time.monotonic()))
        until = time.monotonic() + 30
        while fault.status()["lock"] is not None:  # its release was lost with the line:
            assert time.monotonic() < until  # the lock ends with its lease
            time.sleep(0.1)
        fault.settle()
