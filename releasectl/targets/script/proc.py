"""Running one shell script: its own process group, a deadline, bounded output capture.

The script starts in a new session, so it and every child it starts (a `sleep`, a pipeline, a
background job) share one process group. When the deadline passes the whole group gets
SIGTERM, then SIGKILL after a short grace: nothing the script started outlives its timeout.
stdout and stderr are read as they come (no pipe can fill up and block the script) and only
their last bytes are kept, so a chatty script cannot fill memory.

A script does not start until its caller knows its process group: it begins as a small shell
gate that waits for one line on stdin, `started(pgid, run_id)` is called (the engine records
the group in the journal), then the gate execs the script. If the caller dies before that, the
gate reads end-of-file and exits without running anything, so no script can run unrecorded.
Every process of the script carries RELEASECTL_RUN_ID, which tells its processes apart from a
later group that reuses the id. A deadline that stops the step (a lost lease, a cancellation)
kills the group at once, without the SIGTERM grace of a timeout.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from releasectl.util.deadline import Deadline
from releasectl.util.procs import RUN_ID_VAR

# $0 is the gate's name; the script's argv follows. A missing or wrong line: exit unrun.
GATE = 'IFS= read -r go || exit 125; [ "$go" = go ] || exit 125; exec "$@" </dev/null'
GATE_EXIT = 125

OUTPUT_LIMIT = 64 * 1024  # bytes of combined output kept (the end of it)
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
DRAIN_GRACE = 1.0  # seconds to read what is left after the script exited
POLL = 0.05


class Tail:
    """The last `limit` bytes written, and how many were dropped before them."""

    def __init__(self, limit: int = OUTPUT_LIMIT) -> None:
        self.limit = limit
        self.buf = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > 2 * self.limit:
            cut = len(self.buf) - self.limit
            self.dropped += cut
            del self.buf[:cut]

    def text(self) -> str:
        data = bytes(self.buf)
        if len(data) > self.limit:
            self.dropped += len(data) - self.limit
            data = data[-self.limit :]
            self.buf = bytearray(data)
        text = data.decode("utf-8", errors="replace")
        if self.dropped:
            text = f"[... {self.dropped} earlier bytes not kept]\n{text}"
        return text


@dataclass
class ProcResult:
    returncode: int  # negative: killed by that signal
    output: str  # stdout and stderr interleaved as they arrived (the tail)
    stderr: str  # stderr alone (the tail), for error messages
    timed_out: bool
    duration: float
    note: str | None = None  # e.g. a background process kept the output open

    def last_lines(self, count: int = 20) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        if not lines:
            lines = [line for line in self.output.splitlines() if line.strip()]
        return "\n".join(lines[-count:])


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    deadline: Deadline,
    limit: int = OUTPUT_LIMIT,
    started: Callable[[int, str], None] | None = None,
) -> ProcResult:
    begun = time.monotonic()
    run_id = uuid.uuid4().hex
    proc = subprocess.Popen(
        ["/bin/sh", "-c", GATE, "releasectl-gate", *argv],
        cwd=cwd,
        env={**env, RUN_ID_VAR: run_id},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: a timeout kills every child too
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    pgid = proc.pid
    try:
        if started is not None:
            started(pgid, run_id)
        proc.stdin.write(b"go\n")
        proc.stdin.close()
    except BaseException:
        _killpg(pgid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        raise
    combined, errors = Tail(limit), Tail(limit)
    streams = {proc.stdout.fileno(): False, proc.stderr.fileno(): True}  # fd -> is stderr
    selector = selectors.DefaultSelector()
    for fd in streams:
        selector.register(fd, selectors.EVENT_READ)
    timed_out = False
    term_at: float | None = None
    killed = False
    exited_at: float | None = None
    note = None
    try:
        while selector.get_map():
            now = time.monotonic()
            if not timed_out and deadline.expired():
                timed_out = True
                term_at = now
                if deadline.stopped() is not None:
                    killed = True  # a lost lease or a cancellation: no grace
                    _killpg(pgid, signal.SIGKILL)
                else:
                    _killpg(pgid, signal.SIGTERM)
            if term_at is not None and not killed and now - term_at >= KILL_GRACE:
                killed = True
                _killpg(pgid, signal.SIGKILL)
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if (
                exited_at is not None
                and now - exited_at >= DRAIN_GRACE
                and (killed or not timed_out)
            ):
                # the script is gone but something it started (in the background, perhaps in
                # another session) still holds the pipes: stop reading, do not wait for it
                note = "a background process kept the output open; later output not captured"
                break
            remaining = deadline.remaining()
            wait = POLL if remaining is None else max(0.0, min(POLL, remaining))
            for key, _ in selector.select(wait):
                fd = int(key.fd)
                data = os.read(fd, 65536)
                if not data:
                    selector.unregister(fd)
                    continue
                combined.add(data)
                if streams[fd]:
                    errors.add(data)
        if timed_out:
            _killpg(pgid, signal.SIGKILL)  # anything that ignored SIGTERM
        returncode = proc.wait()
    finally:
        selector.close()
        proc.stdout.close()
        proc.stderr.close()
        if proc.poll() is None:  # interrupted (Ctrl-C): leave nothing running
            _killpg(pgid, signal.SIGKILL)
            proc.wait()
    return ProcResult(
        returncode=returncode,
        output=combined.text(),
        stderr=errors.text(),
        timed_out=timed_out,
        duration=time.monotonic() - begun,
        note=note,
    )
