"""Shell completion of what a workspace names: environments, components, releases and backup ids.

Click calls these while the shell completes a word (`_RELEASECTL_COMPLETE=bash_source
releasectl`, see docs/cli.md). They read the workspace of `--workspace` or the current
directory, never open a state backend or a target, and complete nothing rather than fail: a
broken workspace must not break the shell.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from click.shell_completion import CompletionItem

if TYPE_CHECKING:
    from releasectl.workspace import Workspace


def _workspace(ctx: click.Context) -> Workspace | None:
    from releasectl.workspace import Workspace, find_root

    given = ctx.find_root().params.get("workspace")
    try:
        root = Path(given).resolve() if given else find_root(Path.cwd())
        return Workspace.load(root)
    except Exception:  # completion must never raise into the shell
        return None


def _env(ctx: click.Context) -> str:
    import os

    here = ctx.params.get("env")
    top = ctx.find_root().params.get("env")
    return str(here or top or os.environ.get("RELEASECTL_ENV") or "local")


def _items(
    values: Iterable[str], incomplete: str, help_: dict[str, str] | None = None
) -> list[CompletionItem]:
    notes = help_ or {}
    return [CompletionItem(v, help=notes.get(v)) for v in values if v.startswith(incomplete)]


def environments(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    workspace = _workspace(ctx)
    if workspace is None:
        return []
    envs = workspace.spec.environments
    return _items(envs, incomplete, {k: v.description or "" for k, v in envs.items()})


def components(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    workspace = _workspace(ctx)
    if workspace is None:
        return []
    found = workspace.components
    return _items(found, incomplete, {k: v.type for k, v in found.items()})


def components_or_platform(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """`version bump` takes a component or `platform`."""
    return [*components(ctx, param, incomplete), *_items(["platform"], incomplete)]


def releases(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    workspace = _workspace(ctx)
    if workspace is None:
        return []
    try:
        versions = workspace.release_versions
    except Exception:
        return []
    return _items(reversed(versions), incomplete)


def backup_ids(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The backups of the COMPONENT given before it, in the environment of --env."""
    workspace = _workspace(ctx)
    if workspace is None:
        return []
    from releasectl.state.backups import BackupStore

    env = _env(ctx)
    try:
        spec = workspace.environment(env).backups
        store = BackupStore(
            workspace.root / (spec.path or ".releasectl/backups"),
            env,
            encrypt=False,
            key_env=spec.key_env,
            retention=spec.retention,
        )
        found = store.all(ctx.params.get("component") or None)
    except Exception:
        return []
    newest_first = sorted(found, key=lambda b: b.created, reverse=True)
    return _items(
        [b.id for b in newest_first],
        incomplete,
        {b.id: f"{b.component} {b.created}" for b in newest_first},
    )
