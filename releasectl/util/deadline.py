"""Deadlines: a point in monotonic time by which a step must be done, and the error raised when
it passes. Clients (Redis, SQL, Kubernetes) and targets all take one."""

from __future__ import annotations

import time
from dataclasses import dataclass

from releasectl.errors import TargetError


@dataclass
class Deadline:
    """A point in monotonic time by which a step must be done (None: no limit)."""

    at: float | None

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        return cls(None if seconds is None else time.monotonic() + seconds)

    def remaining(self) -> float | None:
        if self.at is None:
            return None
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def check(self, what: str) -> None:
        if self.expired():
            raise StepTimeout(f"{what}: timed out")


class StepTimeout(TargetError):
    pass
