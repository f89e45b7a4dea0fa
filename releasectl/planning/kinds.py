"""What kind of change a plan is: the authorization action it needs, and whether a step goes
down (pure: plain data in, an answer out)."""

from __future__ import annotations

from releasectl.models.plan import Plan, Step


def operation_of(plan: Plan) -> str:
    """The authorization action a plan needs: apply a release, or migrate/rollback one part."""
    if plan.release.to is not None:
        return "apply"
    if plan.steps and all(s.action == "down" or is_downgrade(s) for s in plan.steps):
        return "rollback"
    return "migrate"


def is_downgrade(step: Step) -> bool:
    if step.action != "deploy" or step.from_ is None or step.to is None:
        return False
    import semver

    return bool(semver.Version.parse(str(step.to)) < semver.Version.parse(str(step.from_)))
