"""Builders for the Kubernetes tests: a component's migrations written into a directory, the
target context the engine would hand a target, and steps."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from releasectl.models.plan import Step
from releasectl.targets.base import TargetContext
from releasectl.workspace.catalogue import ComponentMigrations, scan_component
from tests.builders import add_migration


def write_migrations(
    root: Path, versions: list[dict[str, str]], component: str = "config"
) -> ComponentMigrations:
    """Migration N+1 gets the files of versions[N] ({name: YAML text, dedented})."""
    for number, files in enumerate(versions, 1):
        add_migration(root, component, f"{number:04d}_v{number}", files)
    found, errors = scan_component(root, component, "kubernetes", f"migrations/{component}")
    assert not errors, errors
    return found


def context(
    root: Path,
    settings: Any,
    migrations: ComponentMigrations | None = None,
    *,
    component: str = "config",
    type_: str = "kubernetes",
    environ: Mapping[str, str] | None = None,
    protected: bool = False,
) -> TargetContext:
    return TargetContext(
        root=root,
        env="test",
        component=component,
        type=type_,
        settings=settings,
        migrations=migrations,
        protected=protected,
        environ=dict(environ or {}),
    )


def step(
    to: int | str | None,
    from_: int | str | None,
    *,
    component: str = "config",
    type_: str = "kubernetes",
) -> Step:
    if type_ == "service":
        action = "deploy"
    elif isinstance(to, int) and isinstance(from_, int) and to < from_:
        action = "down"
    else:
        action = "up"
    migration = None
    if type_ != "service":
        number = max(int(to or 0), int(from_ or 0))
        migration = f"{number:04d}_v{number}"
    return Step.model_validate(
        {
            "component": component,
            "type": type_,
            "action": action,
            "from": from_,
            "to": to,
            "migration": migration,
            "backup": type_ != "service",
        }
    )
