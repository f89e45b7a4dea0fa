"""Process groups on this host: which processes belong to a step, and ending them.

A script step runs in its own process group, and every process of it carries the step's
RELEASECTL_RUN_ID in its environment. When the `apply` that started it died (kill -9), the
group lives on; `recover` ends it before rolling the step back. A group id can be reused
after its processes are gone, so a process counts as the step's only if it is in the group
and carries the run id (or is the leader with the start time recorded).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

RUN_ID_VAR = "RELEASECTL_RUN_ID"
PROC = Path("/proc")


def _stat_field(pid: int, index: int) -> bytes | None:
    """Field `index` of /proc/PID/stat after the command name, None where unknown."""
    try:
        data = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[index] if index < len(fields) else None


def start_time(pid: int) -> float | None:
    """Start time of `pid` in clock ticks since boot (Linux), None where unknown."""
    field = _stat_field(pid, 19)
    try:
        return None if field is None else float(field)
    except ValueError:
        return None


def _pgrp(pid: int) -> int | None:
    field = _stat_field(pid, 2)
    try:
        return None if field is None else int(field)
    except ValueError:
        return None


def _carries(pid: int, run_id: str) -> bool:
    try:
        environ = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return f"{RUN_ID_VAR}={run_id}".encode() in environ.split(b"\0")


def members(pgid: int, run_id: str | None, leader_started: float | None) -> list[int]:
    """Live processes of the step's group `pgid` (zombies excluded)."""
    found: list[int] = []
    if not PROC.is_dir():  # pragma: no cover - not Linux: trust the group id
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, 0)
            return [pgid]
        return []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if _pgrp(pid) != pgid or _zombie(pid):
            continue
        ours = (run_id is not None and _carries(pid, run_id)) or (
            pid == pgid and leader_started is not None and start_time(pid) == leader_started
        )
        if ours:
            found.append(pid)
    return found


def _zombie(pid: int) -> bool:
    try:
        data = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return True
    fields = data[data.rfind(b")") + 2 :].split()
    return bool(fields) and fields[0] in (b"Z", b"X")


def end_group(
    pgid: int, run_id: str | None, leader_started: float | None, *, grace: float = 2.0
) -> int:
    """SIGTERM the step's processes, SIGKILL what is left after `grace`, and wait until none
    is alive. Returns how many there were."""
    alive = members(pgid, run_id, leader_started)
    if not alive:
        return 0
    count = len(alive)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        for pid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        until = time.monotonic() + wait
        while alive and time.monotonic() < until:
            time.sleep(0.02)
            alive = members(pgid, run_id, leader_started)
        if not alive:
            break
    return count
