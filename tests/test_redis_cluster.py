"""The redis target on a Redis Cluster (`cluster: true`): three primaries started here on free
loopback ports. Scans, pattern ops, backups and restores run per primary; keys of one batch
that live on different shards are restored on their own nodes; `rename` moves keys between
slots (and shards)."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from redis.cluster import RedisCluster

from releasectl.errors import TargetError
from releasectl.targets.base import Failure
from releasectl.targets.redis.target import RedisTarget
from releasectl.util.deadline import Deadline
from tests.redis_helpers import (
    Keyspace,
    make_target,
    same_keyspace,
    snapshot,
    step,
    write_migrations,
)


def cli(port: int, *args: str) -> str:
    """One command to one node (the cluster is assembled by hand, node by node)."""
    with redis.Redis(port=port, decode_responses=True) as client:
        reply = cast(Any, client).execute_command(*args)
    return str(reply)


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too. Ports from the kernel's
    ephemeral range can be above 55535, where the bus port would not exist."""
    import random
    import socket

    while True:
        port = random.randrange(20000, 30000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port


def start_nodes(exe: str, tmp: pytest.TempPathFactory) -> tuple[list[int], list[Any]]:
    """Three cluster-enabled servers on free ports; ([], []) if one did not come up (its port
    was taken between choosing and binding it)."""
    ports: list[int] = []
    while len(ports) < 3:
        port = cluster_port()
        if port not in ports:
            ports.append(port)
    procs: list[Any] = []
    for port in ports:
        workdir = tmp.mktemp(f"cluster{port}")
        procs.append(
            subprocess.Popen(
                [exe, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(workdir / "nodes.conf"), "--save", "",
                 "--appendonly", "no", "--dir", str(workdir)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    for port, proc in zip(ports, procs, strict=True):
        for _ in range(200):
            if proc.poll() is not None:
                break
            with contextlib.suppress(redis.RedisError), redis.Redis(port=port) as probe:
                if probe.ping():
                    break
            time.sleep(0.05)
        else:
            proc.kill()
        if proc.poll() is not None:
            stop(procs)
            return [], []
    return ports, procs


def stop(procs: list[Any]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        proc.wait(10)


@pytest.fixture(scope="module")
def cluster_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    exe = shutil.which("redis-server")
    if exe is None:  # pragma: no cover - .ci/run installs it
        pytest.fail("redis-server is not on PATH")
    for _attempt in range(3):
        ports, procs = start_nodes(exe, tmp_path_factory)
        if ports:
            break
    else:
        pytest.fail("could not start three redis-server nodes")
    try:
        ranges = [(0, 5460), (5461, 10922), (10923, 16383)]
        for port, (low, high) in zip(ports, ranges, strict=True):
            cli(port, "CLUSTER", "ADDSLOTSRANGE", str(low), str(high))
        for port in ports[1:]:
            cli(port, "CLUSTER", "MEET", "127.0.0.1", str(ports[0]))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            infos = [cli(port, "CLUSTER", "INFO") for port in ports]
            if all("cluster_state:ok" in i and "cluster_known_nodes:3" in i for i in infos):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the test cluster did not form")
        yield ports
    finally:
        stop(procs)


@pytest.fixture
def cluster_url(cluster_ports: list[int]) -> Iterator[str]:
    for port in cluster_ports:
        cli(port, "FLUSHALL")
    yield f"redis://127.0.0.1:{cluster_ports[0]}/0"
    for port in cluster_ports:
        cli(port, "FLUSHALL")


@pytest.fixture
def nodes(cluster_ports: list[int]) -> Iterator[list[redis.Redis]]:
    clients = [redis.Redis(port=port) for port in cluster_ports]
    yield clients
    for client in clients:
        client.close()


def cluster_snapshot(nodes: list[redis.Redis]) -> Keyspace:
    merged = Keyspace()
    for node in nodes:
        part = snapshot(node)
        merged.taken = merged.taken or part.taken  # when the first shard was read
        merged.update(part)
    return merged


def open_cluster_target(root: Path, url: str, files: dict[str, dict[str, str]]) -> RedisTarget:
    return make_target(root, url, write_migrations(root, files), cluster=True, scan_count=50)


def fill(rc: RedisCluster, n: int) -> None:
    pipe = cast(Any, rc).pipeline()
    for i in range(n):
        if i % 3 == 0:
            pipe.hset(f"app:{i}", mapping={"a": str(i), "b": "x"})
        else:
            pipe.set(f"app:{i}", f"value {i}", ex=1000 + i if i % 4 == 0 else None)
    pipe.set("cfg:one", "1")
    pipe.set("cfg:two", "2")
    pipe.set("other", "outside the scope")
    pipe.execute()


def test_backup_restore_exact_across_shards(
    tmp_path: Path, cluster_url: str, nodes: list[redis.Redis]
) -> None:
    files = {
        "0001_a": {
            "migration.yaml": "scope: ['app:*', 'cfg:one', 'cfg:two']\n",
            "up.yaml": "ops:\n  - del: {pattern: 'app:*'}\n  - del: {keys: [cfg:one, cfg:two]}\n",
        }
    }
    target = open_cluster_target(tmp_path, cluster_url, files)
    rc = RedisCluster.from_url(cluster_url)
    try:
        fill(rc, 1200)
        assert all(node.dbsize() > 100 for node in nodes)  # the keys really are spread
        before = cluster_snapshot(nodes)
        migration = target.ctx.migrations.migrations[0] if target.ctx.migrations else None
        assert migration is not None
        target.check(step(migration), migration)
        out = io.BytesIO()
        assert target.backup(step(migration), migration, out).items == 1202
        target.run(step(migration), migration, Deadline.after(30))
        target.verify(step(migration), migration, Deadline.after(30))
        assert sum(node.dbsize() for node in nodes) == 1  # only "other" is left
        rc.set("app:new", "created after the backup")
        out.seek(0)
        assert target.restore(out).items == 1202
        assert same_keyspace(before, cluster_snapshot(nodes)) == []
    finally:
        rc.close()
        target.close()


def test_ops_and_checks_on_a_cluster(
    tmp_path: Path, cluster_url: str, nodes: list[redis.Redis]
) -> None:
    up = """
        ops:
          - rename: {from: "s:v1:", to: "s:v2:"}
          - rename: {from: "{tag}:old:", to: "{tag}:new:"}
          - expire: {pattern: "cache:*", seconds: 300}
          - del: {pattern: "tmp:*"}
          - hset: {key: "config", fields: {mode: "strict"}}
          - config_set: {parameter: maxmemory-policy, value: allkeys-lru}
    """
    checks = """
        checks:
          - count: {pattern: "s:v2:*", min: 300, max: 300}
          - count: {pattern: "{tag}:new:*", min: 20, max: 20}
          - hget: {key: config, field: mode, equals: strict}
          - config: {parameter: maxmemory-policy, equals: allkeys-lru}
    """
    files = {"0001_ops": {"up.yaml": up, "verify.yaml": checks}}
    target = open_cluster_target(tmp_path, cluster_url, files)
    rc = RedisCluster.from_url(cluster_url)
    policies = [node.config_get("maxmemory-policy")["maxmemory-policy"] for node in nodes]
    try:
        pipe = cast(Any, rc).pipeline()
        for i in range(300):
            pipe.set(f"s:v1:{i}", f"session {i}", ex=5000)
            pipe.set(f"cache:{i}", "c")
            pipe.set(f"tmp:{i}", "t")
        for i in range(20):
            pipe.set(f"{{tag}}:old:{i}", i)  # same slot: plain RENAMENX
        pipe.execute()
        migration = target.ctx.migrations.migrations[0] if target.ctx.migrations else None
        assert migration is not None
        out = io.BytesIO()
        target.backup(step(migration), migration, out)
        before_run = out.getvalue()
        target.run(step(migration), migration, Deadline.after(60))
        target.verify(step(migration), migration, Deadline.after(60))
        assert rc.get("s:v2:7") == b"session 7" and 0 < rc.ttl("s:v2:7") <= 5000
        assert rc.exists("s:v1:7") == 0
        assert all(0 < rc.ttl(f"cache:{i}") <= 300 for i in range(0, 300, 37))
        assert all(
            node.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
            for node in nodes
        )
        # a clash across slots is refused like a local one
        rc.set("s:v1:7", "again")
        rc.set("s:v2:7", "exists")
        with pytest.raises(TargetError, match="the new key exists"):
            target.run(step(migration), migration, Deadline.after(60))
        said = target.rollback(
            step(migration), migration, io.BytesIO(before_run), Failure("run", RuntimeError())
        )
        assert "restored the backup" in said
        assert rc.get("s:v1:7") == b"session 7" and rc.exists("s:v2:7") == 0
        assert [node.config_get("maxmemory-policy")["maxmemory-policy"] for node in nodes] == (
            policies
        )
    finally:
        for node, policy in zip(nodes, policies, strict=True):
            node.config_set("maxmemory-policy", policy or "noeviction")
        rc.close()
        target.close()


def test_deadline_and_python_migration_on_a_cluster(
    tmp_path: Path, cluster_url: str, nodes: list[redis.Redis]
) -> None:
    source = """
        def up(r):
            for i in range(50):
                r.set(f"py:{i}", i)

        def verify(r):
            return r.get("py:49") == "49"
    """
    files = {
        "0001_py": {"migration.py": source, "migration.yaml": "scope: ['py:*']\n"},
        "0002_slow": {"up.yaml": "ops:\n  - set: {key: a, value: '1'}\n"},
    }
    target = open_cluster_target(tmp_path, cluster_url, files)
    try:
        assert target.ctx.migrations is not None
        first, second = target.ctx.migrations.migrations
        target.run(step(first), first, Deadline.after(30))
        target.verify(step(first), first, Deadline.after(30))
        assert sum(node.dbsize() for node in nodes) == 50
        from releasectl.util.deadline import StepTimeout

        with pytest.raises(StepTimeout):
            target.run(step(second), second, Deadline.after(0))
        assert sum(node.dbsize() for node in nodes) == 50
    finally:
        target.close()
