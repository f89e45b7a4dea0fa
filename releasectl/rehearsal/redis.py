"""The Redis copy: an embedded Redis of the rehearsal's own, loaded with the scoped backups the
real target writes for the plan's steps (the same scopes, Lua SCAN + DUMP, read only).

The source of the snapshot is the real server, except for an embedded target
(`redis+embedded://PATH`): starting a server on PATH would rewrite the file when it stops, so
the file is copied (under a shared lock, so no server starts on it meanwhile) and a private
server reads the copy; if another process runs the server on PATH, its socket is read instead.

While a step runs, the copy is watched with MONITOR: every command the step sent (and those its
Lua scripts ran) is checked against the step's scope, which is how a `migration.py` that
touches keys outside its declared scope is caught, although the copy does not hold those keys.
A read-only SCAN of the source counts the real keys such an operation names.

The copy's state is every key's DUMP and PTTL, and the CONFIG parameters the steps set. Two
states are compared by DUMP; when two DUMPs differ (a hash's encoding may change when it grows
and shrinks back), the values are compared through RESTORE into two scratch keys. TTLs are
compared allowing for the time between the two states.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from releasectl.clients.redis import EMBEDDED_SCHEME, embedded_path
from releasectl.models.analysis import KeyCount, RedisChanges
from releasectl.models.rehearsal import CopyInfo, Difference
from releasectl.models.workspace import RedisTarget as RedisSettings
from releasectl.rehearsal.base import NotRehearsed, Observed, Request, spooled
from releasectl.rehearsal.redis_watch import Commands, Watched, renames, watch
from releasectl.targets.base import Target, TargetContext, open_target
from releasectl.targets.redis import ops

if TYPE_CHECKING:
    import redis

    from releasectl.clients.redis_embedded import EmbeddedServer
    from releasectl.models.plan import Step
    from releasectl.workspace.catalogue import Migration

TTL_SLACK_MS = 2_000  # TTLs tick between two states; more than this is a difference
OUTSIDE = "(outside scope)"


@dataclass
class State:
    keys: dict[bytes, tuple[bytes, int]]  # key -> (DUMP, PTTL)
    config: dict[str, str]
    at: float = field(default_factory=time.monotonic)


class RedisCopy:
    def __init__(self, ctx: TargetContext, info: CopyInfo, server: EmbeddedServer) -> None:
        import redis

        self.ctx = ctx
        self.info = info
        self.server = server
        self.client = redis.Redis(unix_socket_path=str(server.socket), socket_timeout=60)
        self.scopes: dict[str, list[str]] = {}
        self.params: list[str] = []
        self.source: Target | None = None
        self.count_limit = 0
        self.commands = Commands(self.client)

    # --- state ----------------------------------------------------------------------------

    def state(self) -> State:
        keys: dict[bytes, tuple[bytes, int]] = {}
        for batch in _batches(self.client.scan_iter(count=1000), 500):
            pipe = self.client.pipeline(transaction=False)
            for key in batch:
                pipe.dump(key)
                pipe.pttl(key)
            answers = pipe.execute()
            for i, key in enumerate(batch):
                dump, ttl = answers[2 * i], answers[2 * i + 1]
                if dump is not None:
                    keys[key] = (dump, int(ttl))
        config: dict[str, str] = {}
        for param in self.params:
            found: dict[Any, Any] = dict(self.client.config_get(param))
            config[param] = str(found.get(param, found.get(param.encode(), "")))
        return State(keys, config)

    def compare(self, before: State, after: State) -> list[Difference]:
        found: list[Difference] = []
        elapsed = (after.at - before.at) * 1000
        for key in sorted(set(before.keys) | set(after.keys)):
            shown = _show(key)
            if key not in after.keys:
                found.append(Difference(what=f"key {shown}", detail="missing after the rollback"))
                continue
            if key not in before.keys:
                found.append(Difference(what=f"key {shown}", detail="left behind by the rollback"))
                continue
            (dump_a, ttl_a), (dump_b, ttl_b) = before.keys[key], after.keys[key]
            if dump_a != dump_b and not self._same_value(dump_a, dump_b):
                found.append(Difference(what=f"key {shown}", detail="value differs"))
            ttl = _ttl_difference(ttl_a, ttl_b, elapsed)
            if ttl:
                found.append(Difference(what=f"key {shown}", detail=ttl))
        for param in sorted(set(before.config) | set(after.config)):
            if before.config.get(param) != after.config.get(param):
                found.append(
                    Difference(
                        what=f"CONFIG {param}",
                        detail=f"{before.config.get(param)!r} before, "
                        f"{after.config.get(param)!r} after",
                    )
                )
        return found

    def _same_value(self, a: bytes, b: bytes) -> bool:
        """Whether two DUMPs hold the same value (encodings may differ)."""
        scratch = f"releasectl:rehearsal:compare:{uuid.uuid4().hex}"
        names = (f"{scratch}:a", f"{scratch}:b")
        try:
            for name, dump in zip(names, (a, b), strict=True):
                self.client.restore(name, 0, dump, replace=True)
            values = [_value(self.client, n) for n in names]
            return bool(values[0] == values[1])
        finally:
            self.client.delete(*names)

    # --- watching a step ------------------------------------------------------------------

    def watch(self) -> contextlib.AbstractContextManager[Watched]:
        return watch(self.server.socket, self.client)

    # --- what a step did ------------------------------------------------------------------

    def observe(
        self, step: Step, migration: Migration | None, before: State, after: State, watched: Any
    ) -> Observed:
        scope = self.scopes.get(migration.id, []) if migration is not None else []
        commands = watched.commands if isinstance(watched, Watched) else []
        renamed_from = renames(commands)
        gone = [k for k in before.keys if k not in after.keys]
        new = [k for k in after.keys if k not in before.keys]
        new_dumps = {after.keys[k][0] for k in new}
        renamed = [k for k in gone if k in renamed_from or before.keys[k][0] in new_dumps]
        deleted = [k for k in gone if k not in set(renamed)]
        targets = {renamed_from[k] for k in renamed if k in renamed_from}
        created = [
            k
            for k in new
            if k not in targets and after.keys[k][0] not in {before.keys[g][0] for g in renamed}
        ]
        elapsed = (after.at - before.at) * 1000
        shortened = [
            k
            for k in before.keys
            if k in after.keys and _shortened(before.keys[k][1], after.keys[k][1], elapsed)
        ]
        changes = RedisChanges(
            deleted=_count(deleted, scope),
            renamed=_count(renamed, scope),
            ttl_shortened=_count(shortened, scope),
            created=_count(created, scope),
            outside_scope=self.commands.outside(commands, scope, self._real_count),
            scope=scope,
            observed=True,
        )
        return Observed(redis=changes)

    def _real_count(self, pattern: str) -> int | None:
        """Keys of the real target (the snapshot's source) `pattern` names: a read-only SCAN."""
        source = self.source
        if source is None:
            return None
        from releasectl.targets.redis import run as redis_run
        from releasectl.targets.redis.target import RedisTarget

        if not isinstance(source, RedisTarget):
            return None
        try:
            shards = source.endpoint.shards()
            key = ops.literal(pattern)
            if key is not None:
                return sum(int(c.exists(key)) for c in shards.clients)
            return redis_run.count(shards, pattern, source.settings.scan_count, self.count_limit)
        except Exception:  # the count is a courtesy: a failure leaves it unknown
            return None

    def close(self) -> None:
        if self.source is not None:
            with contextlib.suppress(Exception):
                self.source.close()
        with contextlib.suppress(Exception):
            self.client.flushall()  # the server saves its file when it stops: keep that short
        with contextlib.suppress(Exception):
            self.client.close()
        self.server.release()


def open_copy(request: Request) -> RedisCopy:
    from releasectl.clients.redis_embedded import EmbeddedServer

    real = request.real
    settings = real.settings
    if not isinstance(settings, RedisSettings):
        raise NotRehearsed("no Redis target settings")
    started = time.monotonic()
    source_ctx = _source_context(real, settings, request.workdir)
    copy_path = request.workdir / "copy" / "redis.db"
    copy_path.parent.mkdir()
    ctx = _context(
        real, RedisSettings(url=f"{EMBEDDED_SCHEME}{copy_path}", scan_count=settings.scan_count)
    )
    source = open_target(source_ctx) if source_ctx is not None else None
    try:
        binary = copy_binary(_version(source)) if source is not None else None
        server = EmbeddedServer.acquire(copy_path, binary=binary)
    except BaseException:
        if source is not None:
            source.close()
        raise
    copy = RedisCopy(
        ctx,
        CopyInfo(component=real.component, type=real.type, kind="embedded Redis", made=True),
        server,
    )
    copy.source = source
    try:
        copy.count_limit = request.limits.max_keys
        target = open_target(ctx)
        keys = size = 0
        patterns: list[str] = []
        try:
            for step, migration in request.steps:
                if migration is None:
                    continue
                if source is None:  # nothing on the real side yet: an empty copy
                    from releasectl.targets.redis.target import RedisTarget

                    assert isinstance(target, RedisTarget)
                    copy.scopes[migration.id], params = target.scope(migration)
                    copy.params.extend(params)
                    continue
                with spooled(
                    request.workdir, request.limits.max_bytes - size, "the Redis scope"
                ) as spool:
                    info = source.backup(step, migration, spool.writer)
                    keys += info.items
                    if keys > request.limits.max_keys:
                        raise NotRehearsed(
                            f"the scope holds {keys:,} keys, more than rehearsal.max_keys "
                            f"({request.limits.max_keys:,})"
                        )
                    target.restore(spool.reader())
                    size += spool.size
                copy.scopes[migration.id] = list(info.scope)
                copy.params.extend(str(p) for p in info.detail.get("config", []))
                patterns.extend(info.scope)
        finally:
            target.close()
        copy.params = list(dict.fromkeys(copy.params))
        copy.info = copy.info.model_copy(
            update={
                "scope": list(dict.fromkeys(patterns)),
                "items": keys,
                "bytes": size,
                "seconds": round(time.monotonic() - started, 3),
            }
        )
    except BaseException:
        copy.close()
        raise
    return copy


def _version(source: Target) -> tuple[int, ...]:
    """The version of the Redis the snapshot comes from (its DUMPs load only into one as new)."""
    from releasectl.targets.redis.target import RedisTarget

    assert isinstance(source, RedisTarget)
    import redis as redis_py

    try:
        info = source.endpoint.shards().clients[0].info("server")
    except (redis_py.RedisError, OSError) as exc:
        raise source.endpoint.error("cannot read the server's version", exc) from exc
    return _parse_version(str(info.get("redis_version", "0")))


def _parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


@functools.cache
def _binary_version(binary: str) -> tuple[int, ...]:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return ()
    found = re.search(r"v=(\d+(?:\.\d+)*)", out)
    return _parse_version(found.group(1)) if found else ()


def copy_binary(source: tuple[int, ...]) -> str | None:
    """A redis-server at least as new as the source (None: the embedded default will do)."""
    from releasectl.clients.redis_embedded import server_binary

    default = server_binary()
    if _binary_version(default) >= source:
        return None
    found = shutil.which("redis-server")
    if found is not None and _binary_version(found) >= source:
        return found
    shown = ".".join(map(str, source))
    raise NotRehearsed(
        f"the target runs Redis {shown}, and no redis-server here is as new (the embedded one "
        f"is {'.'.join(map(str, _binary_version(default)))}): its DUMPs cannot be loaded; put "
        "a newer redis-server on PATH"
    )


def _context(real: TargetContext, settings: RedisSettings) -> TargetContext:
    return TargetContext(
        root=real.root,
        env=real.env,
        component=real.component,
        type=real.type,
        settings=settings,
        migrations=real.migrations,
        protected=real.protected,
        environ=real.environ,
        log=real.log,
        default_timeout=real.default_timeout,
    )


def _source_context(
    real: TargetContext, settings: RedisSettings, workdir: Path
) -> TargetContext | None:
    """Where the snapshot is read: the real server, or for an embedded target a private server
    on a copy of its file (None: the file does not exist, the copy starts empty)."""
    if not settings.url.startswith(EMBEDDED_SCHEME):
        return real
    from releasectl.clients.redis_embedded import EmbeddedServer

    path = embedded_path(settings.url, real.root).resolve()
    running = EmbeddedServer._running.get(path)
    if running is not None:  # this process serves it: read through its socket
        return _context(real, settings.model_copy(update={"url": f"unix://{running.socket}"}))
    lock = path.with_name(path.name + ".lock")
    source = workdir / "source" / path.name
    source.parent.mkdir()
    fd = os.open(lock, os.O_RDONLY) if lock.exists() else None
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                socket = _live_socket(lock)
                if socket is None:
                    raise NotRehearsed(
                        f"the embedded Redis {path} is in use by another process"
                    ) from None
                return _context(real, settings.model_copy(update={"url": f"unix://{socket}"}))
        if not path.exists():
            return None
        shutil.copyfile(path, source)
    finally:
        if fd is not None:
            os.close(fd)
    return _context(real, settings.model_copy(update={"url": f"{EMBEDDED_SCHEME}{source}"}))


def _live_socket(lock: Path) -> str | None:
    try:
        record = json.loads(lock.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return None
    socket = record.get("socket") if isinstance(record, dict) else None
    return socket if isinstance(socket, str) and Path(socket).exists() else None


# --- helpers ------------------------------------------------------------------------------


def _batches(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _count(keys: list[bytes], scope: list[str]) -> list[KeyCount]:
    counts: dict[str, int] = {}
    for key in keys:
        pattern = next((p for p in scope if ops.matches(p, key)), OUTSIDE)
        counts[pattern] = counts.get(pattern, 0) + 1
    return [KeyCount(pattern=p, count=c) for p, c in counts.items()]


def _shortened(before: int, after: int, elapsed_ms: float) -> bool:
    if after < 0:
        return False
    return before < 0 or after < before - elapsed_ms - TTL_SLACK_MS


def _ttl_difference(before: int, after: int, elapsed_ms: float) -> str | None:
    if before < 0 and after < 0:
        return None
    if before < 0:
        return f"expires in {after / 1000:.0f} s now, had no TTL"
    if after < 0:
        return f"has no TTL now, expired in {before / 1000:.0f} s"
    if abs(after - (before - elapsed_ms)) > TTL_SLACK_MS:
        return f"TTL {after / 1000:.0f} s, was {before / 1000:.0f} s"
    return None


def _value(client: redis.Redis, key: str) -> Any:
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind == "string":
        return client.get(key)
    if kind == "hash":
        return client.hgetall(key)
    if kind == "set":
        return client.smembers(key)
    if kind == "zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "stream":
        return client.xrange(key)
    return client.dump(key)


def _show(key: bytes) -> str:
    text = key.decode(errors="backslashreplace")
    return text if len(text) <= 120 else text[:117] + "..."
