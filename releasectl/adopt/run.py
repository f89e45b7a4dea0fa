"""`import-legacy DIR`, second phase: carry out an `ImportPlan`.

`run_import` checks that the environment has recorded nothing yet and that the actor may
`baseline` it, writes the files, asks each target what it records (as `baseline` does; a
contradiction refuses, exit 3, unless forced), and then, under the environment's lock, writes
the targets' own records where they keep one (the SQL history table), the history (the
imported rows first, marked `imported`, so the chain starts there; then a `baseline` entry
per component and an `import` entry) and the state. A failure before any target is written
takes the written files back, so a refused import leaves the workspace as it was.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from releasectl.adopt.baseline import TargetDisagrees, baselined_components, stamp_if_needed
from releasectl.adopt.plan import ImportPlan
from releasectl.errors import InputError, ReleasectlError, bundle
from releasectl.models.state import ComponentState
from releasectl.workspace import WORKSPACE_FILE, Workspace, yamlio


@dataclass
class ImportResult:
    plan: ImportPlan
    dry_run: bool
    targets: dict[str, int | None] = field(default_factory=dict)  # what each target recorded
    stamped: list[str] = field(default_factory=list)
    history_entries: int = 0
    serial: int | None = None


def run_import(
    plan: ImportPlan,
    *,
    dry_run: bool = False,
    force: bool = False,
    lock_timeout: float | None = None,
    environ: dict[str, str] | None = None,
) -> ImportResult:
    from releasectl.engine.session import Session

    result = ImportResult(plan, dry_run)
    planned_ws = _workspace_after(plan)
    _check_empty(planned_ws, plan.env)
    _authorize(planned_ws, plan, environ)
    if dry_run:
        return result
    undo = _Undo()
    try:
        _write_files(plan, undo)
        workspace = Workspace.load(plan.root)
        problems = [
            e
            for e in workspace.catalogue.errors
            if any(f"migrations/{c}/" in str(e) for c in plan.components)
        ]
        if problems:
            raise bundle(problems)
        workspace.check_release(workspace.release(plan.release))
        session = Session(workspace, plan.env, environ=environ or dict(os.environ))
        migrated = [c for c in plan.components.values() if c.version]
        targets = {c.name: session.target(c.name) for c in migrated}
        with session.lock("import-legacy", lock_timeout) as lock:
            if session.read_state() is not None:
                raise InputError(f"environment {plan.env!r} recorded state meanwhile")
            disagree: list[ReleasectlError] = []
            for component in migrated:
                said = targets[component.name].recorded_version()
                result.targets[component.name] = said
                if said is not None and said != component.version and not force:
                    disagree.append(
                        TargetDisagrees(
                            f"{component.name}: the target records version {said}, the old "
                            f"state file {component.version_file} says {component.version}; "
                            "look at the environment and fix the state file, or pass --force"
                        )
                    )
            if disagree:
                raise bundle(disagree)
            undo.forget()  # from here on the workspace files stay: the targets get written
            for component in migrated:
                found = workspace.catalogue.of(component.name)
                migration = found.get(component.version) if found else None
                said = result.targets[component.name]
                if stamp_if_needed(targets[component.name], component.version, said, migration):
                    result.stamped.append(component.name)
            result.history_entries = _write_history(session, plan, result, force)
            components: dict[str, ComponentState] = {}
            for component in plan.components.values():
                found = workspace.catalogue.of(component.name)
                migrations = found.migrations if found else []
                components = baselined_components(
                    components, component.name, component.version, migrations
                )
            state = session.write_state(None, lock, components=components, release=plan.release)
            result.serial = state.serial
        session.close()
    except BaseException:
        undo.run()
        raise
    return result


def _workspace_after(plan: ImportPlan) -> Workspace:
    """The workspace as it will be after the import, loaded from the planned text."""
    from releasectl.models.workspace import WorkspaceFile
    from releasectl.workspace.loading import validate

    if plan.workspace_text is None:
        return Workspace.load(plan.root)
    doc = yamlio.loads(plan.workspace_text, WORKSPACE_FILE)
    return Workspace(plan.root, validate(WorkspaceFile, doc), doc)


def _check_empty(workspace: Workspace, env: str) -> None:
    from releasectl.state import open_backend

    backend = open_backend(workspace, env)
    state = backend.read()
    if state is not None or backend.last_history_line() is not None:
        raise InputError(
            f"environment {env!r} already has recorded state or history "
            f"({backend.describe()}): import-legacy adopts an environment releasectl has not "
            "run yet; record single components with `releasectl baseline`"
        )


def _authorize(workspace: Workspace, plan: ImportPlan, environ: dict[str, str] | None) -> None:
    if not workspace.environment(plan.env).protected:
        return
    from releasectl.authz import authorize
    from releasectl.util.actor import actor

    env = environ or dict(os.environ)
    who = actor(env)
    authorize(workspace, plan.env, actor=who, action="baseline", environ=env)
    for name in plan.components:
        authorize(workspace, plan.env, actor=who, action="baseline", component=name, environ=env)


class _Undo:
    """What `_write_files` did, to take back if the import fails before the targets change."""

    def __init__(self) -> None:
        self.created: list[Path] = []
        self.dirs: list[Path] = []
        self.restore: dict[Path, bytes] = {}
        self.active = True

    def forget(self) -> None:
        self.active = False

    def run(self) -> None:
        if not self.active:
            return
        for path in reversed(self.created):
            with contextlib.suppress(OSError):
                path.unlink()
        for directory in reversed(self.dirs):
            with contextlib.suppress(OSError):
                directory.rmdir()
        for path, data in self.restore.items():
            from releasectl.util.fsutil import atomic_write

            atomic_write(path, data)


def _write_files(plan: ImportPlan, undo: _Undo) -> None:
    from releasectl.util.fsutil import atomic_write

    def mkdirs(directory: Path) -> None:
        missing = []
        while not directory.exists():
            missing.append(directory)
            directory = directory.parent
        for item in reversed(missing):
            item.mkdir()
            undo.dirs.append(item)

    def write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
        mkdirs(path.parent)
        if path.exists():
            undo.restore[path] = path.read_bytes()
        else:
            undo.created.append(path)
        atomic_write(path, data, mode=mode)

    for component in plan.components.values():
        for migration in component.migrations:
            if migration.status == "unchanged":
                continue
            directory = plan.root / "migrations" / component.name / migration.id
            for name, data in migration.files.items():
                write(directory / name, data, 0o755 if name.endswith(".sh") else 0o644)
    if plan.release_text is not None:
        write(plan.root / plan.release_rel, plan.release_text)
    if plan.workspace_text is not None:
        write(plan.root / WORKSPACE_FILE, plan.workspace_text)


def _write_history(session: Any, plan: ImportPlan, result: ImportResult, force: bool) -> int:
    history = session.history
    count = 0
    for row in plan.rows:
        history.append(
            row.action,
            row.result,
            time=row.time,
            actor=row.actor,
            component=row.component,
            from_=row.from_,
            to=row.to,
            imported=True,
            source=f"{plan.history_source}:{row.line}",
            details=row.details or None,
        )
        count += 1
    for component in plan.components.values():
        said = result.targets.get(component.name)
        details = {"target": "no record" if said is None else str(said)}
        if force and said is not None and said != component.version:
            details["forced"] = "true"
        history.append(
            "baseline",
            "success",
            component=component.name,
            to=component.version,
            source=component.version_file or f"{plan.source}/state (no {component.name}_version)",
            details=details,
            output="imported from the old framework's state; nothing was run"
            + (
                "; wrote a baseline row into the target's history"
                if component.name in result.stamped
                else ""
            ),
        )
        count += 1
    history.append(
        "import",
        "success",
        release=plan.release,
        source=plan.source,
        output=f"{len(plan.rows)} history row(s), {len(plan.components)} component(s) "
        f"from {plan.source}",
    )
    return count + 1
