"""Scoped Redis backup and restore through the redis target, against a private redis-server.

Starts redis-server on a free loopback port (no persistence), loads N keys with
`redis-cli --pipe` (a RESP stream generated chunk by chunk: 2/3 small strings, 1/3 small
hashes, one key in ten with a TTL), then measures in the same run:

- backup: `RedisTarget.backup` of a migration whose scope is `bench:*` (every loaded key),
  streamed to a file; keys/s and the peak RSS of the Python process doing it;
- restore: `RedisTarget.restore` of that file after a mutation (a tenth of the keys deleted, new
  keys created in the scope): it UNLINKs every key of the scope and RESTOREs the saved ones;
- the ceiling: `redis-benchmark -P 64 -t set -n 1000000` SET throughput on the same server;
- naive: one round trip per key (a DUMP + PTTL pipeline of one key) on a subset of keys,
  extrapolated to N (said so in the output).

Backup and restore each run in a child process (`--child`), so that the peak RSS read through
`os.wait4` is that of the backup or restore alone and not of the loader or of earlier runs;
running them for 100,000 and 1,000,000 keys shows whether memory stays flat in the key count.
After the restore, the bench checks that the keyspace has N keys again and spot-checks values
and TTLs; a mismatch exits 1.

    .venv/bin/python bench/redis_backup.py                        # 100k and 1M keys
    .venv/bin/python bench/redis_backup.py --sizes 50000 --repeat 1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from releasectl.models.plan import Step
    from releasectl.targets.redis.target import RedisTarget
    from releasectl.workspace.catalogue import Migration

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SCOPE = "bench:*"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), 0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _resp(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def load(port: int, n: int) -> float:
    """Load n keys through `redis-cli --pipe`, streamed in chunks; returns seconds."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["redis-cli", "-p", str(port), "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None
    chunk: list[bytes] = []
    for i in range(n):
        key = b"bench:%d" % i
        if i % 3 == 0:
            chunk.append(_resp(b"HSET", key, b"user", b"u%d" % i, b"role", b"viewer", b"n", b"7"))
        else:
            chunk.append(_resp(b"SET", key, b"value-%d" % i))
        if i % 10 == 0:
            chunk.append(_resp(b"PEXPIRE", key, b"3600000"))
        if len(chunk) >= 20000:
            proc.stdin.write(b"".join(chunk))
            chunk = []
    proc.stdin.write(b"".join(chunk))
    proc.stdin.close()
    out = proc.stdout.read() if proc.stdout else b""
    proc.wait()
    if b"errors: 0" not in out:
        raise SystemExit(f"loading failed: {out.decode(errors='replace')}")
    return time.perf_counter() - started


def make_target(url: str, root: Path) -> tuple[RedisTarget, Step, Migration]:
    from releasectl.models.plan import Step
    from releasectl.models.workspace import RedisTarget as Settings
    from releasectl.targets.base import TargetContext
    from releasectl.targets.redis.target import RedisTarget
    from releasectl.workspace.catalogue import scan_component

    mdir = root / "migrations" / "redis" / "0001_bench"
    mdir.mkdir(parents=True, exist_ok=True)
    (mdir / "migration.yaml").write_text(f"scope: ['{SCOPE}']\n")
    (mdir / "up.yaml").write_text("ops:\n  - del: {pattern: 'bench:*'}\n")
    found, errors = scan_component(root, "redis", "redis", "migrations/redis")
    assert not errors, errors
    ctx = TargetContext(
        root=root, env="bench", component="redis", type="redis",
        settings=Settings(url=url), migrations=found,
    )  # fmt: skip
    migration = found.migrations[0]
    step = Step.model_validate(
        {"component": "redis", "type": "redis", "action": "up", "from": 0, "to": 1,
         "migration": migration.id, "backup": True}
    )  # fmt: skip
    return RedisTarget(ctx), step, migration


def child(mode: str, url: str, path: str, root: str) -> None:
    target, step, migration = make_target(url, Path(root))
    started = time.perf_counter()
    if mode == "backup":
        with open(path, "wb", buffering=1 << 20) as out:
            info = target.backup(step, migration, out)
    else:
        with open(path, "rb", buffering=1 << 20) as src:
            info = target.restore(src)
    seconds = time.perf_counter() - started
    target.close()
    print(json.dumps({"seconds": seconds, "keys": info.items, **info.detail}))


def run_child(mode: str, url: str, path: Path, root: Path) -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", mode, url, str(path), str(root)],
        stdout=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read() if proc.stdout else b""
    if status != 0:
        raise SystemExit(f"{mode} child failed ({status})")
    result: dict[str, float] = json.loads(out)
    result["rss_mib"] = usage.ru_maxrss / 1024
    return result


