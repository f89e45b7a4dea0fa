"""Pausing Python's cyclic garbage collector while building many small objects.

A catalogue of 100,000 migrations or a plan of 100,000 steps allocates millions of objects
and no reference cycles; the collector would otherwise traverse the whole, growing heap again
and again (a third of the time of such a plan). Objects are still freed by reference counting
while it is paused, and the collector works as usual again when the outermost pause ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# More new objects than this at the end of a pause: they are the long-lived results of a large
# workspace (catalogue, plan). Freezing them (gc.freeze) spares every later collection a walk
# over them; without it the first full collection after the pause walks millions of objects
# again (0.5 s at 100,000 migrations). Small workspaces and tests stay below it.
FREEZE_AFTER = 50_000


@contextmanager
def paused_gc() -> Iterator[None]:
    if not gc.isenabled():  # paused already (nested), or turned off by the embedding program
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_count()[0] > FREEZE_AFTER:
            gc.freeze()
        gc.enable()
