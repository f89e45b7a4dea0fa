"""`apply --commit`: write the state, the history, the changelog section and the package
checksums into the workspace, commit exactly those files and tag the release.

The state and history of a file-backed environment are the files themselves; for a Redis or
Kubernetes backend, a snapshot of them is exported to the same paths so that git records what
was applied. Tags: `v<version>` for the release and `<component>@<version>` for every service
the plan deployed; a tag that already exists (the release reached an earlier environment
first) is left where it is.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from releasectl.engine.apply import ApplyResult
from releasectl.errors import InputError, Location
from releasectl.models.plan import Plan
from releasectl.models.state import State
from releasectl.util import timeutil
from releasectl.util.fsutil import atomic_write
from releasectl.workspace import Workspace

CHANGELOG = "CHANGELOG.md"


def own_paths(workspace: Workspace, plan: Plan) -> list[Path]:
    """The files `apply --commit` writes; changes to them do not make the tree dirty."""
    root = workspace.root
    paths = [
        root / ".releasectl" / "state" / f"{plan.env}.json",
        root / ".releasectl" / "history" / f"{plan.env}.jsonl",
    ]
    if plan.release.to is not None:
        from releasectl.release.package import package_name

        paths.append(root / CHANGELOG)
        paths.append(
            root / ".releasectl" / "packages" / f"{package_name(workspace, plan.release.to)}.sha256"
        )
    return paths


def precheck(workspace: Workspace, plan: Plan) -> None:
    """Refuse before anything runs when the work tree has changes that are not ours, when an
    ignore rule would keep a file we must commit out of `git add`, or when the changelog cannot
    be made (a shallow clone): found after the apply, each left the state recorded but
    uncommitted and the release untagged."""
    from releasectl.release.gitops import dirty_paths, ignored_paths

    paths = own_paths(workspace, plan)
    dirty = dirty_paths(workspace.root, paths)
    if dirty:
        shown = ", ".join(dirty[:10]) + (" ..." if len(dirty) > 10 else "")
        raise InputError(f"apply --commit needs a clean work tree; commit or stash first: {shown}")
    ignored = ignored_paths(workspace.root, paths)
    if ignored:
        rules = "\n".join(
            f"{i.path}: ignored by {i.source}:{i.line} ({i.pattern})" for i in ignored
        )
        first = ignored[0]
        raise InputError(
            "apply --commit must commit these files, but git ignores them; nothing was run. "
            "Remove the rule (commit-back records state, history, changelog and package "
            f"checksums in git), or apply without --commit:\n{rules}",
            location=Location(first.source, first.line),
        )
    if plan.release.to is not None:
        # a dry run of the changelog commit-back will write: a shallow clone or a range git
        # cannot walk fails here, before the first step, instead of after the apply
        from releasectl.release.changelog import generate

        generate(workspace.root, None, None, version_label=str(plan.release.to))


def pending(workspace: Workspace, plan: Plan, state: State | None) -> bool:
    """Whether an earlier `apply --commit` left work undone: the recorded state differs from
    the one committed at HEAD, or the release tag is missing. A plan with nothing to apply
    then still commits and tags, so a commit-back that failed can be finished by running
    `apply --commit` again; when everything is committed it does nothing."""
    import json

    from releasectl.release.gitops import committed_text

    if state is None:
        return False
    if plan.release.to is not None and state.release != plan.release.to:
        return False  # the release was never applied here: nothing of it to commit
    committed = committed_text(workspace.root, own_paths(workspace, plan)[0])
    try:
        serial = json.loads(committed)["serial"] if committed else None
    except (ValueError, KeyError, TypeError):
        serial = None
    if serial != state.serial:
        return True
    return plan.release.to is not None and not _tag_exists(workspace.root, f"v{plan.release.to}")


def commit_release(
    workspace: Workspace, plan: Plan, result: ApplyResult | None, state: State | None = None
) -> str:
    """Write and commit what the apply recorded (`result`, or for a catch-up of an earlier
    apply with nothing left to run, the recorded `state`), and tag the release."""
    from releasectl.release.gitops import commit_back, release_tags

    paths = own_paths(workspace, plan)
    recorded = result.state if result is not None else state
    _export_state(workspace, plan, recorded, paths[0], paths[1])
    version = plan.release.to
    if version is not None:
        _write_changelog(workspace, version)
        _write_package_sums(workspace, version, paths[3])
    deployed = {s.component: s.to for s in plan.steps if s.action == "deploy" and s.to is not None}
    if result is None and state is not None:  # a catch-up: the services as recorded
        deployed = {
            name: comp.version
            for name, comp in state.components.items()
            if comp.version is not None
            and name in workspace.components
            and workspace.components[name].type == "service"
        }
    tags = [t for t in release_tags(version, deployed) if not _tag_exists(workspace.root, t)]
    return commit_back(
        workspace.root,
        env=plan.env,
        release=version,
        plan_digest=plan.digest,
        paths=paths,
        tags=tags,
    )


def _export_state(
    workspace: Workspace, plan: Plan, state: State | None, state_path: Path, history_path: Path
) -> None:
    if workspace.environment(plan.env).state.backend == "file" or state is None:
        return  # the files are the state
    from releasectl.state import open_backend

    backend = open_backend(workspace, plan.env)
    atomic_write(state_path, state.model_dump_json(by_alias=True, indent=2) + "\n")
    atomic_write(history_path, "".join(line + "\n" for line in backend.history_lines()))


def _write_changelog(workspace: Workspace, version: str) -> None:
    from releasectl.release.changelog import generate, render_markdown, write_section

    report = generate(workspace.root, None, None, version_label=version)
    text = render_markdown(report, version, timeutil.now().date().isoformat())
    write_section(workspace.root / CHANGELOG, text, version)


def _write_package_sums(workspace: Workspace, version: str, path: Path) -> None:
    from releasectl.release.package import build_package, sums_text

    package = build_package(workspace, version)
    body = f"{package.sha256}  {package.path.name}\n".encode() + sums_text(package.sums)
    atomic_write(path, body)


def _tag_exists(root: Path, tag: str) -> bool:
    proc = subprocess.run(
        ["git", "rev-parse", "-q", "--verify", f"refs/tags/{tag}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode == 0
