"""`release validate` and `release show`: what is wrong with a release, and what it holds.

Validation gathers every problem instead of stopping at the first, each located
(``file:line: field: message``), so one run of `release validate` in CI lists all of them.
"""

from __future__ import annotations

from typing import Any

import semver

from releasectl.errors import InputError, Location, ReleasectlError
from releasectl.models import constraints
from releasectl.models.release import Release
from releasectl.models.state import State
from releasectl.models.workspace import MIGRATED_TYPES
from releasectl.planning.checks import migration_problems
from releasectl.release.versions import flatten, unsatisfied_requires
from releasectl.workspace import LoadedRelease, Workspace, yamlio
from releasectl.workspace.catalogue import Migration


def needed_migrations(workspace: Workspace, manifest: Release) -> list[Migration]:
    """Each migrated component's migrations 1..pinned version, in dependency order."""
    needed: list[Migration] = []
    for name in workspace.order:
        spec = workspace.components[name]
        pin = manifest.components.get(name)
        if spec.type not in MIGRATED_TYPES or pin is None or not isinstance(pin.version, int):
            continue
        found = workspace.catalogue.of(name)
        if found is not None:
            needed.extend(found.migrations[: pin.version])
    return needed


# --- release validate ----------------------------------------------------------------------


def release_problems(
    workspace: Workspace, version: str, *, states: dict[str, State | None] | None = None
) -> list[ReleasectlError]:
    """Everything wrong with release `version`, each problem located (file:line: field).

    Schema and semver, the workspace's cross-checks, `requires` satisfied by the release's own
    versions, every needed migration present with a `down` part, no drift against the
    recorded checksums in `states`, the migrations' static checks, a plan from an empty
    environment, and the upgrade from (and rollback to) the previous release.
    """
    try:
        loaded = workspace.release(version)
    except ReleasectlError as exc:
        return flatten([exc])
    try:
        _ = workspace.order
    except ReleasectlError as exc:
        return [exc]  # nothing can be planned on a cyclic graph
    structural: list[ReleasectlError] = [*workspace.catalogue.errors]
    structural.extend(workspace.release_problems(loaded))
    for name, text in unsatisfied_requires(workspace, loaded.manifest):
        where = loaded.doc.location(("components", name, "requires"))
        structural.append(InputError(text, location=where))
    needed = needed_migrations(workspace, loaded.manifest)
    errors = [*structural, *_down_problems(workspace, loaded, needed)]
    errors.extend(_drift_problems(workspace, needed, states or {}))
    errors.extend(migration_problems(workspace, needed))
    if not structural:  # a broken manifest would only repeat its problems as plan errors
        errors.extend(_plan_problems(workspace, loaded))
    return flatten(errors)


def _down_problems(
    workspace: Workspace, loaded: LoadedRelease, needed: list[Migration]
) -> list[ReleasectlError]:
    from releasectl.workspace.catalogue import LAYOUTS

    errors: list[ReleasectlError] = []
    for migration in needed:
        if migration.has_down:
            continue
        wanted = " or ".join(
            part.replace(":", " with def ") for part in LAYOUTS[migration.type].down
        )
        pinned = loaded.manifest.components[migration.component].version
        errors.append(
            InputError(
                f"no down part ({wanted}): release {loaded.version} pins {migration.component} "
                f"at {pinned}, and rolling it back needs this migration's down",
                location=Location(migration.rel),
            )
        )
    return errors


def _drift_problems(
    workspace: Workspace, needed: list[Migration], states: dict[str, State | None]
) -> list[ReleasectlError]:
    by_key = {(m.component, m.id): m for m in needed}
    errors: list[ReleasectlError] = []
    for env, state in sorted(states.items()):
        if state is None:
            continue
        for name, recorded in sorted(state.components.items()):
            for applied in recorded.applied:
                migration = by_key.get((name, applied.id))
                if migration is not None and migration.checksum != applied.checksum:
                    errors.append(
                        InputError(
                            f"changed since it was applied to {env} (checksum "
                            f"{applied.checksum[:12]} recorded, {migration.checksum[:12]} now)",
                            location=Location(migration.rel),
                        )
                    )
    return errors


