"""SIGTERM and SIGINT: a CI runner cancelling a job (most send SIGTERM, some SIGINT first, and
all SIGKILL about 10 s later).

`handling()` installs the handlers for the length of a command (the CLI's `main`). The first
signal is remembered. Outside a step it raises `Cancelled` at once: nothing is half done, the
lock is released on the way out. Inside a `shielded()` region (the engine's steps, a rollback,
`recover`) it does not interrupt anything: the running step's deadline reports the
cancellation (`reason()`), so the step stops at its next operation, a script's process group
is killed, the step is rolled back and recorded, the lock is released, and the command exits
130 (SIGINT) or 143 (SIGTERM). A second signal never interrupts that rollback.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from releasectl.errors import ExitCode, ReleasectlError

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Cancelled(ReleasectlError):
    """The command was cancelled by a signal; exit 128 + the signal's number."""

    def __init__(self, signum: int, message: str | None = None) -> None:
        super().__init__(message or f"cancelled by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = ExitCode(128 + signum)


class _State:
    signum: int | None = None
    shield = 0


_state = _State()


def requested() -> int | None:
    """The signal that asked this command to stop, if one did."""
    return _state.signum


def reason() -> str | None:
    """Why a running step must stop now (None: it was not cancelled)."""
    signum = _state.signum
    return None if signum is None else f"cancelled by {signal.Signals(signum).name}"


def check() -> None:
    """Raise Cancelled if a signal asked to stop (between steps)."""
    if _state.signum is not None:
        raise Cancelled(_state.signum)


def _handle(signum: int, frame: FrameType | None) -> None:
    del frame
    if _state.signum is not None:
        return  # already stopping: a second signal must not cut the rollback short
    _state.signum = signum
    if _state.shield == 0:
        raise Cancelled(signum)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """A region a signal does not interrupt: the step's deadline stops it instead."""
    _state.shield += 1
    try:
        yield
    finally:
        _state.shield -= 1


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """Handle SIGTERM and SIGINT for one command (main thread only; restored afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    _state.signum, _state.shield = None, 0
    for sig in SIGNALS:
        signal.signal(sig, _handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _state.signum, _state.shield = None, 0
