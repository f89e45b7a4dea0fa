"""Helpers shared by the Redis tests: migrations written into a tmp workspace, a target on a
URL, and a byte-exact picture of a keyspace."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import redis

from releasectl.models.plan import Step
from releasectl.models.workspace import RedisTarget as RedisSettings
from releasectl.targets.base import TargetContext
from releasectl.targets.redis.target import RedisTarget
from releasectl.workspace.catalogue import ComponentMigrations, Migration, scan_component
from tests.builders import add_migration


def write_migrations(root: Path, migrations: dict[str, dict[str, str]]) -> ComponentMigrations:
    """`{"0001_slug": {"up.yaml": "...", ...}}` under root/migrations/redis."""
    for mid, files in migrations.items():
        add_migration(root, "redis", mid, files)
    found, errors = scan_component(root, "redis", "redis", "migrations/redis")
    assert not errors, errors
    return found


def make_target(
    root: Path, url: str, found: ComponentMigrations | None = None, **settings: Any
) -> RedisTarget:
    ctx = TargetContext(
        root=root,
        env="test",
        component="redis",
        type="redis",
        settings=RedisSettings(url=url, **settings),
        migrations=found,
    )
    return RedisTarget(ctx)


def step(migration: Migration, action: str = "up") -> Step:
    n = migration.number
    return Step.model_validate(
        {
            "component": "redis",
            "type": "redis",
            "action": action,
            "from": n - 1 if action == "up" else n,
            "to": n if action == "up" else n - 1,
            "migration": migration.id,
            "backup": True,
        }
    )


class Keyspace(dict[bytes, tuple[bytes, bytes, int]]):
    """A snapshot of every key, with the monotonic time it was taken (TTLs tick meanwhile)."""

    taken: float = 0.0


def snapshot(client: redis.Redis) -> Keyspace:
    """Every key with its TYPE, value and TTL (seconds, -1 none), for exact comparisons.

    The value is the key's DUMP, except for sets and hashes: a hashtable's DUMP lists members in
    bucket order, which a RESTORE may change without changing the value, so those compare by
    their sorted members."""
    out = Keyspace()
    out.taken = time.monotonic()
    for key in client.scan_iter(count=1000):
        assert isinstance(key, bytes)
        kind = client.type(key)
        if kind == b"set":
            value = repr(sorted(client.smembers(key))).encode()
        elif kind == b"hash":
            value = repr(sorted(client.hgetall(key).items())).encode()
        else:
            value = client.dump(key) or b""
        assert isinstance(kind, bytes)
        out[key] = (kind, value, client.ttl(key))
    return out


def same_keyspace(
    before: dict[bytes, tuple[bytes, bytes, int]], after: dict[bytes, tuple[bytes, bytes, int]]
) -> list[str]:
    """Differences between two snapshots. TTLs may have ticked down by the time between the
    two snapshots (when both carry it), plus 2 s of rounding."""
    elapsed = 0.0
    if isinstance(before, Keyspace) and isinstance(after, Keyspace) and before.taken:
        elapsed = max(0.0, after.taken - before.taken)
    slack = 2 + math.ceil(elapsed)
    problems: list[str] = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            problems.append(f"{key!r} missing")
        elif key not in before:
            problems.append(f"{key!r} extra")
        else:
            (t1, d1, ttl1), (t2, d2, ttl2) = before[key], after[key]
            if t1 != t2 or d1 != d2:
                problems.append(f"{key!r} differs ({t1!r} vs {t2!r})")
            elif (ttl1 < 0) != (ttl2 < 0) or abs(ttl1 - ttl2) > slack:
                problems.append(f"{key!r} ttl {ttl1} vs {ttl2}")
    return problems
