"""Fixtures of the fault suite: a fresh place for each fault (its own workspace, a flushed
private Redis, a new PostgreSQL database), the clean-run pictures, and the fault counter that
`pytest_terminal_summary` (tests/conftest.py) adds up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import RedisServer, create_postgres_database, drop_postgres_database
from tests.faults.harness import Fault, compute_golden
from tests.faults.kinds import KINDS, STATE_PREFIX, Kind, Place

MakeFault = Callable[..., Fault]


@pytest.fixture
def make_fault(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeFault]:
    databases: list[str] = []

    def new_database() -> str:
        databases.append(create_postgres_database("rfault"))
        return databases[-1]

    def place_for(kind: Kind, label: str, *, on_redis: bool = False) -> Place:
        place = Place(root=tmp_path / label / "ws")
        place.root.parent.mkdir(parents=True, exist_ok=True)
        if kind.needs == "redis" or on_redis:
            server: RedisServer = request.getfixturevalue("redis_server")
            import redis

            client = redis.Redis.from_url(server.url)
            client.flushall()
            client.close()
            place.redis_url = server.url
        if kind.needs == "postgres":
            place.postgres_url = new_database()
        return place

    def make(name: str, **settings: object) -> Fault:
        kind = KINDS[name]
        compute_golden(kind, place_for)
        place = place_for(kind, "fault", on_redis=bool(settings.get("redis_state")))
        for key in ("state", "lock", "backups"):
            if key in settings:
                setattr(place, key, settings[key])
        if settings.get("redis_state"):  # state, history and lock in the private Redis
            url = str(settings.get("state_url") or place.redis_url)
            place.state = {"backend": "redis", "url": url, "key_prefix": STATE_PREFIX}
            place.lock = {"ttl": float(str(settings.get("ttl", 3.0)))}
        port = settings.get("target_via")  # a proxy's port in front of the target's server
        if port is not None:
            place.redis_url = _via(place.redis_url, int(str(port)))
            place.postgres_url = _via(place.postgres_url, int(str(port)))
        kind.write(place)
        return Fault(kind, place)

    yield make
    for url in databases:
        drop_postgres_database(url)


@pytest.fixture
def injected(record_property: Callable[[str, object], None]) -> Callable[[str], None]:
    """Call once the fault really happened (the process died, stopped, got the signal)."""

    def mark(what: str) -> None:
        record_property("fault", what)

    return mark


def _via(url: str, port: int) -> str:
    """`url` with its host and port replaced by the proxy's."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))
