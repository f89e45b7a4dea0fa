"""Builds plans from a workspace: gathers what the pure planner needs (manifests, catalogue,
recorded state), calls it, and runs the static checks of every migration the plan will run.
Nothing here prints or exits."""

from __future__ import annotations

from collections.abc import Sequence

from releasectl.errors import (
    ReleasectlError,
    bundle,
)
from releasectl.models.plan import Plan
from releasectl.models.release import Release
from releasectl.models.state import State
from releasectl.models.workspace import MIGRATED_TYPES
from releasectl.planning.drift import find_drift
from releasectl.planning.planner import Desired, PlanOptions, make_plan
from releasectl.workspace import Workspace
from releasectl.workspace.catalogue import Migration


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
