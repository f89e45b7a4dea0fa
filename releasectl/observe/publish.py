"""Where metrics go: a textfile for node-exporter's textfile collector (written atomically:
a temporary file beside it, fsync, rename) and a Prometheus Pushgateway (pushed with the
grouping labels job="releasectl" and env, replacing that group).

`Exporter` is an event sink for one run. At the end of the run it publishes the snapshot of
the recorded state and history (what `releasectl metrics` prints) plus what only the run
knows: how long it waited for the lock, and how long it took when it failed. During the run it
watches the steps: one that is still running `heartbeat` seconds after it started is published
at once with `releasectl_step_in_progress_since_seconds`, so an alert can see a migration that
runs for too long while it runs. Steps shorter than that cost no publishing at all.

prometheus_client is imported at the first publish, in the thread that publishes (about 20
ms here: it loads http.server, wsgiref, urllib and more). Importing it in a background thread
while the run works was measured and costs more than it saves: the import holds the GIL while
the run's many short I/O waits queue for it (docs/performance.md). So was a publisher process
that imports it on the other core: a second interpreter costs more CPU than the import.

Publishing never fails a run: a problem is logged as a warning and returned by `finish`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from releasectl.observe.events import Event, LockWaited, StepFailed, StepFinished, StepStarted
from releasectl.util.fsutil import atomic_write

if TYPE_CHECKING:
    from collections.abc import Callable

    from releasectl.observe.summary import Snapshot

JOB = "releasectl"
HEARTBEAT_ENV = "RELEASECTL_METRICS_HEARTBEAT"
DEFAULT_HEARTBEAT = 10.0
PUSH_TIMEOUT = 10.0

log = logging.getLogger("releasectl.metrics")


@dataclass(frozen=True)
class Destinations:
    file: Path | None = None
    gateway: str | None = None

    def __bool__(self) -> bool:
        return self.file is not None or self.gateway is not None


def write_textfile(path: Path, snapshot: Snapshot) -> None:
    from releasectl.observe.metrics import render

    # the temporary name ends in .tmp, so the collector (which reads *.prom) never sees it
    atomic_write(path, render(snapshot), mode=0o644)


def push(gateway: str, snapshot: Snapshot, *, timeout: float = PUSH_TIMEOUT) -> None:
    """PUT the snapshot as the group {job="releasectl", env=...} (the group's earlier series
    are replaced, so a step no longer in progress disappears)."""
    from prometheus_client import push_to_gateway

    from releasectl.observe.metrics import registry

    push_to_gateway(
        gateway,
        job=JOB,
        grouping_key={"env": snapshot.env},
        registry=registry(snapshot),
        timeout=timeout,
    )


def publish(destinations: Destinations, snapshot: Snapshot) -> list[str]:
    """Write and push `snapshot`; returns what went wrong (nothing raised)."""
    problems = []
    if destinations.file is not None:
        try:
            write_textfile(destinations.file, snapshot)
        except OSError as exc:
            problems.append(f"cannot write metrics to {destinations.file}: {exc}")
    if destinations.gateway is not None:
        try:
            push(destinations.gateway, snapshot)
        except Exception as exc:  # URLError, HTTPError, timeouts: all alike to the user
            problems.append(f"cannot push metrics to {destinations.gateway}: {exc}")
    for problem in problems:
        log.warning(problem)
    return problems


def heartbeat_from_env() -> float:
    raw = os.environ.get(HEARTBEAT_ENV)
    if not raw:
        return DEFAULT_HEARTBEAT
    try:
        return max(0.0, float(raw))
    except ValueError:
        return DEFAULT_HEARTBEAT


class Exporter:
    """The metrics of one run (see the module docstring). `source()` computes the snapshot
    from the recorded state and history; it is called in the thread that emits events."""

    def __init__(
        self,
        destinations: Destinations,
        source: Callable[[], Snapshot],
        *,
        heartbeat: float | None = None,
    ) -> None:
        self.destinations = destinations
        self.source = source
        self.heartbeat = heartbeat_from_env() if heartbeat is None else heartbeat
        self.lock_wait: float | None = None
        self.problems: list[str] = []
        self._baseline: Snapshot | None = None
        self._running: dict[str, float] = {}
        self._timer: threading.Timer | None = None
        self._mutex = threading.Lock()

    # --- events ---------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        if isinstance(event, LockWaited):
            self.lock_wait = event.seconds
        elif isinstance(event, StepStarted):
            self._step_started(event)
        elif isinstance(event, StepFinished | StepFailed):
            self._stop_timer()
            self._running = {}

    def _step_started(self, event: StepStarted) -> None:
        self._stop_timer()
        if self._baseline is None:
            try:
                self._baseline = self.source()
            except Exception as exc:
                self._problem(f"cannot read the history for live metrics: {exc}")
                return
        self._running = {event.component: event.at}
        if self.heartbeat <= 0:
            self._publish_live()
            return
        timer = threading.Timer(self.heartbeat, self._publish_live)
        timer.daemon = True
        timer.name = "metrics-heartbeat"
        self._timer = timer
        timer.start()

    def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            timer.join()  # a publish under way finishes before the run goes on

    def _publish_live(self) -> None:
        with self._mutex:
            if self._baseline is None:
                return
            snapshot = dataclasses.replace(
                self._baseline, in_progress=dict(self._running), lock_wait=self.lock_wait
            )
            self._publish(snapshot)

    # --- the end --------------------------------------------------------------------------

    def finish(self, *, failed_duration: float | None = None) -> list[str]:
        """Publish the final snapshot; `failed_duration`: the run failed after that long."""
        self._stop_timer()
        try:
            snapshot = self.source()
        except Exception as exc:
            self._problem(f"cannot read the history for metrics: {exc}")
            return self.problems
        snapshot.lock_wait = self.lock_wait
        if failed_duration is not None:
            snapshot.apply_duration["failed"] = round(failed_duration, 3)
        with self._mutex:
            self._publish(snapshot)
        return self.problems

    def _publish(self, snapshot: Snapshot) -> None:
        self.problems.extend(publish(self.destinations, snapshot))

    def _problem(self, text: str) -> None:
        log.warning(text)
        self.problems.append(text)
