"""Drift: an applied migration whose files changed, or that is gone, since it was applied.

Like Flyway's checksum validation: `validate` reports it, `status` shows it and `apply` refuses
to run while there is any (exit 3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from releasectl.errors import DriftError
from releasectl.models.state import State
from releasectl.workspace import Workspace


@dataclass(frozen=True, slots=True)
class Drift:
    component: str
    migration: str
    recorded: str
    current: str | None  # None: the migration directory is gone

    def describe(self, workspace: Workspace) -> str:
        where = f"{workspace.migrations_dir(self.component)}/{self.migration}"
        if self.current is None:
            return f"{where}: applied migration no longer exists"
        return (
            f"{where}: changed since it was applied (checksum {self.recorded[:12]} "
            f"recorded, {self.current[:12]} now)"
        )


def find_drift(workspace: Workspace, state: State | None) -> list[Drift]:
    if state is None:
        return []
    found: list[Drift] = []
    for name, recorded in sorted(state.components.items()):
        known = workspace.catalogue.of(name)
        by_id = {m.id: m for m in known.migrations} if known else {}
        for applied in recorded.applied:
            migration = by_id.get(applied.id)
            if migration is None:
                found.append(Drift(name, applied.id, applied.checksum, None))
            elif migration.checksum != applied.checksum:
                found.append(Drift(name, applied.id, applied.checksum, migration.checksum))
    return found


def drift_error(workspace: Workspace, drift: Sequence[Drift]) -> DriftError:
    lines = [d.describe(workspace) for d in drift]
    return DriftError(
        "drift: " + "; ".join(lines)
        if len(lines) == 1
        else "drift in applied migrations:\n  " + "\n  ".join(lines)
    )
