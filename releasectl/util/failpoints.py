"""Failpoints: named places in the engine where a test can make the process die or pause.

`RELEASECTL_FAILPOINT` holds comma-separated rules `NAME[@STEP][=ACTION]`: NAME is a point such
as `before-run`, STEP the 0-based step index (any step if omitted), ACTION `kill` (SIGKILL, the
default) or `sleep:SECONDS`. The crash-safety tests use them to kill a real `apply` at every
step boundary, the way etcd's gofail and FoundationDB's buggify do. Unset, they cost one dict
lookup.
"""

from __future__ import annotations

import os
import signal
import time

ENV = "RELEASECTL_FAILPOINT"


def hit(name: str, index: int | None = None) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    for rule in spec.split(","):
        target, _, action = rule.strip().partition("=")
        point, _, step = target.partition("@")
        if point != name or (step and index is not None and int(step) != index):
            continue
        if step and index is None:
            continue
        if action.startswith("sleep:"):
            time.sleep(float(action.split(":", 1)[1]))
        else:
            os.kill(os.getpid(), signal.SIGKILL)