def naive(url: str, sample: int) -> float:
    """Seconds for `sample` keys, one round trip (DUMP + PTTL) per key."""
    import redis

    client = redis.Redis.from_url(url)
    keys = [f"bench:{i}" for i in range(sample)]
    started = time.perf_counter()
    for key in keys:
        pipe = client.pipeline(transaction=False)
        pipe.dump(key)
        pipe.pttl(key)
        pipe.execute()
    seconds = time.perf_counter() - started
    client.close()
    return seconds


def ceiling(port: int) -> float:
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-P", "64", "-t", "set", "-n", "1000000", "-q"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    match = re.search(r"SET: ([\d.]+) requests per second", out.replace("\r", "\n"))
    if match is None:
        raise SystemExit(f"cannot read redis-benchmark output: {out!r}")
    return float(match.group(1))


def check(url: str, n: int) -> None:
    import redis

    client = redis.Redis.from_url(url)
    size = client.dbsize()
    if size != n:
        raise SystemExit(f"restore left {size} keys, expected {n}")
    for i in (0, 1, 2, 10, n // 2, n - 1):
        key = f"bench:{i}"
        if i % 3 == 0:
            ok = client.hget(key, "user") == f"u{i}".encode()
        else:
            ok = client.get(key) == f"value-{i}".encode()
        ttl = client.pttl(key)
        if not ok or ((i % 10 == 0) != (ttl > 0)):
            raise SystemExit(f"{key} was not restored exactly (ttl {ttl})")
    client.close()


def mutate(url: str, n: int) -> None:
    import redis

    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    for i in range(0, n, 10):
        pipe.unlink(f"bench:{i}")
        pipe.set(f"bench:new:{i}", "created after the backup")
        if len(pipe) >= 10000:
            pipe.execute()
    pipe.execute()
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3, help="best of R for backup/restore")
    parser.add_argument("--naive-sample", type=int, default=20000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    import redis

    version = (
        subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=True)
        .stdout.split()[2]
        .removeprefix("v=")
    )
    try:
        import hiredis

        parser_name = f"hiredis {hiredis.__version__}"
    except ImportError:
        parser_name = "pure-Python parser"
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"redis-server {version}, redis-py {redis.__version__} with {parser_name}"
    )
    with tempfile.TemporaryDirectory(prefix="rbench-") as tmp:
        tmpdir = Path(tmp)
        with redis_server(tmpdir) as port:
            url = f"redis://127.0.0.1:{port}/0"
            client = redis.Redis.from_url(url)
            for n in sizes:
                client.flushall()
                seconds = load(port, n)
                print(f"\n{n:,} keys loaded in {seconds:.1f} s (redis-cli --pipe)")
                backup_file = tmpdir / "backup.bin"
                best_b: dict[str, float] | None = None
                best_r: dict[str, float] | None = None
                for _ in range(args.repeat):
                    b = run_child("backup", url, backup_file, tmpdir / "ws")
                    if b["keys"] != n:
                        raise SystemExit(f"backup saved {b['keys']} keys, expected {n}")
                    best_b = b if best_b is None or b["seconds"] < best_b["seconds"] else best_b
                    mutate(url, n)
                    r = run_child("restore", url, backup_file, tmpdir / "ws")
                    check(url, n)
                    best_r = r if best_r is None or r["seconds"] < best_r["seconds"] else best_r
                assert best_b is not None and best_r is not None
                size_mb = backup_file.stat().st_size / 1e6
                print(
                    f"  backup : {best_b['seconds']:.2f} s  {n / best_b['seconds']:>9,.0f} keys/s"
                    f"  peak RSS {best_b['rss_mib']:.0f} MiB  file {size_mb:.1f} MB"
                )
                print(
                    f"  restore: {best_r['seconds']:.2f} s  {n / best_r['seconds']:>9,.0f} keys/s"
                    f"  peak RSS {best_r['rss_mib']:.0f} MiB  (of which UNLINK of "
                    f"{best_r['deleted']:,.0f} keys in the scope: {best_r['delete_seconds']:.2f} s)"
                )
            sample = min(args.naive_sample, sizes[-1])
            seconds = naive(url, sample)
            rate = sample / seconds
            print(
                f"\nnaive, one round trip per key: {rate:,.0f} keys/s on {sample:,} keys; "
                f"extrapolated to {sizes[-1]:,} keys: {sizes[-1] / rate:.0f} s"
            )
            client.flushall()
            print(f"redis-benchmark -P 64 -t set -n 1000000: {ceiling(port):,.0f} SET/s")
            client.close()
    shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
    else:
        main()
