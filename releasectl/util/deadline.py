"""Deadlines: a point in monotonic time by which a step must be done, and the error raised when
it passes. Clients (Redis, SQL, Kubernetes) and targets all take one.

A deadline may also carry a `stop` condition: a function that says why the step must stop now
whatever time is left (the lock's lease could not be renewed in time, the run was cancelled by
SIGTERM). `expired()` and `check()` consult it, so every place that checks a deadline between
operations also stops for it; `remaining()` stays the step's own time budget, because a lease
that renews keeps moving and must not cut a long statement short."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from releasectl.errors import Location, TargetError


@dataclass
class Deadline:
    """A point in monotonic time by which a step must be done (None: no limit)."""

    at: float | None
    stop: Callable[[], str | None] | None = None

    @classmethod
    def after(cls, seconds: float | None, stop: Callable[[], str | None] | None = None) -> Deadline:
        return cls(None if seconds is None else time.monotonic() + seconds, stop)

    def remaining(self) -> float | None:
        if self.at is None:
            return None
        return max(0.0, self.at - time.monotonic())

    def stopped(self) -> str | None:
        """Why the step must stop now, before its time is up (None: it may go on)."""
        return None if self.stop is None else self.stop()

    def expired(self) -> bool:
        if self.at is not None and time.monotonic() >= self.at:
            return True
        return self.stopped() is not None

    def check(self, what: str) -> None:
        reason = self.stopped()
        if reason is not None:
            raise StepStopped(f"{what}: stopped: {reason}", reason=reason)
        if self.at is not None and time.monotonic() >= self.at:
            raise StepTimeout(f"{what}: timed out")


class StepTimeout(TargetError):
    pass


class StepStopped(StepTimeout):
    """The step stopped before its time was up (lost lease, cancellation): `reason` says why."""

    def __init__(self, message: str, *, reason: str, location: Location | None = None) -> None:
        super().__init__(message, location=location)
        self.reason = reason
