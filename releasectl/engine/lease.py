"""Lock deadlines and fencing of a step's work, after Kubernetes leader election and Chubby.

State writes are fenced by the lock (a write whose lock was lost is refused). The target's
data is not, so the holder itself must stop before its lease can end:

- A step runs against a deadline whose stop condition is the lock's renew deadline
  (`Lock.valid_until()`: the last confirmed renewal plus two thirds of the ttl) and the
  command's cancellation. Every target checks its deadline between operations (Redis ops and
  commands, SQL statements and the commit, Kubernetes objects, Python migrations' commands),
  and a script's process group is killed the moment it passes. A holder frozen by SIGSTOP, a
  paused VM or a cut connection therefore does nothing more once it resumes past that
  deadline, and the lease cannot have been taken before it: takers wait for the whole ttl.
- A step stopped because the lease lapsed is not rolled back by its holder (it no longer owns
  the environment): the journal stays for `recover`.
- A script's process group is written into the journal before the script starts; `recover`
  on this host ends it before rolling the step back.
- `recover` refuses a step whose holder may still act: its process is alive on this host, or
  it ran a script on another host and the step's recorded deadline (its timeout) has not
  passed. `--force` overrides, and is recorded.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

from releasectl.engine import signals
from releasectl.engine.session import Session
from releasectl.models.state import Journal
from releasectl.state.base import Lock, process_alive
from releasectl.util import procs, timeutil
from releasectl.util.deadline import Deadline, StepStopped

LEASE_LAPSED = (
    "the lock's lease could not be renewed in time, so this process stopped before the lease "
    "could end (another runner may take the lock)"
)


def stop_condition(lock: Lock) -> Callable[[], str | None]:
    """Why a step under `lock` must stop now: the command was cancelled, or the lease lapsed."""

    def why() -> str | None:
        cancelled = signals.reason()
        if cancelled is not None:
            return cancelled
        until = lock.valid_until()
        if until is not None and time.monotonic() >= until:
            return LEASE_LAPSED
        return None

    return why


def step_deadline(lock: Lock, seconds: float | None) -> Deadline:
    return Deadline.after(seconds, stop_condition(lock))


def lease_lapsed(exc: BaseException) -> bool:
    """Did `exc` stop a step because its holder's lease lapsed (rather than fail it)?"""
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:  # a chain may loop back on itself
        if isinstance(seen, StepStopped) and seen.reason == LEASE_LAPSED:
            return True
        visited.add(id(seen))
        seen = seen.__cause__ or seen.__context__
    return False


def record_processes(session: Session, lock: Lock) -> Callable[[int, str], None]:
    """What the engine does when a step's script starts: write its process group into the
    journal (the script waits at its gate until this is recorded)."""

    def started(pgid: int, run_id: str) -> None:
        state = session.read_state()
        journal = state.journal if state else None
        if journal is None:
            return
        update = {"pgid": pgid, "run_id": run_id}
        session.write_state(state, lock, journal=journal.model_copy(update=update))

    return started


def holder_may_act(journal: Journal) -> str | None:
    """Why the holder of an interrupted step may still be changing its target (None: it
    cannot be)."""
    here = socket.gethostname()
    if journal.host == here:
        if journal.pid != os.getpid() and process_alive(journal.pid, journal.pid_started):
            return (
                f"the process that ran it (pid {journal.pid} on this host) is still alive: it may "
                "be stopped (SIGSTOP) or stuck, and could go on writing when it resumes"
            )
        return None
    if journal.pgid is None or journal.deadline is None:
        return None  # an in-process step: its holder stopped before its lease could end
    deadline = timeutil.parse(journal.deadline)
    if timeutil.now() < deadline:
        return (
            f"it ran a script on {journal.host} (process group {journal.pgid}), which may run "
            f"there until its deadline {journal.deadline}"
        )
    return None


def end_processes(journal: Journal) -> str:
    """End what is left of the step's script on this host; says what was done ('' if none)."""
    if journal.pgid is None or journal.host != socket.gethostname():
        return ""
    count = procs.end_group(journal.pgid, journal.run_id, None)
    if not count:
        return ""
    return f"ended {count} process(es) of the step's script (process group {journal.pgid}); "
