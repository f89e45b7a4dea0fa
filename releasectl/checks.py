"""Static checks of migrations and manifests: literal secrets, and each target type's own
checks (Cedar policies validate, Kubernetes objects parse, ...). Used by `validate`, `plan`
and `release validate`; none of them needs a connection."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from releasectl.catalogue import Migration
from releasectl.errors import InputError, Location, ReleasectlError
from releasectl.secrets import scan_text
from releasectl.workspace import WORKSPACE_FILE, Workspace

# Files that are not text (never scanned); everything else in a migration is.
_BINARY_SUFFIXES = frozenset({".gz", ".zip", ".png", ".jpg", ".jpeg", ".gif", ".pdf", ".db"})


def secret_problems_in(path: Path, display: str) -> list[ReleasectlError]:
    if path.suffix in _BINARY_SUFFIXES:
        return []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [
        InputError(
            f"literal secret ({finding.name}) at column {finding.column}: reference it from "
            "the environment instead (${env:VAR}, ExternalSecret)",
            location=Location(display, finding.line),
        )
        for finding in scan_text(text)
    ]


def secret_problems(migration: Migration) -> list[ReleasectlError]:
    errors: list[ReleasectlError] = []
    for rel in migration.files:
        errors.extend(secret_problems_in(migration.path / rel, f"{migration.rel}/{rel}"))
    return errors


def manifest_secret_problems(workspace: Workspace) -> list[ReleasectlError]:
    errors = secret_problems_in(workspace.root / WORKSPACE_FILE, WORKSPACE_FILE)
    for version in workspace.release_versions:
        rel = f"{workspace.spec.releases}/{version}.yaml"
        errors.extend(secret_problems_in(workspace.root / rel, rel))
    return errors


def target_problems(workspace: Workspace, migrations: Iterable[Migration]) -> list[ReleasectlError]:
    """Each target type's static checks (`Target.problems`), without connecting anywhere."""
    from releasectl.targets.base import Target, TargetContext, target_class

    errors: list[ReleasectlError] = []
    instances: dict[str, Target] = {}
    for migration in migrations:
        target = instances.get(migration.component)
        if target is None:
            ctx = TargetContext(
                root=workspace.root,
                env="",
                component=migration.component,
                type=migration.type,
                settings=None,
                migrations=workspace.catalogue.of(migration.component),
            )
            target = target_class(migration.type)(ctx)
            instances[migration.component] = target
        errors.extend(target.problems(migration))
    return errors


def migration_problems(
    workspace: Workspace, migrations: Iterable[Migration] | None = None
) -> list[ReleasectlError]:
    """Secrets and target checks of `migrations` (default: every migration)."""
    if migrations is None:
        migrations = [
            m for found in workspace.catalogue.components.values() for m in found.migrations
        ]
    migrations = list(migrations)
    errors: list[ReleasectlError] = []
    for migration in migrations:
        errors.extend(secret_problems(migration))
    errors.extend(target_problems(workspace, migrations))
    return errors
