"""Text renderings of plans, status and the component graph (JSON comes straight from the
models; the Markdown pull-request comment is cli/markdown.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from releasectl.models.plan import Plan, Step
from releasectl.models.state import Status
from releasectl.planning.planner import has_changes

SYMBOL = {"up": "+", "down": "-", "deploy": "~"}
# as terraform plan: the symbols in colour on a terminal (cli.context.emit strips the styles
# when colour is off or stdout is not a terminal)
COLOUR = {"up": "green", "down": "red", "deploy": "yellow"}


def _v(value: int | str | None) -> str:
    return "-" if value is None else str(value)


def _release_line(plan: Plan) -> str:
    if plan.release.to is None:
        return f"release {_v(plan.release.from_)} (component plan)"
    return f"release {_v(plan.release.from_)} -> {plan.release.to}"


def summary(steps: Sequence[Step]) -> str:
    ups = sum(1 for s in steps if s.action == "up")
    downs = sum(1 for s in steps if s.action == "down")
    deploys = sum(1 for s in steps if s.action == "deploy")
    backups = sum(1 for s in steps if s.backup)
    return (
        f"{ups} up, {downs} down, {deploys} deploy"
        f" ({len(steps)} step{'s' if len(steps) != 1 else ''}, {backups} with backup)"
    )


def _move(step: Step) -> str:
    return f"{_v(step.from_)} -> {_v(step.to)}"


def _flags(step: Step) -> str:
    extras = [name for name, on in (("backup", step.backup), ("BREAKING", step.breaking)) if on]
    return f"[{', '.join(extras)}]" if extras else ""


def step_lines(steps: Sequence[Step]) -> list[str]:
    """One aligned line per step: symbol, number, component, action, move, migration, flags,
    description (as `terraform plan` gives one line per resource)."""
    widths = [
        max((len(f(s)) for s in steps), default=0)
        for f in (lambda s: s.component, _move, lambda s: s.migration or "", _flags)
    ]
    lines = []
    for index, step in enumerate(steps, start=1):
        cells = [
            step.component,
            f"{step.action:<6}",
            _move(step),
            step.migration or "",
            _flags(step),
        ]
        symbol = click.style(SYMBOL[step.action], fg=COLOUR[step.action], bold=True)
        text = f"  {symbol} {index:>3}. {cells[0]:<{widths[0]}}  {cells[1]}  "
        text += f"{cells[2]:<{widths[1]}}  {cells[3]:<{widths[2]}}  {cells[4]:<{widths[3]}}"
        if step.description:
            text += f"  {step.description}"
        lines.append(text.rstrip())
    return lines


def plan_text(plan: Plan) -> str:
    lines = [
        f"releasectl plan: environment {plan.env}, {_release_line(plan)}, "
        f"state serial {plan.state.serial}" + ("" if plan.state.lineage else " (no recorded state)")
    ]
    for warning in plan.warnings:
        lines.append(f"  ! {warning}")
    if not has_changes(plan):
        lines.append("")
        lines.append(
            f"No changes. Environment {plan.env} matches "
            + (f"release {plan.release.to}." if plan.release.to else "the request.")
        )
        return "\n".join(lines) + "\n"
    lines.append("")
    lines.extend(step_lines(plan.steps))
    if not plan.steps:
        lines.append(f"  (no steps: records release {plan.release.to})")
    lines.append("")
    lines.append(f"Plan: {summary(plan.steps)}. Digest {plan.digest[:16]}.")
    return "\n".join(lines) + "\n"


def status_text(status: Status) -> str:
    lines = [
        f"environment {status.env}: release {_v(status.release)}, serial {status.serial}"
        + (", DIRTY" if status.dirty else "")
    ]
    if status.journal is not None:
        j = status.journal
        lines.append(
            f"  ! interrupted step {j.index + 1} ({j.step.component} {j.step.action} "
            f"{_v(j.step.from_)} -> {_v(j.step.to)}) during {j.phase}, started "
            f"{j.started_at} by {j.actor}: run `releasectl recover`"
        )
    if status.lock:
        lines.append(
            f"  locked by {status.lock.get('holder')} since {status.lock.get('since')} "
            f"(lock id {status.lock.get('id')})"
        )
    for problem in status.history_problems:
        lines.append(f"  ! HISTORY DAMAGED: {problem}")
    width = max((len(n) for n in status.components), default=10)
    for name, comp in status.components.items():
        want = ""
        if comp.desired is not None and str(comp.desired) != str(comp.version):
            want = f"  (release wants {comp.desired})"
        drift = f"  DRIFT: {', '.join(comp.drift)}" if comp.drift else ""
        last = f"  {comp.applied[-1]}" if comp.applied else ""
        lines.append(
            f"  {name:<{width}}  {comp.type or '':<10}  {_v(comp.version):<8}{last}{want}{drift}"
        )
    return "\n".join(lines) + "\n"


def graph(components: Mapping[str, Any], order: Sequence[str], fmt: str) -> str:
    if fmt == "dot":
        lines = ["digraph releasectl {", "  rankdir=LR;", "  node [shape=box];"]
        for name in order:
            lines.append(f'  "{name}" [label="{name}\\n({components[name].type})"];')
        for name in order:
            for dep in components[name].needs:
                lines.append(f'  "{dep}" -> "{name}";')
        lines.append("}")
        return "\n".join(lines) + "\n"
    if fmt == "mermaid":
        lines = ["graph LR"]
        ids = {name: name.replace("-", "_") for name in order}
        for name in order:
            lines.append(f'  {ids[name]}["{name} ({components[name].type})"]')
        for name in order:
            for dep in components[name].needs:
                lines.append(f"  {ids[dep]} --> {ids[name]}")
        return "\n".join(lines) + "\n"
    lines = []
    for index, name in enumerate(order, start=1):
        needs = components[name].needs
        suffix = f"  needs {', '.join(needs)}" if needs else ""
        lines.append(f"{index:>3}. {name} ({components[name].type}){suffix}")
    return "\n".join(lines) + "\n"
