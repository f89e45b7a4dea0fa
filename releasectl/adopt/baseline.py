"""`baseline COMPONENT VERSION`: record that a component is at VERSION without running anything.

Like Flyway's `baseline` and Alembic's `stamp`, for an environment that got there another way
(the old framework, a restore, a hand fix). Before recording, the target is asked what it
records itself (`Target.recorded_version`: the SQL history table, the Redis schema key, the
Kubernetes objects' version annotation, the Cedar store's manifest); a different version
refuses the baseline (exit 3) unless forced. A target that records nothing cannot disagree.
Where the target keeps its own record and it differs (the SQL history table), a `baseline` row
is written, so that the next step's pre-check finds the database and the state in agreement.

The recorded state gets the version and, for a migrated component, migrations 1..VERSION as
applied with their current checksums (from then on drift is measured against them); the
history gets a `baseline` entry with what the target said. Authorized as `baseline` on
protected environments, under the environment's lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from releasectl.engine.session import Session
from releasectl.errors import DirtyError, InputError, StaleError
from releasectl.models import constraints
from releasectl.models.state import AppliedMigration, ComponentState
from releasectl.models.workspace import MIGRATED_TYPES
from releasectl.targets.base import Target
from releasectl.util import timeutil
from releasectl.workspace.catalogue import Migration


class TargetDisagrees(StaleError):
    """The target records another version than the one to be recorded (exit 3)."""


@runtime_checkable
class Stamps(Protocol):
    """A target that keeps its own record of the version and can be told one (SQL)."""

    def stamp(self, version: int, migration: Migration | None) -> None: ...


@dataclass(frozen=True, slots=True)
class BaselineResult:
    component: str
    version: int | str
    previous: int | str | None  # recorded before
    target: int | None  # what the target recorded (None: nothing, or not asked)
    forced: bool
    stamped: bool  # the target's own record was written
    serial: int


def parse_version(workspace_type: str, text: int | str) -> int | str:
    kind: constraints.Kind = "int" if workspace_type in MIGRATED_TYPES else "semver"
    try:
        constraints.parse_version(text, kind)
    except constraints.ConstraintSyntaxError as exc:
        raise InputError(str(exc)) from None
    return int(text) if kind == "int" else str(text)


def baselined_components(
    components: Mapping[str, ComponentState],
    component: str,
    version: int | str,
    migrations: Sequence[Migration],
) -> dict[str, ComponentState]:
    """`components` with `component` recorded at `version`, nothing run."""
    out = dict(components)
    when = timeutil.iso()
    applied: tuple[AppliedMigration, ...] = ()
    if isinstance(version, int):
        applied = tuple(
            AppliedMigration(id=m.id, version=m.number, checksum=m.checksum, applied_at=when)
            for m in migrations[:version]
        )
    out[component] = ComponentState(version=version, applied=applied, updated_at=when)
    return out


def ask_target(target: Target, component: str, version: int, *, force: bool) -> int | None:
    """What the target records; raises TargetDisagrees when it is not `version`."""
    said = target.recorded_version()
    if said is not None and said != version and not force:
        raise TargetDisagrees(
            f"{component}: the target records version {said}, not {version}: the environment "
            f"is not where the baseline says; look at it, then baseline {said}, or pass "
            f"--force to record {version} anyway"
        )
    return said


def stamp_if_needed(
    target: Target, version: int, said: int | None, migration: Migration | None
) -> bool:
    if isinstance(target, Stamps) and said != version:
        target.stamp(version, migration)
        return True
    return False


def baseline(
    session: Session,
    component: str,
    version_text: int | str,
    *,
    force: bool = False,
    lock_timeout: float | None = None,
) -> BaselineResult:
    workspace = session.workspace
    spec = workspace.component(component)
    version = parse_version(spec.type, version_text)
    found = workspace.catalogue.of(component)
    migrations = found.migrations if found else []
    if isinstance(version, int) and version > len(migrations):
        raise InputError(
            f"component {component!r}: version {version} has no migration "
            f"({workspace.migrations_dir(component)}/ goes up to {len(migrations)})"
        )
    session.authorize("baseline", component=component)
    target = session.target(component)  # settings (${VAR}) resolved before the lock
    with session.lock(f"baseline {component}", lock_timeout) as lock:
        try:
            state = session.read_state()
            if state is not None and state.dirty:
                raise DirtyError(
                    f"environment {session.env!r} has an interrupted step: run "
                    "`releasectl recover` first"
                )
            previous = (
                state.components[component].version
                if state and component in (state.components)
                else None
            )
            said: int | None = None
            stamped = False
            if isinstance(version, int):
                said = ask_target(target, component, version, force=force)
                migration = migrations[version - 1] if version else None
                stamped = stamp_if_needed(target, version, said, migration)
            state = session.write_state(
                state,
                lock,
                components=baselined_components(
                    state.components if state else {}, component, version, migrations
                ),
            )
        except Exception as exc:
            session.history.append(
                "baseline", "failed", component=component, to=version, error=str(exc)
            )
            raise
        finally:
            session.close()
        details = {"target": "no record" if said is None else str(said)}
        if force and said is not None and said != version:
            details["forced"] = "true"
        session.history.append(
            "baseline",
            "success",
            component=component,
            from_=previous,
            to=version,
            details=details,
            output="recorded without running anything"
            + ("; wrote a baseline row into the target's history" if stamped else ""),
        )
    return BaselineResult(
        component=component,
        version=version,
        previous=previous,
        target=said,
        forced=force and said is not None and said != version,
        stamped=stamped,
        serial=state.serial,
    )
