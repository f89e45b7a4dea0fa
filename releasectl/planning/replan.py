"""Re-plan and compare: a saved plan runs only if it is exactly the plan made now.

A plan file travels between `plan --out` and `apply PLAN` (a CI artifact, a file in a pull
request) and anyone who can write it can edit any field: a step's `backup`, its `breaking`
flag, the rollback, a description. Its digest cannot guard it, since anyone can recompute a
SHA-256. So `apply PLAN` plans the same environment again, from the workspace and the
recorded state, and refuses (exit 3) unless the saved plan equals the new one in every field,
naming the first field that differs. What runs is then what `plan` shows for this workspace
and state, whoever wrote the file. The reports `plan --analyze/--rehearse` may add (`analysis`,
`rehearsal`) are dropped before the comparison: they are for reviewers, and nothing runs from
them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from releasectl.errors import StaleError, excerpt
from releasectl.models.plan import Plan
from releasectl.models.state import State
from releasectl.planning.build import release_plan
from releasectl.workspace import Workspace

# compared first: a state that moved on is the usual reason, and says so; the digest last, so
# that an edited field is named rather than the digest that covers some of the fields
FIRST = ("format_version", "env", "state", "release")
LAST = ("digest",)
# reports a plan may carry for its reviewers; never part of what runs
REPORTS = ("analysis", "rehearsal")


def replan(workspace: Workspace, saved: Plan, state: State | None) -> Plan:
    """The plan `releasectl plan --env ENV --release VERSION --out` would write now.

    `--allow-breaking` is given: whether a breaking step may run is then decided by the
    authorization policy on the recomputed plan (`breaking` is compared like every field)."""
    if saved.release.to is None:
        raise StaleError(
            "a saved plan must be a release plan written by `releasectl plan --out` (it names "
            "no release); plan again"
        )
    return release_plan(workspace, saved.env, state, release=saved.release.to, allow_breaking=True)


def check_saved(
    workspace: Workspace,
    saved: Plan,
    state: State | None,
    *,
    annotate: Callable[[Plan], Plan] | None = None,
) -> Plan:
    """Re-plan (running every static check again) and compare; raises `StaleError` naming the
    first differing field. `annotate` adds what `plan` adds to a plan it saves (promotion)."""
    # what `--analyze` and `--rehearse` report is for the reviewer: apply never acts on it and
    # it cannot be made again exactly (a rehearsal's durations), so it is dropped, not compared
    saved = saved.model_copy(update=dict.fromkeys(REPORTS))
    fresh = replan(workspace, saved, state)
    if annotate is not None:
        fresh = annotate(fresh)
    problem = _stale(workspace, saved, fresh) or difference(saved, fresh)
    if problem is not None:
        raise StaleError(problem)
    return fresh


def _stale(workspace: Workspace, saved: Plan, fresh: Plan) -> str | None:
    """The usual reasons a plan made honestly no longer holds, said as such."""
    if saved.state != fresh.state:
        return (
            f"stale plan: the state of {saved.env!r} moved on since it was planned (serial "
            f"{saved.state.serial} planned, {fresh.state.serial} now); plan again"
        )
    if saved.release == fresh.release and saved.manifest_checksum != fresh.manifest_checksum:
        return (
            f"stale plan: {workspace.spec.releases}/{saved.release.to}.yaml is not the manifest "
            "it was planned from (it changed since, or the plan file was edited); plan again"
        )
    for old, new in zip(saved.steps, fresh.steps, strict=False):
        same = (old.component, old.action, old.migration) == (
            new.component,
            new.action,
            new.migration,
        )
        if same and old.migration and old.checksum != new.checksum:
            return (
                f"stale plan: {workspace.migrations_dir(old.component)}/{old.migration} changed "
                "since it was planned (or the plan file was edited); plan again"
            )
    return None


def difference(saved: Plan, fresh: Plan) -> str | None:
    """Why `saved` is not `fresh`, naming the first field that differs, or None."""
    old = saved.model_dump(mode="json", by_alias=True)
    new = fresh.model_dump(mode="json", by_alias=True)
    keys = [*FIRST, *(k for k in new if k not in FIRST and k not in LAST), *LAST]
    keys += [k for k in old if k not in keys]
    for key in keys:
        found = _first_difference(old.get(key), new.get(key), key)
        if found is not None:
            field, was, now = found
            return (
                f"the saved plan is not the plan made now: {field}: {was} in the plan file, "
                f"{now} when planned again from the workspace and the recorded state; an "
                "edited plan never runs: plan again"
            )
    return None


def _first_difference(old: Any, new: Any, path: str) -> tuple[str, str, str] | None:
    if type(old) is not type(new):
        return path, _shown(old), _shown(new)
    if isinstance(old, dict):
        for key in [*new, *(k for k in old if k not in new)]:
            if key not in old or key not in new:
                return f"{path}.{key}", _shown(old.get(key)), _shown(new.get(key))
            found = _first_difference(old[key], new[key], f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(old, list):
        for index, (a, b) in enumerate(zip(old, new, strict=False)):
            found = _first_difference(a, b, f"{path}[{index}]")
            if found is not None:
                return found
        if len(old) != len(new):
            return path, _shown(old), _shown(new)
        return None
    if old != new:
        return path, _shown(old), _shown(new)
    return None


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"{len(value)} item(s)"
    if isinstance(value, str):
        return excerpt(value)
    return json.dumps(value)  # true, false, null, numbers as the plan file spells them
