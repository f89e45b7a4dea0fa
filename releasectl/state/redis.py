"""Redis state backend: state, history and lock of an environment in one Redis.

Keys (prefix `releasectl` by default, `{prefix}:{env}:...`):

    :state     the State JSON
    :written   fencing token of the last state write
    :history   list of history lines (RPUSH: append-only, lines kept byte for byte)
    :lock      the lock: LockInfo JSON (with its fencing token), SET NX PX ttl
    :fence     counter that hands out fencing tokens (INCR)

The lock is taken with `SET lock value NX PX ttl`, where the value is the holder's LockInfo
with a fresh fencing token from INCR, so `status` shows who holds it and since when. While
held, a daemon thread renews it every ttl/3 with a compare-and-PEXPIRE script; if the lock
expired and someone else took it, renewal stops and the holder's next `check()` or state write
fails. A state write is one Lua script that checks, atomically, that the lock is still ours,
that no write with a newer fencing token happened, and that the serial is the next one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from releasectl.clients.redis import Endpoint
from releasectl.errors import InputError, LockHeldError, StaleError, TargetError
from releasectl.models.state import State
from releasectl.state.base import RENEW_DEADLINE, HeldLock, Lock, LockInfo, parse_state

if TYPE_CHECKING:
    import redis

    from releasectl.workspace import Workspace

# KEYS: state, lock, written. ARGV: state JSON, lock value ('' = no lock), token, lineage,
# serial. Returns 'ok' or an error word and detail.
_WRITE = """
if ARGV[2] ~= '' then
  if redis.call('GET', KEYS[2]) ~= ARGV[2] then return {'lock', ''} end
  local last = tonumber(redis.call('GET', KEYS[3]) or '0')
  if tonumber(ARGV[3]) < last then return {'fenced', tostring(last)} end
end
local old = redis.call('GET', KEYS[1])
local serial = tonumber(ARGV[5])
if old then
  local doc = cjson.decode(old)
  if doc['lineage'] ~= ARGV[4] or tonumber(doc['serial']) + 1 ~= serial then
    return {'stale', tostring(doc['serial'])}
  end
