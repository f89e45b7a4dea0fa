"""Running declarative Redis ops and checks against a server or a cluster.

Pattern operations (`del`, `rename`, `expire` by pattern, `count`) walk the keyspace with
`SCAN MATCH COUNT` on every primary and act on each batch in one pipeline, so they never hold
more than one batch of keys and never use `KEYS`. Commands on one key go through the router,
which sends them to the key's node. The deadline is checked between ops and batches (and the
client itself refuses to send a command past it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from releasectl.errors import TargetError
from releasectl.targets.redis import ops
from releasectl.util import failpoints

if TYPE_CHECKING:
    import redis
    from releasectl.clients.redis import Shards
    from releasectl.util.deadline import Deadline


class OpFailed(TargetError):
    pass


def scan(shards: Shards, pattern: str, count: int) -> Iterator[tuple[redis.Redis, list[bytes]]]:
    """(node client, keys) batches of the keys matching `pattern` on every primary; an exact
    key is looked up directly (a SCAN MATCH would walk the whole keyspace for it)."""
    key = ops.literal(pattern)
    if key is not None:
        if shards.router.exists(key):
            yield shards.clients[shards.shard_of(key)], [key.encode()]
        return
    for client in shards.clients:
        cursor: int = 0
        while True:
            cursor, found = client.scan(cursor, match=pattern, count=count)
            if found:
                yield client, [k if isinstance(k, bytes) else k.encode() for k in found]
            if cursor == 0:
                break


def run_part(shards: Shards, part: ops.Part, deadline: Deadline, *, scan_count: int) -> list[str]:
    """Run every op of `part` in order; returns one line per op for the history."""
    lines: list[str] = []
    for item in part.items:
        failpoints.hit("in-run")
        deadline.check(f"{item.where}")
        try:
            lines.append(f"{item.name}: {_run(shards, item, deadline, scan_count)}")
        except TargetError as exc:
            if exc.location is None:
                exc.location = item.where
            raise
        except Exception as exc:
            import redis
            from redis.exceptions import RedisClusterException

            if isinstance(exc, redis.TimeoutError) and deadline.expired():
                deadline.check(f"{item.where}")
            if isinstance(exc, redis.RedisError | RedisClusterException):
                raise OpFailed(f"{item.name} failed: {exc}", location=item.where) from exc
            raise
    return lines


def _run(shards: Shards, item: ops.Item, deadline: Deadline, scan_count: int) -> str:
    a = item.args
    client = shards.router
    if isinstance(a, ops.SetOp):
        done = client.set(a.key, a.value, ex=a.ttl, nx=a.nx)
        return f"{a.key}" + ("" if done else " (exists, nx)")
    if isinstance(a, ops.HsetOp):
        client.hset(a.key, items=[x for kv in a.fields.items() for x in kv])
        return f"{a.key} {len(a.fields)} field(s)"
    if isinstance(a, ops.HdelOp):
        return f"{a.key} {client.hdel(a.key, *a.fields)} field(s) removed"
    if isinstance(a, ops.SremOp):
        return f"{a.key} {client.srem(a.key, *a.members)} member(s) removed"
    if isinstance(a, ops.SaddOp):
        return f"{a.key} {client.sadd(a.key, *a.members)} member(s) added"
    if isinstance(a, ops.ZaddOp):
        return f"{a.key} {client.zadd(a.key, dict(a.members))} member(s) added"
    if isinstance(a, ops.RpushOp):
        return f"{a.key} length {client.rpush(a.key, *a.values)}"
    if isinstance(a, ops.PersistOp):
        client.persist(a.key)
        return a.key
    if isinstance(a, ops.ConfigSetOp):
        for node in shards.clients:
            node.config_set(a.parameter, a.value)
        return f"{a.parameter} = {a.value}"
    if isinstance(a, ops.DelOp):
        if a.keys is not None:
            return f"{client.unlink(*a.keys)} key(s) deleted"
        n = _by_pattern(shards, a.pattern or "", deadline, scan_count, None)
        return f"{n} key(s) deleted"
    if isinstance(a, ops.ExpireOp):
        if a.key is not None:
            client.expire(a.key, a.seconds)
            return f"{a.key} expires in {a.seconds}s"
        n = _by_pattern(shards, a.pattern or "", deadline, scan_count, a.seconds)
        return f"{n} key(s) expire in {a.seconds}s"
    if isinstance(a, ops.RenameOp):
        return f"{_rename(shards, a, deadline, scan_count)} key(s) renamed"
    raise AssertionError(f"unhandled op {item.name}")  # pragma: no cover


def _by_pattern(
    shards: Shards, pattern: str, deadline: Deadline, scan_count: int, seconds: int | None
) -> int:
    """UNLINK (seconds None) or EXPIRE every key matching `pattern`."""
    done = 0
    for client, keys in scan(shards, pattern, scan_count):
        deadline.check(f"{'expire' if seconds else 'del'} {pattern}")
        if seconds is None and shards.single:
            done += int(client.unlink(*keys))
            continue
        # one command per key: a cluster node refuses multi-key commands across slots
        pipe = client.pipeline(transaction=False)
        for key in keys:
            if seconds is None:
                pipe.unlink(key)
            else:
                pipe.expire(key, seconds)
        done += sum(1 for ok in pipe.execute() if ok)
    return done


def _rename(shards: Shards, a: ops.RenameOp, deadline: Deadline, scan_count: int) -> int:
    src, dst = a.from_.encode(), a.to.encode()
    done = 0
    for client, keys in scan(shards, a.match, scan_count):
        deadline.check(f"rename {a.match}")
        targets = [dst + key[len(src) :] for key in keys]
        local = [(k, n) for k, n in zip(keys, targets, strict=True) if shards.same_slot(k, n)]
        if local:
            pipe = client.pipeline(transaction=False)
            for key, new in local:
                if a.overwrite:
                    pipe.rename(key, new)
                else:
                    pipe.renamenx(key, new)
            results = pipe.execute(raise_on_error=False)
            for (key, new), result in zip(local, results, strict=True):
                _check_renamed(key, new, result)
        for key, new in zip(keys, targets, strict=True):
            if not shards.same_slot(key, new):
                _move(shards, client, key, new, a.overwrite)
        done += len(keys)
    return done


def _move(shards: Shards, client: redis.Redis, key: bytes, new: bytes, overwrite: bool) -> None:
    """RENAME across cluster slots: DUMP on the key's node, RESTORE on the new name's node,
    then UNLINK the old key."""
    import redis as redis_module

    pipe = client.pipeline(transaction=False)
    pipe.dump(key)
    pipe.pttl(key)
    payload, pttl = pipe.execute()
    if payload is None:
        return  # expired in between
    target = shards.clients[shards.shard_of(new)]
    try:
        target.restore(new, max(int(pttl), 0), payload, replace=overwrite)
    except redis_module.ResponseError as exc:
        _check_renamed(key, new, False if "BUSYKEY" in str(exc) else exc)
    client.unlink(key)


def _check_renamed(key: bytes, new: bytes, result: object) -> None:
    if isinstance(result, Exception):
        raise OpFailed(f"rename {_show(key)!r} -> {_show(new)!r}: {result}")
    if result is False or result == 0:
        raise OpFailed(
            f"rename {_show(key)!r} -> {_show(new)!r}: the new key exists (set "
            "overwrite: true to replace it)"
        )


def _show(key: bytes) -> str:
    return key.decode("utf-8", errors="backslashreplace")


# --- checks -------------------------------------------------------------------------------


def count(shards: Shards, pattern: str, scan_count: int, limit: int | None = None) -> int:
    """Keys matching `pattern`, counted batch by batch (stops early past `limit`)."""
    total = 0
    for _client, keys in scan(shards, pattern, scan_count):
        total += len(keys)
        if limit is not None and total > limit:
            break
    return total


def run_checks(shards: Shards, part: ops.Part, deadline: Deadline, *, scan_count: int) -> list[str]:
    """Every failing check, as a message naming its file and line (empty: all passed)."""
    failures: list[str] = []
    for item in part.items:
        deadline.check(f"{item.where}")
        problem = _check(shards, item, scan_count)
        if problem is not None:
            failures.append(f"{item.where}: {problem}")
    return failures


def _decode(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _check(shards: Shards, item: ops.Item, scan_count: int) -> str | None:
    a = item.args
    client = shards.router
    if item.name == "exists":
        return None if client.exists(a) else f"key {a!r} does not exist"
    if item.name == "absent":
        return None if not client.exists(a) else f"key {a!r} exists"
    if isinstance(a, ops.GetCheck):
        got = _decode(client.get(a.key))
        return None if got == a.equals else f"{a.key!r} is {got!r}, expected {a.equals!r}"
    if isinstance(a, ops.HgetCheck):
        got = _decode(client.hget(a.key, a.field))
        if got == a.equals:
            return None
        return f"{a.key!r} field {a.field!r} is {got!r}, expected {a.equals!r}"
    if isinstance(a, ops.SismemberCheck):
        if client.sismember(a.key, a.member):
            return None
        return f"{a.member!r} is not a member of {a.key!r}"
    if isinstance(a, ops.CountCheck):
        n = count(shards, a.pattern, scan_count, a.max)
        if a.max is not None and n > a.max:
            return f"more than {a.max} key(s) match {a.pattern!r}"
        if a.min is not None and n < a.min:
            return f"{n} key(s) match {a.pattern!r}, expected at least {a.min}"
        return None
    if isinstance(a, ops.ConfigCheck):
        for node in shards.clients:
            found = node.config_get(a.parameter)
            got = _decode(found.get(a.parameter))
            if got != a.equals:
                return f"config {a.parameter} is {got!r}, expected {a.equals!r}"
        return None
    raise AssertionError(f"unhandled check {item.name}")  # pragma: no cover


def check_gone(shards: Shards, part: ops.Part, deadline: Deadline, *, scan_count: int) -> list[str]:
    """The implicit checks of a part: what it deleted or renamed away is gone."""
    failures: list[str] = []
    for pattern, item in ops.expected_gone(part):
        deadline.check(f"{item.where}")
        if count(shards, pattern, scan_count, 0):
            failures.append(
                f"{item.where}: keys matching {pattern!r} still exist after {item.name}"
            )
    return failures
