"""Shared by apply, migrate and rollback: show the plan, confirm, run it, report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from releasectl.cli import render
from releasectl.cli.context import Options, confirm, emit, emit_json
from releasectl.cli.observe import observed
from releasectl.cli.progress import CliReporter
from releasectl.engine.apply import ApplyResult, Engine
from releasectl.engine.preflight import refuse_drift
from releasectl.engine.session import Session
from releasectl.errors import InputError, Location
from releasectl.models.plan import Plan
from releasectl.observe.publish import Destinations
from releasectl.planning.planner import has_changes


def load_plan(path: str) -> Plan:
    from pydantic import ValidationError

    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the plan: {exc.strerror}", location=Location(path)) from None
    try:
        return Plan.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InputError(
            f"not a releasectl plan: {first['msg']}", location=Location(path, None, field or None)
        ) from None


def run_plan(
    opts: Options,
    plan: Plan,
    *,
    yes: bool,
    fmt: str,
    lock_timeout: float | None,
    verb: str = "apply",
    prechecked: bool = True,
    atomic: bool = False,
    publish: Destinations | None = None,
) -> tuple[int, ApplyResult | None]:
    workspace = opts.load_workspace()
    if fmt == "text":
        emit(render.plan_text(plan))
    if not has_changes(plan):
        # nothing to run is no reason to pass over an edited applied migration (exit 3)
        refuse_drift(workspace, opts.backend(plan.env).read())
        with observed(workspace, plan.env, verb, publish):
            pass  # nothing to run; the metrics are still refreshed
        if fmt == "json":
            emit_json(result_json(plan, None))
        return 0, None
    confirm(
        f"{verb.capitalize()} {len(plan.steps)} step(s) to environment {plan.env!r}?",
        yes=yes,
        verb=verb,
        hint="pass --yes, or save the plan (`releasectl plan --out plan.json`) and apply "
        "that file (`releasectl apply plan.json`)"
        if verb == "apply"
        else "pass --yes",
    )
    reporter = CliReporter(verbosity=opts.verbosity, log_format=opts.log_format)
    with observed(workspace, plan.env, verb, publish) as obs:
        session = Session(workspace, plan.env, reporter=reporter, events=obs.events)
        obs.backend = session.state_backend
        result = Engine(session, steps=reporter).apply(
            plan, lock_timeout=lock_timeout, prechecked=prechecked, atomic=atomic
        )
    if fmt == "json":
        emit_json(result_json(plan, result))
    elif result.state is not None:
        release = f", release {result.state.release}" if result.state.release else ""
        emit(
            f"{verb.capitalize()} complete: {len(result.outcomes)} step(s) on {plan.env}"
            f"{release} (state serial {result.state.serial})."
        )
    return 0, result


def result_json(plan: Plan, result: ApplyResult | None) -> dict[str, Any]:
    steps = []
    for outcome in result.outcomes if result else []:
        data = outcome.step.model_dump(mode="json", by_alias=True)
        data.update(
            result=outcome.result,
            duration=round(outcome.duration, 3),
            backup_id=outcome.backup,
            error=outcome.error,
        )
        steps.append(data)
    state = result.state if result else None
    return {
        "env": plan.env,
        "plan": plan.digest,
        "release": plan.release.model_dump(by_alias=True),
        "changed": bool(result and result.changed),
        "steps": steps,
        "state": {"lineage": state.lineage, "serial": state.serial} if state else None,
    }


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2)
