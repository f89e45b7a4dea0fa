"""The events of a run, as data: what the engine, the session and the lock code tell the
outside world. One seam with two consumers (and room for more): `LogEvents` turns each event
into a `logging` record (the JSON log formatter writes one line per event), and the metrics
exporter keeps what it needs for live Prometheus metrics.

Events carry plain values (no models), so a consumer never reaches back into the engine.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, cast

Version = int | str | None

LOGGER = "releasectl.events"


def _move(from_: Version, to: Version) -> str:
    return f"{'-' if from_ is None else from_} -> {'-' if to is None else to}"


class _Event:
    """Shared behaviour: `name` (the `event` field of a JSON log line), `level`, `fields()`."""

    name: ClassVar[str] = ""
    level: ClassVar[int] = logging.INFO

    def fields(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for item in dataclasses.fields(cast(Any, self)):
            data["from" if item.name == "from_" else item.name] = getattr(self, item.name)
        return data

    def message(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class StepStarted(_Event):
    name: ClassVar[str] = "step.started"

    env: str
    index: int
    total: int
    component: str
    action: str
    from_: Version
    to: Version
    migration: str | None
    at: float  # wall clock, seconds since the epoch

    def message(self) -> str:
        return f"step {self.index + 1}/{self.total} started: {_what(self)}"


@dataclass(frozen=True)
class StepFinished(_Event):
    name: ClassVar[str] = "step.finished"

    env: str
    index: int
    total: int
    component: str
    action: str
    from_: Version
    to: Version
    migration: str | None
    duration: float
    backup: str | None

    def message(self) -> str:
        return f"step {self.index + 1}/{self.total} finished in {self.duration:.2f}s: {_what(self)}"


@dataclass(frozen=True)
class StepFailed(_Event):
    name: ClassVar[str] = "step.failed"
    level: ClassVar[int] = logging.ERROR

    env: str
    index: int
    total: int
    component: str
    action: str
    from_: Version
    to: Version
    migration: str | None
    duration: float
    backup: str | None
    error: str
    rollback: str | None  # what undoing it did, or why that failed

    def message(self) -> str:
        return f"step {self.index + 1}/{self.total} failed: {_what(self)}: {self.error}"


@dataclass(frozen=True)
class RolledBack(_Event):
    """A step undone by its target: a failed step, `apply --atomic`, or `recover`."""

    name: ClassVar[str] = "step.rolled_back"
    level: ClassVar[int] = logging.WARNING

    env: str
    component: str
    migration: str | None
    from_: Version  # the version the step had reached (or was reaching)
    to: Version  # the version it went back to
    result: str  # success | failed
    duration: float
    cause: str  # the phase that failed (check, backup, run, verify), atomic, or crash
    error: str | None = None

    def message(self) -> str:
        what = f"{self.component} {_move(self.from_, self.to)}"
        if self.result == "success":
            return f"rolled back {what} ({self.cause}) in {self.duration:.2f}s"
        return f"rollback of {what} ({self.cause}) failed: {self.error}"


@dataclass(frozen=True)
class BackupWritten(_Event):
    name: ClassVar[str] = "backup.written"

    env: str
    component: str
    backup: str
    kind: str  # step | manual
    size: int  # bytes stored
    duration: float

    def message(self) -> str:
        return (
            f"backup {self.backup} of {self.component}: {self.size} bytes in {self.duration:.2f}s"
        )


@dataclass(frozen=True)
class BackupFailed(_Event):
    name: ClassVar[str] = "backup.failed"
    level: ClassVar[int] = logging.ERROR

    env: str
    component: str
    kind: str
    duration: float
    error: str

    def message(self) -> str:
        return f"backup of {self.component} failed: {self.error}"


@dataclass(frozen=True)
class LockWaited(_Event):
    """The environment's lock was taken, after `seconds` of waiting (0 when it was free)."""

    name: ClassVar[str] = "lock.waited"

    env: str
    operation: str
    seconds: float

    def message(self) -> str:
        return f"lock of {self.env} taken for {self.operation} after {self.seconds:.2f}s"


@dataclass(frozen=True)
class RunFinished(_Event):
    """A command that changes an environment ended (emitted by the command line)."""

    name: ClassVar[str] = "run.finished"

    env: str
    command: str
    result: str  # success | failed
    duration: float
    error: str | None = None

    def message(self) -> str:
        tail = f": {self.error}" if self.error else ""
        return f"{self.command} on {self.env} {self.result} after {self.duration:.2f}s{tail}"


Event = (
    StepStarted
    | StepFinished
    | StepFailed
    | RolledBack
    | BackupWritten
    | BackupFailed
    | LockWaited
    | RunFinished
)


def _what(event: StepStarted | StepFinished | StepFailed) -> str:
    text = f"{event.component} {event.action} {_move(event.from_, event.to)}"
    return f"{text} ({event.migration})" if event.migration else text


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...


class LogEvents:
    """Every event as a record of the `releasectl.events` logger; the record's `event`
    attribute holds the event itself, for formatters that want its fields."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(LOGGER)

    def emit(self, event: Event) -> None:
        if self.logger.isEnabledFor(event.level):
            self.logger.log(event.level, event.message(), extra={"event": event})


class Fanout:
    """Hands every event to each sink, in order."""

    def __init__(self, sinks: Iterable[EventSink]) -> None:
        self.sinks = list(sinks)

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.emit(event)
