from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from releasectl.cli.complete import environments, releases
from releasectl.cli.context import emit, examples, format_option, options

if TYPE_CHECKING:
    from releasectl.cli.context import Options
    from releasectl.cli.markdown import PlanFacts
    from releasectl.errors import ReleasectlError


@dataclass(frozen=True, slots=True)
class _Outcome:
    env: str
    facts: PlanFacts | None = None
    error: ReleasectlError | None = None


@click.command(
    epilog=examples(
        "releasectl plan",
        "releasectl plan --env staging --release 1.2.0 --out plan.json",
        "releasectl plan --env staging --env prod --format markdown --out 'plan-{env}.json' "
        "> comment.md",
        "releasectl plan --format json | jq '.steps | length'",
        "releasectl plan --detailed-exitcode   # 0 no changes, 2 changes, 1 error",
    )
)
@click.option(
    "--env",
    "-e",
    "envs",
    multiple=True,
    shell_complete=environments,
    help="Environment (default: RELEASECTL_ENV, else local); repeat it to plan several "
    "(markdown: one comment with a section each; json: an array of plans).",
)
@click.option(
    "--release",
    "-r",
    "release",
    shell_complete=releases,
    help="Release to plan (default: the environment's pin, else the newest manifest).",
)
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(dir_okay=False),
    help="Save the plan as JSON for `releasectl apply PLAN` ({env} in the name: one file per "
    "environment, needed with several --env).",
)
@format_option("text", "json", "markdown")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when the plan has changes, 0 when it has none.",
)
@click.option("--allow-breaking", is_flag=True, help="Permit major bumps and breaking migrations.")
def plan(
    envs: tuple[str, ...],
    release: str | None,
    out: str | None,
    fmt: str | None,
    detailed_exitcode: bool,
    allow_breaking: bool,
) -> int:
    """Show the ordered steps from the environment's recorded state to a release.

    `--format markdown` is a pull-request comment: a hidden marker per environment, a summary
    that is never cut, the steps and the rollback, always under 65,536 characters. A plan that
    cannot be made still gives a comment with the error (and the error's exit code).
    """
    from releasectl.errors import ReleasectlError, bundle
    from releasectl.planning.planner import has_changes

    opts = options()
    fmt = opts.output_format(fmt, ("text", "json", "markdown"))
    names = list(dict.fromkeys(envs)) or [opts.env_name()]
    if out and len(names) > 1 and "{env}" not in out:
        raise click.UsageError("with several --env, --out needs {env} in its name: plan-{env}.json")
    outcomes: list[_Outcome] = []
    for name in names:
        target = out.replace("{env}", name) if out else None
        try:
            facts = _plan_one(opts, name, release, allow_breaking, target)
        except ReleasectlError as exc:
            if fmt == "json":
                raise  # the error document alone: stdout stays one JSON value
            outcomes.append(_Outcome(name, error=exc))
        else:
            outcomes.append(_Outcome(name, facts=facts))
    plans = [o.facts.plan for o in outcomes if o.facts is not None]
    if fmt == "json":
        texts = [p.model_dump_json(by_alias=True, indent=2) for p in plans]
        emit(texts[0] if len(texts) == 1 else "[\n" + ",\n".join(texts) + "\n]")
    elif fmt == "markdown":
        emit(_markdown(outcomes))
    else:
        _text(outcomes)
    errors = [o.error for o in outcomes if o.error is not None]
    if errors:
        raise bundle(errors)
    return 2 if detailed_exitcode and any(has_changes(p) for p in plans) else 0


def _plan_one(
    opts: Options, env_name: str, release: str | None, allow_breaking: bool, out: str | None
) -> PlanFacts:
    from releasectl.cli.markdown import PlanFacts
    from releasectl.engine.promotion import promotion_problem
    from releasectl.planning.build import release_plan
    from releasectl.planning.drift import find_drift
    from releasectl.util.fsutil import atomic_write

    workspace = opts.load_workspace()
    state = opts.backend(env_name).read()
    the_plan = release_plan(
        workspace, env_name, state, release=release, allow_breaking=allow_breaking
    )
    problem = promotion_problem(workspace, env_name, the_plan)
    if problem:
        the_plan = the_plan.model_copy(update={"warnings": [*the_plan.warnings, problem]})
    if out:
        # pydantic-core writes the JSON: 100,000 steps in 0.3 s where dumping them to dicts
        # and through json.dump takes seconds (docs/performance.md)
        atomic_write(Path(out), the_plan.model_dump_json(by_alias=True, indent=2) + "\n")
    drift = [d.describe(workspace) for d in find_drift(workspace, state)]
    return PlanFacts(the_plan, drift=drift, promotion=problem, full_plan=out)


def _markdown(outcomes: list[_Outcome]) -> str:
    from releasectl.cli.errordoc import json_error
    from releasectl.cli.markdown import Part, error_part, plan_part, render
    from releasectl.secrets import redact

    parts: list[Part] = []
    for outcome in outcomes:
        if outcome.facts is not None:
            parts.append(plan_part(outcome.facts))
        elif outcome.error is not None:
            doc = json_error(outcome.error)["error"]
            message = redact(str(outcome.error)) if doc.get("errors") else doc["message"]
            parts.append(
                error_part(
                    outcome.env,
                    message,
                    doc["exit_code"],
                    file=doc["file"],
                    line=doc["line"],
                    field=doc["field"],
                )
            )
    return render(parts)


def _text(outcomes: list[_Outcome]) -> None:
    from releasectl.cli import render

    shown = 0
    for outcome in outcomes:
        if outcome.facts is None:
            continue
        if shown:
            emit("")
        shown += 1
        emit(render.plan_text(outcome.facts.plan))
        if outcome.facts.full_plan:
            path = outcome.facts.full_plan
            emit(f"Saved the plan to {path}; apply it with `releasectl apply {path}`.")
