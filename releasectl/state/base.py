"""The state backend interface and the lock record shared by every backend."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from releasectl.models.state import State
from releasectl.util.procs import start_time


@dataclass(frozen=True, slots=True)
class LockInfo:
    id: str
    env: str
    holder: str
    operation: str
    host: str
    pid: int
    since: str
    token: int | None = None  # fencing token (Redis)
    started: float | None = None  # process start time, to tell a reused pid apart

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"held by {self.holder} (pid {self.pid} on {self.host}) since {self.since} "
            f"for {self.operation}; lock id {self.id}"
        )

    @staticmethod
    def new(env: str, holder: str, operation: str, since: str) -> LockInfo:
        return LockInfo(
            id=str(uuid.uuid4()),
            env=env,
            holder=holder,
            operation=operation,
            host=socket.gethostname(),
            pid=os.getpid(),
            since=since,
            started=start_time(os.getpid()),
        )


def process_alive(pid: int, started: float | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if started is not None:
        now = start_time(pid)
        if now is not None and now != started:
            return False  # the pid was reused by another process
    return True


def parse_state(raw: str | bytes, display: str) -> State:
    """Recorded state from its JSON; an unreadable document names where it lives and the field."""
    from pydantic import ValidationError

    from releasectl.errors import InputError, Location

    try:
        return State.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InputError(
            f"recorded state is unreadable: {first['msg']}",
            location=Location(display, None, field or None),
        ) from None


# A holder stops its step when it could not renew its lease for this share of the ttl, so it
# has stopped well before the lease ends and another runner may take the lock (client-go's
# leader election: renew deadline 10 s of a 15 s lease).
RENEW_DEADLINE = 2 / 3


class HeldLock:
    """A lock taken by a backend: a context manager that releases it on exit."""

    info: LockInfo

    def release(self) -> None:
        raise NotImplementedError

    def valid_until(self) -> float | None:
        """Monotonic time until which the holder may act on this lock (None: until it is
        released, as a file lock, whose holder is alive as long as it holds it)."""
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class Lock(AbstractContextManager["Lock"], Protocol):
    info: LockInfo

    def check(self) -> None:
        """Raise if the lock was lost (expired and taken by someone else)."""

    def valid_until(self) -> float | None:
        """Monotonic time until which the holder may act (its last renewal plus the renew
        deadline); None for a lock without expiry."""

    def release(self) -> None: ...


class StateBackend(Protocol):
    env: str

    def describe(self) -> str:
        """Where the state lives, for messages."""

    def read(self) -> State | None: ...

    def write(self, state: State, lock: Lock | None) -> None:
        """Atomically replace the state; refuse if `state.serial` is not the next one."""

    def rewrite(self, state: State) -> bool:
        """Replace the recorded state by `state` of the same lineage and serial (the history
        anchor moved, nothing else); False if the recorded state is not that serial."""

    def describe_history(self) -> str:
        """Where the history lives, for messages."""

    def acquire(self, info: LockInfo, *, ttl: float, timeout: float) -> Lock:
        """Take the environment's lock or raise LockHeldError naming the holder."""

    def current_lock(self) -> LockInfo | None: ...

    def break_lock(self, lock_id: str) -> LockInfo:
        """Remove the lock with this id (releasectl unlock); raise if the id does not match."""

    def append_history(self, line: str) -> None: ...

    def history_lines(self) -> Iterator[str]: ...

    def last_history_line(self) -> str | None: ...
