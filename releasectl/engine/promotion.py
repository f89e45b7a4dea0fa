"""Promotion: an environment with `promote_from: E` takes a release only after E applied and
verified it."""

from __future__ import annotations

from releasectl.errors import ReleasectlError
from releasectl.models.plan import Plan
from releasectl.models.state import ReleaseRecord
from releasectl.workspace import Workspace


def promotion_record(workspace: Workspace, env: str, version: str) -> ReleaseRecord | None:
    source = workspace.environment(env).promote_from
    if source is None:
        return None
    from releasectl.state import open_backend

    state = open_backend(workspace, source).read()
    if state is None:
        return None
    for record in reversed(state.releases):
        if record.version == version and record.verified:
            return record
    return None


def with_promotion_warning(workspace: Workspace, env: str, plan: Plan) -> Plan:
    """The plan as `plan` shows and saves it: with why promotion blocks it, if it does."""
    problem = promotion_problem(workspace, env, plan)
    if problem is None:
        return plan
    return plan.model_copy(update={"warnings": [*plan.warnings, problem]})


def promotion_problem(workspace: Workspace, env: str, plan: Plan) -> str | None:
    """Why `plan` may not be applied to `env` yet, or None when promotion allows it."""
    source = workspace.environment(env).promote_from
    version = plan.release.to
    if source is None or version is None or version == plan.release.from_:
        return None
    try:
        record = promotion_record(workspace, env, version)
    except ReleasectlError as exc:
        return (
            f"promotion: cannot read the state of {source!r} to check that it verified "
            f"release {version}: {exc}"
        )
    if record is None:
        return (
            f"promotion: release {version} must be applied and verified in {source!r} "
            f"before {env!r} (promote_from: {source})"
        )
    return None
