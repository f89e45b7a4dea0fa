"""Change analysis of a plan: one module per component type behind the `ANALYZERS` registry
(as targets/base.py's `REGISTRY`), each a function of one step.

The analysis reads the workspace only (migration files, the environment's settings); it never
connects to a target. What only running a step can tell (keys a migration.py deletes, rows a
DROP COLUMN loses) comes from a rehearsal when one was made, and is merged in here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from releasectl.models.analysis import Analysis, AnalysisSummary, StepAnalysis

if TYPE_CHECKING:
    from releasectl.models.plan import Plan, Step
    from releasectl.models.rehearsal import Rehearsal, StepRehearsal
    from releasectl.workspace import Workspace
    from releasectl.workspace.catalogue import ComponentMigrations, Migration

# type -> "module:function"; a type that is not named has nothing to analyse
ANALYZERS: dict[str, str] = {
    "sql": "releasectl.analysis.sql:analyze",
    "redis": "releasectl.analysis.redis:analyze",
    "kubernetes": "releasectl.analysis.kubernetes:analyze",
    "cedar": "releasectl.analysis.cedar:analyze",
}


@dataclass(frozen=True)
class StepInput:
    index: int  # 1-based
    step: Step
    migration: Migration | None
    migrations: ComponentMigrations | None  # every migration of the component
    dialect: str | None = None  # sql: sqlite | postgresql (None: unknown)
    rehearsed: StepRehearsal | None = None


Analyzer = Callable[[StepInput], "StepAnalysis | None"]


def analyzer(component_type: str) -> Analyzer | None:
    entry = ANALYZERS.get(component_type)
    if entry is None:
        return None
    module_name, _, attr = entry.partition(":")
    found: Analyzer = getattr(importlib.import_module(module_name), attr)
    return found


def analyze(
    workspace: Workspace,
    env: str,
    plan: Plan,
    rehearsal: Rehearsal | None = None,
    environ: Mapping[str, str] | None = None,
) -> Analysis:
    """What every step of `plan` changes, with the rehearsal's observations when given."""
    from releasectl.planning.build import plan_migrations

    migrations = plan_migrations(workspace, plan)
    rehearsed = {r.index: r for r in rehearsal.steps} if rehearsal else {}
    found: list[StepAnalysis] = []
    for number, step in enumerate(plan.steps, start=1):
        run = analyzer(step.type)
        if run is None:
            continue
        item = StepInput(
            index=number,
            step=step,
            migration=migrations.get(number - 1),
            migrations=workspace.catalogue.of(step.component),
            dialect=sql_dialect(workspace, env, step.component, environ)
            if step.type == "sql"
            else None,
            rehearsed=rehearsed.get(number),
        )
        result = run(item)
        if result is not None and _says_something(result):
            found.append(result)
    return Analysis(summary=summarize(found), steps=found)


def sql_dialect(
    workspace: Workspace, env: str, component: str, environ: Mapping[str, str] | None
) -> str | None:
    """sqlite or postgresql, from the target's URL (None when it cannot be resolved here)."""
    from releasectl.errors import ReleasectlError

    raw = workspace.environment(env).targets.get(component, {}).get("url")
    if not isinstance(raw, str):
        return None
    try:
        url = workspace.resolve(env, ("targets", component, "url"), raw, environ)
    except ReleasectlError:
        return None
    if url.startswith("sqlite:"):
        return "sqlite"
    if url.split(":", 1)[0].lower() in ("postgresql", "postgres"):
        return "postgresql"
    return None


def _says_something(item: StepAnalysis) -> bool:
    redis = item.redis
    return bool(
        item.sql
        or item.data
        or item.kubernetes
        or item.notes
        or (item.cedar and (item.cedar.gained or item.cedar.lost))
        or (
            redis and (redis.deleted or redis.renamed or redis.ttl_shortened or redis.outside_scope)
        )
    )


def summarize(steps: list[StepAnalysis]) -> AnalysisSummary:
    counts: dict[str, int] = {}

    def add(key: str, n: int) -> None:
        counts[key] = counts.get(key, 0) + n

    for item in steps:
        for finding in item.sql:
            add(finding.severity, 1)
        add("rows_deleted", sum(d.rows for d in item.data if d.change != "column dropped"))
        if item.redis:
            add("keys_deleted", sum(k.count for k in item.redis.deleted))
            add("keys_renamed", sum(k.count for k in item.redis.renamed))
            add("ttl_shortened", sum(k.count for k in item.redis.ttl_shortened))
            add("outside_scope", len(item.redis.outside_scope))
        for change in item.kubernetes:
            add(f"objects_{change.change}", 1)
        if item.cedar:
            add("access_gained", len(item.cedar.gained))
            add("access_lost", len(item.cedar.lost))
    return AnalysisSummary.model_validate(counts)