end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then redis.call('SET', KEYS[3], ARGV[3]) end
return {'ok', ''}
"""

# KEYS: state. ARGV: state JSON, lineage, serial. The same document with a moved history
# anchor: replaced only while the recorded lineage and serial are those.
_REWRITE = """
local old = redis.call('GET', KEYS[1])
if not old then return 0 end
local doc = cjson.decode(old)
if doc['lineage'] ~= ARGV[2] or tonumber(doc['serial']) ~= tonumber(ARGV[3]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

# compare-and-pexpire, compare-and-delete
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# break_lock: delete only if the lock's id is the one named (the value is JSON)
_BREAK = """
local value = redis.call('GET', KEYS[1])
if not value then return false end
local ok, doc = pcall(cjson.decode, value)
local id = 'corrupt'
if ok and type(doc) == 'table' then id = doc['id'] end
if id == ARGV[1] then redis.call('DEL', KEYS[1]) end
return value
"""

HISTORY_PAGE = 1000


class RedisLock(HeldLock):
    """A held lock; renewed in the background until released.

    `valid_until()` is the last renewal that Redis confirmed (timed from when it was sent)
    plus RENEW_DEADLINE of the ttl: the engine stops a step that reaches it, so a holder that
    froze or lost its connection has stopped before the key can expire and be taken."""

    def __init__(
        self,
        backend: RedisBackend,
        info: LockInfo,
        value: str,
        ttl: float,
        taken_at: float | None = None,
    ) -> None:
        self.backend = backend
        self.info = info
        self.value = value
        self.ttl_ms = max(int(ttl * 1000), 1)
        self.renewed_at = time.monotonic() if taken_at is None else taken_at
        self.lost = False
        self.taken_over: LockInfo | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"releasectl-lock-{backend.env}", daemon=True
        )
        self._thread.start()

    def valid_until(self) -> float | None:
        if self.lost:
            return self.renewed_at
        return self.renewed_at + RENEW_DEADLINE * self.ttl_ms / 1000

    def _renew_loop(self) -> None:
        interval = self.ttl_ms / 4000
        wait = interval
        while not self._stop.wait(wait):
            sent = time.monotonic()
            try:
                renewed = self.backend.script(_RENEW)(
                    keys=[self.backend.lock_key], args=[self.value, self.ttl_ms]
                )
            except Exception:  # a blip: try again soon; valid_until() stops the step in time
                wait = interval / 4
                continue
            if not renewed:
                self.lost = True
                return
            self.renewed_at = sent
            wait = interval

    def check(self) -> None:
        held = self.backend.current_lock()
        if self.lost or held is None or held.id != self.info.id:
            raise LockHeldError(
                f"lost the lock of environment {self.backend.env!r}: "
                + (held.describe() if held else "it expired or was removed")
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(5)
        try:
            self.backend.script(_RELEASE)(keys=[self.backend.lock_key], args=[self.value])
        except Exception as exc:  # the lock then expires by itself after its ttl
            raise self.backend.endpoint.error("cannot release the lock", exc) from exc


class RedisBackend:
    def __init__(
        self, url: str, env: str, prefix: str = "releasectl", workspace: Workspace | None = None
    ) -> None:
        self.env = env
        self.prefix = prefix
        root = workspace.root if workspace is not None else Path.cwd()
        self.endpoint = Endpoint(url, root, name=f"state backend of {env!r}")
        base = f"{prefix}:{env}"
        self.state_key = f"{base}:state"
        self.written_key = f"{base}:written"
        self.history_key = f"{base}:history"
        self.lock_key = f"{base}:lock"
        self.fence_key = f"{base}:fence"
        self._scripts: dict[str, Any] = {}

    def describe(self) -> str:
        return f"{self.endpoint.display} key {self.state_key}"

    def describe_history(self) -> str:
        return f"{self.endpoint.display} key {self.history_key}"

    @property
    def client(self) -> redis.Redis:
        return self.endpoint.client(decode=True)

    def script(self, source: str) -> Any:
        if source not in self._scripts:
            self._scripts[source] = self.client.register_script(source)
        return self._scripts[source]

    def _call(self, what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return func(*args, **kwargs)
        except redis.RedisError as exc:
            raise self.endpoint.error(what, exc) from exc

    def close(self) -> None:
        self.endpoint.close()

    # --- state --------------------------------------------------------------------------

    def read(self) -> State | None:
        raw = self._call("cannot read the state", self.client.get, self.state_key)
        if raw is None:
            return None
        return parse_state(raw, self.describe())

    def write(self, state: State, lock: Lock | None) -> None:
        value = ""
        token = 0
        if isinstance(lock, RedisLock):
            value, token = lock.value, lock.info.token or 0
        elif lock is not None:
            lock.check()
        text = state.model_dump_json(by_alias=True, indent=2, exclude_none=False) + "\n"
        outcome, detail = self._call(
            "cannot write the state",
            self.script(_WRITE),
            keys=[self.state_key, self.lock_key, self.written_key],
            args=[text, value, token, state.lineage, state.serial],
        )
        if outcome == "ok":
            return
        if outcome == "stale":
            raise StaleError(
                f"state of {self.env!r} moved on while writing (serial {state.serial}, "
                f"recorded {detail})"
            )
        held = self.current_lock()
        why = held.describe() if held else "it expired"
        if outcome == "fenced":
            why = f"a holder with a newer fencing token ({detail}) wrote since"
        raise LockHeldError(f"refused to write the state of {self.env!r}: lost the lock: {why}")

    def rewrite(self, state: State) -> bool:
        text = state.model_dump_json(by_alias=True, indent=2, exclude_none=False) + "\n"
        done = self._call(
            "cannot write the state",
            self.script(_REWRITE),
            keys=[self.state_key],
            args=[text, state.lineage, state.serial],
        )
        return bool(done)

    # --- lock ---------------------------------------------------------------------------

    def acquire(self, info: LockInfo, *, ttl: float, timeout: float) -> RedisLock:
        deadline = time.monotonic() + timeout
        client = self.client
        ttl_ms = max(int(ttl * 1000), 1)
        while True:
            token = int(self._call("cannot take the lock", client.incr, self.fence_key))
            mine = replace(info, token=token)
            value = json.dumps(mine.as_dict(), sort_keys=True)
            sent = time.monotonic()
            taken = self._call(
                "cannot take the lock", client.set, self.lock_key, value, nx=True, px=ttl_ms
            )
            if taken:
                return RedisLock(self, mine, value, ttl, taken_at=sent)
            held = self.current_lock()
            if held is None:
                continue  # released in between
            if time.monotonic() >= deadline:
                raise LockHeldError(f"environment {self.env!r} is locked: {held.describe()}")
            time.sleep(min(0.2, max(deadline - time.monotonic(), 0.01)))

    def current_lock(self) -> LockInfo | None:
        raw = self._call("cannot read the lock", self.client.get, self.lock_key)
        return None if raw is None else _lock_info(raw)

    def break_lock(self, lock_id: str) -> LockInfo:
        raw = self._call(
            "cannot break the lock", self.script(_BREAK), keys=[self.lock_key], args=[lock_id]
        )
        if raw is None:
            raise InputError(f"environment {self.env!r} is not locked")
        held = _lock_info(raw)
        if held.id != lock_id:
            raise InputError(
                f"lock id {lock_id!r} does not match the lock of {self.env!r}: " + held.describe()
            )
        return held

    # --- history ------------------------------------------------------------------------

    def append_history(self, line: str) -> None:
        if "\n" in line:
            raise TargetError("a history line must not contain a newline")
        self._call("cannot append to the history", self.client.rpush, self.history_key, line)

    def history_lines(self) -> Iterator[str]:
        start = 0
        while True:
            page = self._call(
                "cannot read the history",
                self.client.lrange,
                self.history_key,
                start,
                start + HISTORY_PAGE - 1,
            )
            yield from page
            if len(page) < HISTORY_PAGE:
                return
            start += HISTORY_PAGE

    def last_history_line(self) -> str | None:
        line = self._call("cannot read the history", self.client.lindex, self.history_key, -1)
        return None if line is None else str(line)


def _lock_info(raw: str) -> LockInfo:
    try:
        data = json.loads(raw)
        return LockInfo(**data)
    except (ValueError, TypeError):
        return LockInfo(
            id="corrupt", env="?", holder="unknown", operation="unknown", host="?", pid=0, since="?"
        )
