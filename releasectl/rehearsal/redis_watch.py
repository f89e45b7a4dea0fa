"""MONITOR on the Redis copy: the commands a rehearsed step sent, the keys they name (from
COMMAND INFO's key positions, or COMMAND GETKEYS for commands with movable keys) and which of
them lie outside the step's scope."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from releasectl.analysis.redis import covered
from releasectl.models.analysis import KeyOperation
from releasectl.targets.redis import ops

if TYPE_CHECKING:
    import redis

MAX_OPERATIONS = 100  # outside-scope operations listed per step

# commands whose arguments are not keys of their own (a script's commands are seen one by one)
_SKIP = frozenset(
    {b"eval", b"evalsha", b"eval_ro", b"evalsha_ro", b"fcall", b"fcall_ro", b"script", b"echo"}
)
_MONITOR_RE = re.compile(rb"^\d+\.\d+ \[\d+ ([^\]]*)\] (.*)$", re.DOTALL)
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("a"): 7, ord("b"): 8}


@dataclass
class Watched:
    commands: list[tuple[str, list[bytes]]] = field(default_factory=list)  # (origin, args)


@contextlib.contextmanager
def watch(socket: Path, client: redis.Redis) -> Iterator[Watched]:
    """MONITOR the copy while the body runs; the commands it saw (the step's, and those its
    Lua scripts ran), up to a marker sent afterwards."""
    import redis

    watched = Watched()
    # a connection of its own: once in MONITOR mode it serves nothing else
    monitor = redis.Redis(unix_socket_path=str(socket), socket_timeout=60)
    conn: Any = monitor.connection_pool.get_connection()
    try:
        conn.send_command("MONITOR")
        conn.read_response()
        yield watched
        marker = f"releasectl-rehearsal-{uuid.uuid4().hex}".encode()
        client.echo(marker)
        while True:
            line = conn.read_response()
            parsed = parse_monitor(line if isinstance(line, bytes) else str(line).encode())
            if parsed is None:
                continue
            origin, args = parsed
            if origin != "lua" and args[:1] and args[0].lower() == b"echo":
                if args[1:] == [marker]:
                    break
                continue
            watched.commands.append((origin, args))
    finally:
        conn.disconnect()
        monitor.close()


def renames(commands: list[tuple[str, list[bytes]]]) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for _, args in commands:
        if len(args) >= 3 and args[0].lower() in (b"rename", b"renamenx"):
            found[args[1]] = args[2]
    return found


class Commands:
    """What the server says about its commands: flags and key positions, cached."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._commands: dict[bytes, dict[str, Any]] = {}

    def _command(self, name: bytes) -> dict[str, Any]:
        if name not in self._commands:
            client: Any = self.client
            info = client.execute_command("COMMAND", "INFO", name.decode(errors="replace"))
            entry = (
                info.get(name.decode(errors="replace").lower()) if isinstance(info, dict) else None
            )
            self._commands[name] = entry if isinstance(entry, dict) else {}
        return self._commands[name]

    def _keys(self, args: list[bytes]) -> list[bytes]:
        info = self._command(args[0].lower())
        if "movablekeys" in info.get("flags", []):
            conn: Any = self.client.connection_pool.get_connection()
            try:
                conn.send_command("COMMAND", "GETKEYS", *args)
                answer = conn.read_response()
            except Exception:  # a command GETKEYS cannot read: its keys are unknown
                return []
            finally:
                self.client.connection_pool.release(conn)
            return [a for a in answer if isinstance(a, bytes)] if isinstance(answer, list) else []
        first, last, step = (
            int(info.get(k, 0)) for k in ("first_key_pos", "last_key_pos", "step_count")
        )
        if first <= 0 or step <= 0:
            return []
        end = len(args) - 1 if last < 0 else min(last, len(args) - 1)
        if last < -1:
            end = len(args) + last
        return [args[i] for i in range(first, end + 1, step)]

    def outside(
        self,
        commands: list[tuple[str, list[bytes]]],
        scope: list[str],
        real_count: Callable[[str], int | None],
    ) -> list[KeyOperation]:
        """The operations of `commands` on keys or patterns `scope` does not cover."""
        found: dict[tuple[str, str], KeyOperation] = {}
        for _, args in commands:
            name = args[0].lower()
            if name in _SKIP:
                continue
            write = "write" in self._command(name).get("flags", [])
            named: list[tuple[str, str]] = []
            if name in (b"scan", b"keys", b"sscan", b"hscan", b"zscan"):
                pattern = _match_arg(args)
                if pattern is not None and name in (b"scan", b"keys"):
                    named.append((f"{name.decode().upper()} MATCH", pattern))
            else:
                named.extend(
                    (name.decode(errors="replace").upper(), ops.escape(k.decode(errors="replace")))
                    for k in self._keys(args)
                )
            for command, pattern in named:
                if covered(scope, pattern):
                    continue
                shown = ops.literal(pattern) or pattern
                if (command, shown) in found or len(found) >= MAX_OPERATIONS:
                    continue
                found[(command, shown)] = KeyOperation(
                    command=command,
                    key=shown,
                    write=write,
                    source="rehearsal",
                    outside_scope=True,
                    real_keys=real_count(pattern),
                )
        return list(found.values())


def parse_monitor(line: bytes) -> tuple[str, list[bytes]] | None:
    """(origin, arguments) of one MONITOR line: `TS [DB ORIGIN] "arg" "arg" ...`, each argument
    quoted with Redis's escapes (\\n, \\", \\xHH, ...)."""
    match = _MONITOR_RE.match(line)
    if match is None:
        return None
    origin = match.group(1).decode(errors="replace")
    body = match.group(2)
    args: list[bytes] = []
    i, n = 0, len(body)
    while i < n:
        if body[i] != ord('"'):
            i += 1
            continue
        i += 1
        out = bytearray()
        while i < n and body[i] != ord('"'):
            ch = body[i]
            if ch == ord("\\") and i + 1 < n:
                nxt = body[i + 1]
                if nxt == ord("x") and i + 3 < n:
                    out.append(int(body[i + 2 : i + 4], 16))
                    i += 4
                    continue
                out.append(_ESCAPES.get(nxt, nxt))
                i += 2
                continue
            out.append(ch)
            i += 1
        args.append(bytes(out))
        i += 1
    return (origin, args) if args else None


def _match_arg(args: list[bytes]) -> str | None:
    lowered = [a.lower() for a in args]
    if lowered[0] == b"keys" and len(args) > 1:
        return args[1].decode(errors="replace")
    if b"match" in lowered:
        at = lowered.index(b"match")
        if at + 1 < len(args):
            return args[at + 1].decode(errors="replace")
    return "*"  # a SCAN without MATCH walks every key
