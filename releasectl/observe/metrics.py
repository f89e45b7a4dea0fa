"""The Prometheus families releasectl exports (the names are the contract: DESIGN.md,
Operations), built with prometheus-client from a `Snapshot`: a fresh registry per call, text
rendered by the library. Importing this module imports prometheus_client: only code that was
asked for metrics does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from releasectl.observe.summary import BUCKETS, Snapshot


@dataclass(frozen=True)
class Family:
    name: str
    type: str  # counter | gauge | histogram
    labels: tuple[str, ...]
    help: str


FAMILIES: tuple[Family, ...] = (
    Family(
        "releasectl_step_duration_seconds",
        "histogram",
        ("env", "component", "action", "result"),
        "Duration of steps (action up, down, deploy) and of the rollbacks that undid steps "
        "(action rollback), by result (success, failed), from the history.",
    ),
    Family(
        "releasectl_apply_duration_seconds",
        "gauge",
        ("env", "result"),
        "Duration of the last successful plan run (apply, migrate, rollback) from the "
        "history; result=failed: of the run that just failed.",
    ),
    Family(
        "releasectl_backup_duration_seconds",
        "gauge",
        ("env", "component"),
        "Duration of the last backup of the component (failed or not).",
    ),
    Family(
        "releasectl_backup_bytes",
        "gauge",
        ("env", "component"),
        "Bytes stored by the last backup of the component; 0 when it failed.",
    ),
    Family(
        "releasectl_step_failures_total",
        "counter",
        ("env", "component"),
        "Steps that failed, over the whole history (0 for every known component).",
    ),
    Family(
        "releasectl_rollbacks_total",
        "counter",
        ("env", "component"),
        "Steps undone by their target (a failed step, apply --atomic, recover), over the "
        "whole history.",
    ),
    Family(
        "releasectl_lock_wait_seconds",
        "gauge",
        ("env",),
        "Seconds the run waited for the environment's lock (only from a run).",
    ),
    Family(
        "releasectl_last_success_timestamp_seconds",
        "gauge",
        ("env", "component"),
        "Unix time of the last successful step of the component.",
    ),
    Family(
        "releasectl_component_version_info",
        "gauge",
        ("env", "component", "version"),
        "The recorded version of each component (value 1).",
    ),
    Family(
        "releasectl_step_in_progress_since_seconds",
        "gauge",
        ("env", "component"),
        "Unix time since which a step has been in progress: running now, or interrupted "
        "(the environment is dirty until `releasectl recover`).",
    ),
)
BY_NAME = {f.name: f for f in FAMILIES}
# What a scrape shows: histograms as their three series.
SAMPLE_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",)}


def sample_names() -> frozenset[str]:
    return frozenset(f.name + suffix for f in FAMILIES for suffix in SAMPLE_SUFFIXES[f.type])


def _family(name: str) -> Metric:
    spec = BY_NAME[name]
    kind = {
        "counter": CounterMetricFamily,
        "gauge": GaugeMetricFamily,
        "histogram": HistogramMetricFamily,
    }[spec.type]
    family: Metric = kind(spec.name, spec.help, labels=list(spec.labels))
    return family


class SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap, env = self.snapshot, self.snapshot.env
        steps = _family("releasectl_step_duration_seconds")
        assert isinstance(steps, HistogramMetricFamily)
        bounds = [repr(float(b)) for b in BUCKETS] + ["+Inf"]
        for (component, action, result), series in sorted(snap.steps.items()):
            steps.add_metric(
                [env, component, action, result],
                buckets=list(zip(bounds, series.buckets, strict=True)),
                sum_value=series.sum,
            )
        yield steps
        yield _gauges(
            "releasectl_apply_duration_seconds",
            {(env, result): v for result, v in sorted(snap.apply_duration.items())},
        )
        backups = sorted(snap.backups.items())
        yield _gauges(
            "releasectl_backup_duration_seconds",
            {(env, c): b.duration for c, b in backups if b.duration is not None},
        )
        yield _gauges(
            "releasectl_backup_bytes",
            {(env, c): b.size for c, b in backups if b.size is not None},
        )
        for name, counts in (
            ("releasectl_step_failures_total", snap.failures),
            ("releasectl_rollbacks_total", snap.rollbacks),
        ):
            family = _family(name)
            assert isinstance(family, CounterMetricFamily)
            for component, count in sorted(counts.items()):
                family.add_metric([env, component], count)
            yield family
        yield _gauges(
            "releasectl_lock_wait_seconds",
            {} if snap.lock_wait is None else {(env,): snap.lock_wait},
        )
        yield _gauges(
            "releasectl_last_success_timestamp_seconds",
            {(env, c): t for c, t in sorted(snap.last_success.items())},
        )
        yield _gauges(
            "releasectl_component_version_info",
            {(env, c, v): 1 for c, v in sorted(snap.versions.items())},
        )
        yield _gauges(
            "releasectl_step_in_progress_since_seconds",
            {(env, c): t for c, t in sorted(snap.in_progress.items())},
        )


def _gauges(name: str, values: dict[tuple[str, ...], float | int]) -> Metric:
    family = _family(name)
    assert isinstance(family, GaugeMetricFamily)
    for labels, value in values.items():
        family.add_metric(list(labels), value)
    return family


def registry(snapshot: Snapshot) -> CollectorRegistry:
    """A registry of its own (never the global one) holding every family of `snapshot`."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(SnapshotCollector(snapshot))
    return reg


def render(snapshot: Snapshot) -> bytes:
    """The Prometheus text exposition format (what the textfile collector reads)."""
    return generate_latest(registry(snapshot))
