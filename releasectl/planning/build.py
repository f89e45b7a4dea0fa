"""Gathers what the pure planner needs (workspace, manifests, catalogue, recorded state) and
checks what `validate`, `plan` and `status` report. Nothing here prints or exits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from releasectl.errors import (
    DriftError,
    ReleasectlError,
    bundle,
)
from releasectl.models.plan import Plan
from releasectl.models.release import Release
from releasectl.models.state import ComponentStatus, State, Status
from releasectl.models.workspace import MIGRATED_TYPES
from releasectl.planning.planner import Desired, PlanOptions, make_plan
from releasectl.workspace import LoadedRelease, Workspace
from releasectl.workspace.catalogue import Migration


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


def raise_problems(errors: Sequence[ReleasectlError]) -> None:
    if errors:
        raise bundle(errors)


def migrations_by_component(workspace: Workspace) -> dict[str, list[Migration]]:
    return {name: found.migrations for name, found in workspace.catalogue.components.items()}


def release_plan(
    workspace: Workspace,
    env: str,
    state: State | None,
    *,
    release: str | None = None,
    allow_breaking: bool = False,
) -> Plan:
    """Plan the environment towards a release (its pin, or the newest manifest)."""
    workspace.environment(env)
    raise_problems([*_structure_problems(workspace)])
    loaded = workspace.desired_release(env, release)
    workspace.check_release(loaded)
    desired = Desired(
        versions={name: pin.version for name, pin in loaded.manifest.components.items()},
        release=loaded.manifest,
        release_checksum=loaded.checksum,
        recorded_release=_recorded_release(workspace, state),
    )
    plan = make_plan(
        env=env,
        components=workspace.components,
        migrations=migrations_by_component(workspace),
        state=state,
        desired=desired,
        options=PlanOptions(allow_breaking=allow_breaking),
        workspace=workspace.name,
    )
    raise_problems(plan_problems(workspace, plan))
    drift = find_drift(workspace, state)
    if drift:
        plan = plan.model_copy(update={"warnings": [d.describe(workspace) for d in drift]})
    return plan


def component_plan(
    workspace: Workspace,
    env: str,
    state: State | None,
    component: str,
    version: int | str | None,
    *,
    force: bool = False,
    allow_breaking: bool = False,
) -> Plan:
    """Plan one component to `version` (default: its latest migration), like the old
    framework's `migrate COMPONENT [VERSION]` and `rollback COMPONENT VERSION`."""
    workspace.environment(env)
    spec = workspace.component(component)
    raise_problems([*_structure_problems(workspace)])
    if version is None:
        if spec.type not in MIGRATED_TYPES:
            from releasectl.errors import InputError

            raise InputError(f"{component!r} is a service: give the version to deploy")
        found = workspace.catalogue.of(component)
        version = found.latest if found else 0
    desired = Desired(
        versions={component: version}, recorded_release=_recorded_release(workspace, state)
    )
    options = PlanOptions(allow_breaking=allow_breaking, reapply={component} if force else set())
    plan = make_plan(
        env=env,
        components=workspace.components,
        migrations=migrations_by_component(workspace),
        state=state,
        desired=desired,
        options=options,
        workspace=workspace.name,
    )
    raise_problems(plan_problems(workspace, plan))
    return plan


def plan_migrations(workspace: Workspace, plan: Plan) -> dict[int, Migration]:
    """The catalogue's migration of each up/down step, by step index."""
    from releasectl.errors import StaleError

    found: dict[int, Migration] = {}
    for index, step in enumerate(plan.steps):
        if step.migration is None:
            continue
        known = workspace.catalogue.of(step.component)
        number = step.to if step.action == "up" else step.from_
        migration = known.get(int(number)) if known and number is not None else None
        if migration is None or migration.id != step.migration:
            raise StaleError(
                f"step {index + 1}: migration {step.component}/{step.migration} is no longer "
                "in the workspace"
            )
        found[index] = migration
    return found


def plan_problems(workspace: Workspace, plan: Plan) -> list[ReleasectlError]:
    """Secrets in the manifests, and the static checks of every migration the plan runs."""
    from releasectl.planning.checks import manifest_secret_problems, migration_problems

    unique = {m.rel: m for m in plan_migrations(workspace, plan).values()}
    return [*manifest_secret_problems(workspace), *migration_problems(workspace, unique.values())]


def _recorded_release(workspace: Workspace, state: State | None) -> Release | None:
    if state is None or state.release is None:
        return None
    if state.release not in workspace.release_versions:
        return None
    return workspace.release(state.release).manifest


def _structure_problems(workspace: Workspace) -> list[ReleasectlError]:
    errors: list[ReleasectlError] = []
    try:
        _ = workspace.order
    except ReleasectlError as exc:
        errors.append(exc)
    errors.extend(workspace.catalogue.errors)
    return errors


def validate(
    workspace: Workspace, env: str | None, state: State | None
) -> tuple[list[ReleasectlError], list[Drift]]:
    """Every problem `validate` reports: workspace, manifests, catalogue, then drift."""
    from releasectl.planning.checks import manifest_secret_problems, migration_problems

    errors = workspace.problems()
    errors.extend(manifest_secret_problems(workspace))
    errors.extend(migration_problems(workspace))
    from releasectl import authz

    errors.extend(authz.problems(workspace))
    if env is not None:
        try:
            workspace.environment(env)
        except ReleasectlError as exc:
            errors.append(exc)
    return errors, find_drift(workspace, state)


def status(
    workspace: Workspace, env: str, state: State | None, desired: LoadedRelease | None = None
) -> Status:
    drift = find_drift(workspace, state)
    components: dict[str, ComponentStatus] = {}
    for name in workspace.order:
        spec = workspace.components[name]
        recorded = state.components.get(name) if state else None
        version = recorded.version if recorded else None
        if version is None and spec.type in MIGRATED_TYPES:
            version = 0
        pin = desired.manifest.components.get(name) if desired else None
        components[name] = ComponentStatus(
            type=spec.type,
            version=version,
            applied=[a.id for a in recorded.applied] if recorded else [],
            desired=pin.version if pin else None,
            drift=[d.migration for d in drift if d.component == name],
        )
    return Status(
        env=env,
        release=state.release if state else None,
        dirty=bool(state and state.dirty),
        components=components,
        serial=state.serial if state else 0,
        lineage=state.lineage if state else None,
        journal=state.journal if state else None,
    )
