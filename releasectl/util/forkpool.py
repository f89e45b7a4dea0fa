"""Forked helper processes for work that is shared out (scanning, static checks).

A helper inherits the command's signal handlers, which turn SIGTERM and SIGINT into a
`Cancelled` exception for the engine to unwind. A helper has nothing to unwind: the pool ends
its helpers with SIGTERM when the work is done, and Ctrl-C reaches the whole process group.
So each helper goes back to the default SIGTERM (end quietly) and ignores SIGINT (the command
decides, and ends the pool)."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.pool import Pool


def _quiet() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def pool(processes: int) -> Pool:
    """A pool of `processes` forked helpers (use it as a context manager)."""
    import multiprocessing

    return multiprocessing.get_context("fork").Pool(processes, initializer=_quiet)