def _plan_problems(workspace: Workspace, loaded: LoadedRelease) -> list[ReleasectlError]:
    from releasectl.models.state import ComponentState
    from releasectl.planning.build import migrations_by_component
    from releasectl.planning.planner import Desired, PlanOptions, make_plan

    manifest = loaded.manifest
    migrations = migrations_by_component(workspace)
    options = PlanOptions(allow_breaking=True)  # breaking is apply's question, not validity's

    def attempt(
        what: str, where: yamlio.FieldPath, desired: Desired, state: State | None
    ) -> list[ReleasectlError]:
        try:
            make_plan(
                env="release-validate",
                components=workspace.components,
                migrations=migrations,
                state=state,
                desired=desired,
                options=options,
            )
        except ReleasectlError as exc:
            return [
                InputError(f"{what}: {error.message}", location=loaded.doc.location(where))
                for error in flatten([exc])
            ]
        return []

    def recorded(release: Release) -> State:
        return State(
            env="release-validate",
            lineage="release-validate",
            serial=1,
            release=release.version,
            components={
                n: ComponentState(version=p.version) for n, p in release.components.items()
            },
        )

    pins = {name: pin.version for name, pin in manifest.components.items()}
    errors = attempt(
        "cannot be planned from an empty environment",
        ("components",),
        Desired(versions=pins, release=manifest, release_checksum=loaded.checksum),
        None,
    )
    previous_version = next(
        (v for v in reversed(workspace.release_versions) if _older(v, loaded.version)), None
    )
    if previous_version is None or errors:
        return errors
    try:
        previous = workspace.release(previous_version)
    except ReleasectlError as exc:
        return [
            InputError(
                f"cannot check the upgrade from {previous_version}: its manifest is invalid "
                f"({flatten([exc])[0]})",
                location=loaded.doc.location(("upgrades_from",)),
            )
        ]
    where: yamlio.FieldPath = (
        ("upgrades_from",) if manifest.upgrades_from is not None else ("version",)
    )
    errors.extend(
        attempt(
            f"no upgrade path from the previous release {previous.version}",
            where,
            Desired(
                versions=pins,
                release=manifest,
                release_checksum=loaded.checksum,
                recorded_release=previous.manifest,
            ),
            recorded(previous.manifest),
        )
    )
    back = {name: pin.version for name, pin in previous.manifest.components.items()}
    errors.extend(
        attempt(
            f"no rollback path to the previous release {previous.version}",
            where,
            Desired(versions=back, release=previous.manifest, recorded_release=manifest),
            recorded(manifest),
        )
    )
    return errors


def _older(a: str, b: str) -> bool:
    return semver.Version.parse(a).compare(b) < 0


# --- release show --------------------------------------------------------------------------


def show_release(workspace: Workspace, version: str) -> dict[str, Any]:
    """Components, changes since the previous release and compatibility, as JSON-ready data."""
    loaded = workspace.release(version)
    manifest = loaded.manifest
    previous_version = next(
        (v for v in reversed(workspace.release_versions) if _older(v, version)), None
    )
    previous = workspace.release(previous_version).manifest if previous_version else None
    names = [*workspace.order]
    extra = set(manifest.components) | set(previous.components if previous else {})
    names.extend(sorted(extra - set(names)))
    components: dict[str, Any] = {}
    for name in names:
        pin = manifest.components.get(name)
        if pin is None:
            continue
        spec = workspace.components.get(name)
        components[name] = {
            "type": spec.type if spec else None,
            "version": pin.version,
            "requires": dict(pin.requires),
        }
    changes: list[dict[str, Any]] = []
    if previous is not None:
        for name in names:
            old = previous.components.get(name)
            new = manifest.components.get(name)
            before = old.version if old else None
            after = new.version if new else None
            if str(before) != str(after):
                changes.append(
                    {"name": name, "from": before, "to": after, "change": _change(before, after)}
                )
    admits: bool | None = None
    if previous is not None and manifest.upgrades_from is not None:
        try:
            admits = constraints.parse(manifest.upgrades_from, "semver").admits(previous.version)
        except constraints.ConstraintSyntaxError:
            admits = False
    return {
        "version": manifest.version,
        "description": manifest.description,
        "date": manifest.date,
        "manifest": loaded.rel,
        "checksum": loaded.checksum,
        "previous": previous.version if previous else None,
        "components": components,
        "changes": changes,
        "upgrades_from": manifest.upgrades_from,
        "upgrades_from_previous": admits,
        "notes": manifest.notes,
    }


def _change(before: int | str | None, after: int | str | None) -> str:
    if before is None:
        return "added"
    if after is None:
        return "removed"
    try:
        if isinstance(before, int) and isinstance(after, int):
            return "upgraded" if after > before else "downgraded"
        newer = semver.Version.parse(str(after)).compare(str(before)) > 0
    except ValueError:
        return "changed"
    return "upgraded" if newer else "downgraded"
