"""What an environment's recorded state and history say in numbers: the values behind every
Prometheus family releasectl exports (`releasectl.observe.metrics` names and renders them).

Pure: history lines and a state in, a `Snapshot` out; no clock, no I/O. `releasectl metrics`
and the end of every run compute the same snapshot from the same records, so the counters
and the histogram only ever grow and a scrape of either agrees with the other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from releasectl.util import timeutil

if TYPE_CHECKING:  # the metrics publisher process imports this module without pydantic
    from releasectl.models.state import State

# Step durations, from a configuration flip to a long data migration.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
STEP_ACTIONS = frozenset({"up", "down", "deploy"})


@dataclass
class Durations:
    """One histogram series: cumulative counts per bucket (the last is +Inf), sum, count."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    sum: float = 0.0
    count: int = 0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1
        self.buckets[-1] += 1
        self.sum += seconds
        self.count += 1


@dataclass(frozen=True)
class Backup:
    """The last backup of a component: how long it took (None before durations were
    recorded) and how many bytes it stored (0: it failed)."""

    duration: float | None
    size: int | None


@dataclass
class Snapshot:
    env: str
    # (component, action, result) -> durations of steps, and of rollbacks (action "rollback")
    steps: dict[tuple[str, str, str], Durations] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    rollbacks: dict[str, int] = field(default_factory=dict)
    backups: dict[str, Backup] = field(default_factory=dict)
    last_success: dict[str, float] = field(default_factory=dict)  # epoch seconds
    versions: dict[str, str] = field(default_factory=dict)
    in_progress: dict[str, float] = field(default_factory=dict)  # component -> since (epoch)
    apply_duration: dict[str, float] = field(default_factory=dict)  # result -> seconds
    lock_wait: float | None = None
    _last_success_text: dict[str, str] = field(default_factory=dict, repr=False)

    def know(self, components: Iterable[str]) -> None:
        """Counters start at 0 for every known component, so `increase()` sees the first
        failure (a series that appears with 1 has no increase)."""
        for name in components:
            self.failures.setdefault(name, 0)
            self.rollbacks.setdefault(name, 0)

    def observe(self, entry: dict[str, Any]) -> None:
        """Count one history entry (a parsed line of the history). Entries imported from the
        old framework (`import-legacy`) are history, not runs of releasectl: they count for
        nothing, so an import never looks like a failure to an alert."""
        if entry.get("imported"):
            return
        action, result = entry.get("action"), entry.get("result")
        component = entry.get("component")
        duration = entry.get("duration")
        if action == "apply" and result == "success" and isinstance(duration, int | float):
            self.apply_duration["success"] = float(duration)
        if not isinstance(component, str):
            return
        if action in STEP_ACTIONS:
            if result == "failed":
                self.failures[component] = self.failures.get(component, 0) + 1
            elif result == "success":
                self._last_success_text[component] = str(entry.get("time"))
        elif action == "rollback":
            self.rollbacks[component] = self.rollbacks.get(component, 0) + 1
        elif action == "backup":
            size = entry.get("size")
            took = float(duration) if isinstance(duration, int | float) else None
            if result == "success":
                self.backups[component] = Backup(took, size if isinstance(size, int) else None)
            elif result == "failed":
                self.backups[component] = Backup(took, 0)
            return
        else:
            return
        if isinstance(duration, int | float) and isinstance(result, str):
            key = (component, str(action), result)
            self.steps.setdefault(key, Durations()).observe(float(duration))

    def record_state(self, state: State | None) -> None:
        """Versions and the interrupted or running step, from the recorded state."""
        if state is None:
            return
        for name, comp in state.components.items():
            if comp.version is not None:
                self.versions[name] = str(comp.version)
        if state.journal is not None:
            since = timeutil.parse(state.journal.started_at).timestamp()
            self.in_progress[state.journal.step.component] = since

    def finish(self) -> Snapshot:
        for component, text in self._last_success_text.items():
            try:
                self.last_success[component] = timeutil.parse(text).timestamp()
            except ValueError:
                continue
        self._last_success_text.clear()
        return self


def summarize(
    env: str,
    history_lines: Iterable[str],
    state: State | None,
    components: Iterable[str] = (),
) -> Snapshot:
    """The snapshot of `env` from its history (JSON lines) and recorded state. A line that is
    not JSON is skipped: `history --verify` is where a damaged history is reported."""
    snapshot = Snapshot(env)
    snapshot.know(components)
    for line in history_lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            snapshot.observe(entry)
    snapshot.record_state(state)
    return snapshot.finish()
