"""Failpoints: named places in the engine where a test can make the process die or pause.

`RELEASECTL_FAILPOINT` holds comma-separated rules `NAME[@N][=ACTION]`. NAME is a point such as
`before-run`; N is the 0-based step index for the engine's points, and for points hit without
an index (`in-run`, between the operations of a running migration) the N-th time this process
reaches that point. ACTION is one of

    kill           SIGKILL, the default
    sleep:SECONDS  pause
    stop           SIGSTOP: the process freezes until someone sends SIGCONT
    term, int      SIGTERM / SIGINT to itself, as a CI runner cancelling a job
    error          raise OSError(EIO) at this point (a write seam: the state, a backup)
    enospc         raise OSError(ENOSPC) at this point

The crash-safety and fault-injection tests use them to kill a real `apply` at every step
boundary and inside steps, the way etcd's gofail and FoundationDB's buggify do. Unset, they
cost one dict lookup.
"""

from __future__ import annotations

import errno
import itertools
import os
import signal
import time

ENV = "RELEASECTL_FAILPOINT"

_counters: dict[str, itertools.count[int]] = {}


def hit(name: str, index: int | None = None) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    if index is None and name in spec:
        index = next(_counters.setdefault(name, itertools.count()))
    for rule in spec.split(","):
        target, _, action = rule.strip().partition("=")
        point, _, step = target.partition("@")
        if point != name or (step and index is not None and int(step) != index):
            continue
        if step and index is None:
            continue
        act(action)


def reset() -> None:
    """Forget how often each point was reached (a test running commands in one process)."""
    _counters.clear()


def act(action: str) -> None:
    if action.startswith("sleep:"):
        time.sleep(float(action.split(":", 1)[1]))
    elif action == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
    elif action == "term":
        os.kill(os.getpid(), signal.SIGTERM)
    elif action == "int":
        os.kill(os.getpid(), signal.SIGINT)
    elif action == "error":
        raise OSError(errno.EIO, f"{os.strerror(errno.EIO)} (failpoint)")
    elif action == "enospc":
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (failpoint)")
    else:
        os.kill(os.getpid(), signal.SIGKILL)
