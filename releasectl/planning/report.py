"""What `validate` and `status` report about a workspace and an environment."""

from __future__ import annotations

from releasectl.errors import ReleasectlError
from releasectl.models.state import ComponentStatus, State, Status
from releasectl.models.workspace import MIGRATED_TYPES
from releasectl.planning.drift import Drift, find_drift
from releasectl.workspace import LoadedRelease, Workspace


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
