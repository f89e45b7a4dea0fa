"""What a throwaway copy of a target is, and the registry of the types that can be copied
(like targets/base.py's `REGISTRY`: one module per type, loaded on first use).

A copy is made from a read-only snapshot of the real target (the scoped backup the real
target writes through the Target protocol, or a file copied read-only), loaded into something
private to the rehearsal: an embedded Redis, a SQLite file or a PostgreSQL database of its own,
a temporary directory. Its `ctx` is a TargetContext whose settings point at the copy, so the
real target type runs the steps on it unchanged.
"""

from __future__ import annotations

import contextlib
import importlib
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from releasectl.errors import ReleasectlError

if TYPE_CHECKING:
    from releasectl.models.analysis import DataChange, RedisChanges
    from releasectl.models.plan import Step
    from releasectl.models.rehearsal import CopyInfo, Difference
    from releasectl.models.workspace import RehearsalConfig
    from releasectl.targets.base import TargetContext
    from releasectl.workspace.catalogue import Migration

SPOOL_MEMORY = 8 * 1024 * 1024  # a snapshot larger than this is spooled to the work directory


class NotRehearsed(Exception):
    """The component cannot be rehearsed; the message says why (a limit, a mode, a lock)."""


@dataclass
class Observed:
    """What a step did to the copy, beyond whether it worked."""

    redis: RedisChanges | None = None
    data: list[DataChange] = field(default_factory=list)


@dataclass
class Request:
    """What a copy is made for: the real target and the steps that will run on the copy."""

    real: TargetContext
    steps: list[tuple[Step, Migration | None]]
    limits: RehearsalConfig
    workdir: Path  # private to this copy, removed afterwards
    resolve: Callable[[str], str]  # ${VAR} in a setting of the environment


class Copy(Protocol):
    ctx: TargetContext  # settings point at the copy
    info: CopyInfo

    def state(self) -> Any:
        """Everything the copy holds, in a form `compare` reads."""

    def compare(self, before: Any, after: Any) -> list[Difference]:
        """What differs between two states (empty: exactly the same)."""

    def watch(self) -> contextlib.AbstractContextManager[Any]:
        """Around a step's run and verify: collects what the copy saw happen."""

    def observe(
        self, step: Step, migration: Migration | None, before: Any, after: Any, watched: Any
    ) -> Observed:
        """What the step did, from the states around it and what `watch` collected."""

    def close(self) -> None: ...


CopyFactory = Callable[[Request], Copy]

# type -> "module:function"; a type that is not named is never rehearsed (see NOT_COPIED)
COPIES: dict[str, str] = {
    "redis": "releasectl.rehearsal.redis:open_copy",
    "sql": "releasectl.rehearsal.sql:open_copy",
    "kubernetes": "releasectl.rehearsal.files:open_copy",
    "cedar": "releasectl.rehearsal.files:open_copy",
    "service": "releasectl.rehearsal.files:open_copy",
}

NOT_COPIED: Mapping[str, str] = {
    "script": "a script runs any command against the real target's settings: it cannot be "
    "confined to a copy, so scripts are never rehearsed",
}


def copy_factory(component_type: str) -> CopyFactory | None:
    entry = COPIES.get(component_type)
    if entry is None:
        return None
    module_name, _, attr = entry.partition(":")
    factory: CopyFactory = getattr(importlib.import_module(module_name), attr)
    return factory


class Spool:
    """A snapshot in transit: written by a real target's `backup`, read by the copy's
    `restore`. Writing past `limit` bytes stops the snapshot with NotRehearsed."""

    def __init__(self, workdir: Path, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what
        self.size = 0
        self.file: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by close()
            max_size=SPOOL_MEMORY, dir=str(workdir)
        )
        # what `backup(out=...)` writes to: only `write` and `flush` are ever called on it
        self.writer = cast(IO[bytes], _Limited(self))

    def reader(self) -> IO[bytes]:
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        self.file.close()


class _Limited:
    """The write side of a Spool (what `backup(out=...)` gets)."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool

    def write(self, data: bytes | bytearray | memoryview) -> int:
        spool = self.spool
        spool.size += len(data)
        if spool.size > spool.limit:
            raise NotRehearsed(
                f"{spool.what} is larger than rehearsal.max_bytes ({spool.limit:,} bytes)"
            )
        return spool.file.write(data)

    def flush(self) -> None:
        self.spool.file.flush()


@contextlib.contextmanager
def spooled(workdir: Path, limit: int, what: str) -> Iterator[Spool]:
    spool = Spool(workdir, limit, what)
    try:
        yield spool
    finally:
        spool.close()


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, ReleasectlError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
