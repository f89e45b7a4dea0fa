"""What the commands that change an environment share for observing a run: the options
`--metrics-file PATH` and `--pushgateway URL`, the event sink their session gets (log records,
plus the metrics exporter when metrics were asked for), and the `run.finished` event and the
final publish when the command ends, however it ends."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

import click

from releasectl.observe.events import EventSink, Fanout, LogEvents, RunFinished
from releasectl.observe.publish import Destinations, Exporter

if TYPE_CHECKING:
    from releasectl.observe.summary import Snapshot
    from releasectl.state.base import StateBackend
    from releasectl.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])

# the runs whose duration is releasectl_apply_duration_seconds
PLAN_RUNS = frozenset({"apply", "migrate", "rollback"})


def publish_options(f: F) -> F:
    """Add `--metrics-file` and `--pushgateway`; the command gets `publish: Destinations`."""

    @functools.wraps(f)
    def wrapper(*args: Any, metrics_file: str | None, pushgateway: str | None, **kw: Any) -> Any:
        return f(*args, publish=destinations(metrics_file, pushgateway), **kw)

    wrapped = click.option(
        "--pushgateway",
        "pushgateway",
        metavar="URL",
        help="Push metrics to this Prometheus Pushgateway (job=releasectl, env=ENV).",
    )(wrapper)
    wrapped = click.option(
        "--metrics-file",
        "metrics_file",
        metavar="PATH",
        help="Write metrics to PATH atomically (node-exporter textfile collector, *.prom).",
    )(wrapped)
    return cast(F, wrapped)


def destinations(metrics_file: str | None, pushgateway: str | None) -> Destinations:
    """Check the options before anything runs (exit 64 on a bad value)."""
    path: Path | None = None
    if metrics_file:
        path = Path(metrics_file)
        if path.is_dir():
            raise click.BadParameter(f"{metrics_file} is a directory", param_hint="--metrics-file")
        parent = path.parent if str(path.parent) else Path()
        if not parent.is_dir():
            raise click.BadParameter(
                f"directory {parent} does not exist", param_hint="--metrics-file"
            )
    if pushgateway:
        parts = urlsplit(pushgateway if "://" in pushgateway else f"http://{pushgateway}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise click.BadParameter(
                f"{pushgateway!r} is not an http(s) URL (for example http://localhost:9091)",
                param_hint="--pushgateway",
            )
        if parts.username or parts.password:
            raise click.BadParameter(
                "credentials in the URL would show in process lists and CI logs",
                param_hint="--pushgateway",
            )
    return Destinations(path, pushgateway or None)


def snapshot(workspace: Workspace, env: str, backend: StateBackend | None = None) -> Snapshot:
    """The snapshot of `env` from its recorded state and history."""
    from releasectl.observe.summary import summarize

    if backend is None:
        from releasectl.state import open_backend

        backend = open_backend(workspace, env)
    state = backend.read()
    return summarize(env, backend.history_lines(), state, workspace.components)


@dataclass
class Observation:
    """The sink a command's session gets; `backend`, once set, is reused for the metrics."""

    workspace: Workspace
    env: str
    events: EventSink
    backend: StateBackend | None = None
    problems: list[str] = field(default_factory=list)

    def snapshot(self) -> Snapshot:
        return snapshot(self.workspace, self.env, self.backend)


@contextlib.contextmanager
def observed(
    workspace: Workspace, env: str, command: str, publish: Destinations | None
) -> Iterator[Observation]:
    """Observe one run of `command` on `env`: yields the events sink for its session; when the
    block ends (or raises) emits `run.finished` and publishes the metrics asked for."""
    fanout = Fanout([LogEvents()])
    obs = Observation(workspace, env, fanout)
    exporter = Exporter(publish, obs.snapshot) if publish else None
    if exporter is not None:
        fanout.sinks.append(exporter)
    started = time.monotonic()
    error: BaseException | None = None
    try:
        yield obs
    except BaseException as exc:
        error = exc
        raise
    finally:
        took = time.monotonic() - started
        obs.events.emit(
            RunFinished(
                env,
                command,
                "success" if error is None else "failed",
                round(took, 3),
                None if error is None else str(error) or type(error).__name__,
            )
        )
        if exporter is not None:
            failed = took if error is not None and command in PLAN_RUNS else None
            obs.problems = exporter.finish(failed_duration=failed)
