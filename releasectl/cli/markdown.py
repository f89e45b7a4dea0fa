"""The pull-request comment of `plan --format markdown`, always under GitHub's size limit.

A comment is one part per environment. Each part starts with its hidden marker
(`<!-- releasectl:plan env=E -->`, which a CI step looks for to update its earlier comment),
then a summary that is never cut: the title, a table of the steps by kind, banners for what a
reviewer must not miss (down steps, steps without a backup, breaking changes, promotion
blocks, drift) and the plan digest. Below the summary come `Section`s, each a collapsible
`<details>` list of lines, in the order given.

When the whole comment would pass `LIMIT` characters, sections are cut, never summaries:
sections are served by `priority` (lower first), sections of one priority share what is left
evenly, and each cut section ends with a line saying how many of its items were left out and
where the full plan is. A new section (for example what a rehearsal found) is one more
`Section` in a part's list, placed where it should appear and given the priority it deserves;
the cutting needs no change.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from releasectl.models.plan import Plan, Step
from releasectl.planning.planner import has_changes

LIMIT = 65_536  # GitHub's maximum comment body, in characters
MARKER = "<!-- releasectl:plan env={env} -->"
BANNER_ITEMS = 5  # items a banner lists before "and N more": the summary stays small
ERROR_CHARS = 6_000  # an error's text shown in a comment (a summary must stay small)

PRIORITY_STEPS = 10
PRIORITY_ROLLBACK = 20


@dataclass(frozen=True, slots=True)
class Section:
    """A collapsible part of an environment's comment, below its summary.

    `head` lines (a table header) are kept whole; `items` (one line each) are cut from the end
    when the comment must shrink, and a note says how many `unit` were left out."""

    title: str
    items: tuple[str, ...]
    head: tuple[str, ...] = ()
    unit: str = "steps"
    priority: int = PRIORITY_STEPS
    open: bool = False


@dataclass(frozen=True, slots=True)
class Part:
    """One environment's part of a comment."""

    env: str
    summary: tuple[str, ...]
    sections: tuple[Section, ...] = ()
    footer: tuple[str, ...] = ()
    full_plan: str | None = None  # where the uncut plan is (the --out file)


@dataclass(frozen=True, slots=True)
class PlanFacts:
    """What a plan's part shows beyond the plan itself, gathered by the command."""

    plan: Plan
    drift: Sequence[str] = ()
    promotion: str | None = None
    full_plan: str | None = None
    sections_before_steps: Sequence[Section] = field(default_factory=tuple)


# --- escaping -------------------------------------------------------------------------------


def text(value: object) -> str:
    """Free text for a table cell or a line: no HTML, no table breaks, one line."""
    out = html.escape(str(value), quote=False).replace("|", "\\|")
    return re.sub(r"\s*[\r\n]+\s*", " ", out).strip()


def code(value: object) -> str:
    """An inline code span that holds any text (a fence longer than its backtick runs)."""
    raw = re.sub(r"[\r\n]+", " ", str(value)).replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", raw)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if raw.startswith("`") or raw.endswith("`") else ""
    return f"{fence}{pad}{raw}{pad}{fence}"


def fenced(body: str, lang: str = "text") -> list[str]:
    longest = max((len(m) for m in re.findall(r"`{3,}", body)), default=2)
    fence = "`" * (longest + 1)
    return [f"{fence}{lang}", *body.splitlines(), fence]


# --- parts of a plan ------------------------------------------------------------------------


def _v(value: int | str | None) -> str:
    return "-" if value is None else str(value)


def _move(step: Step) -> str:
    return f"{_v(step.from_)} → {_v(step.to)}"


def _step_name(step: Step) -> str:
    what = f"{code(step.component)} {step.action} {_move(step)}"
    return f"{what} ({code(step.migration)})" if step.migration else what


def _banner(icon: str, title: str, items: Sequence[str], tail: str = "") -> list[str]:
    shown = list(items[:BANNER_ITEMS])
    if len(items) > BANNER_ITEMS:
        shown.append(f"and {len(items) - BANNER_ITEMS} more")
    body = f": {'; '.join(shown)}" if shown else ""
    return [f"> {icon} **{title}**{body}{tail}", ""]


def _release(plan: Plan) -> str:
    if plan.release.to is None:
        return f"{_v(plan.release.from_)} (component plan)"
    return f"{_v(plan.release.from_)} → **{plan.release.to}**"


def plan_part(facts: PlanFacts) -> Part:
    plan = facts.plan
    steps = plan.steps
    marker = MARKER.format(env=plan.env)
    title = f"### releasectl plan: {code(plan.env)}, release {_release(plan)}"
    summary = [marker, title, ""]
    if not has_changes(plan):
        summary += [f"**No changes.** {code(plan.env)} matches the desired state.", ""]
    else:
        ups = sum(1 for s in steps if s.action == "up")
        downs = sum(1 for s in steps if s.action == "down")
        deploys = sum(1 for s in steps if s.action == "deploy")
        migrations = ups + downs
        backed = sum(1 for s in steps if s.backup)
        if not steps:
            summary += [f"No steps: the release {plan.release.to} is recorded.", ""]
        summary += [
            "| environment | release | steps | up | down | deploy | with backup |",
            "|---|---|---:|---:|---:|---:|---:|",
            f"| {code(plan.env)} | {_release(plan)} | {len(steps)} | {ups} | {downs} | "
            f"{deploys} | {backed} of {migrations} |",
            "",
        ]
    summary += _banners(facts)
    sections: list[Section] = [*facts.sections_before_steps]
    if steps:
        sections.append(
            Section(
                title=f"Steps ({len(steps)})",
                head=(
                    "| # | component | action | from → to | migration | backup | description |",
                    "|---:|---|---|---|---|:---:|---|",
                ),
                items=tuple(_step_row(i, s) for i, s in enumerate(steps, start=1)),
                priority=PRIORITY_STEPS,
            )
        )
    if plan.rollback:
        sections.append(
            Section(
                title=f"Rollback ({len(plan.rollback)} steps, if this apply must be undone)",
                items=tuple(f"{i}. {_step_name(s)}" for i, s in enumerate(plan.rollback, start=1)),
                priority=PRIORITY_ROLLBACK,
            )
        )
    serial = f"state serial {plan.state.serial}"
    if plan.state.lineage:
        serial += f", lineage {code(plan.state.lineage)}"
    else:
        serial += " (no recorded state)"
    footer = [f"Plan digest {code(plan.digest)}, {serial}."]
    if facts.full_plan:
        footer.append(f"Saved as {code(facts.full_plan)}; `releasectl apply` it after the merge.")
    return Part(plan.env, tuple(summary), tuple(sections), tuple(footer), facts.full_plan)


def _step_row(index: int, step: Step) -> str:
    action = f"**{step.action}** (breaking)" if step.breaking else step.action
    migration = code(step.migration) if step.migration else ""
    backup = "yes" if step.backup else ("**no**" if step.action != "deploy" else "")
    return (
        f"| {index} | {code(step.component)} | {action} | {_move(step)} | {migration} | "
        f"{backup} | {text(step.description or '')} |"
    )


def _banners(facts: PlanFacts) -> list[str]:
    plan = facts.plan
    lines: list[str] = []
    if facts.promotion:
        lines += _banner(":no_entry:", "Promotion blocks this release", [text(facts.promotion)])
    if facts.drift:
        lines += _banner(
            ":warning:",
            f"Drift: {len(facts.drift)} applied migration(s) changed since they ran "
            "(apply refuses, exit 3)",
            [text(d) for d in facts.drift],
        )
    others = [w for w in plan.warnings if w not in facts.drift and w != facts.promotion]
    if others:
        lines += _banner(":warning:", "Warnings", [text(w) for w in others])
    downs = [s for s in plan.steps if s.action == "down"]
    if downs:
        lines += _banner(
            ":rotating_light:",
            f"{len(downs)} down step(s): data these migrations added is removed",
            [_step_name(s) for s in downs],
        )
    unbacked = [s for s in plan.steps if s.action != "deploy" and not s.backup]
    if unbacked:
        lines += _banner(
            ":floppy_disk:",
            f"{len(unbacked)} step(s) without a backup: a failure is undone by the migration's "
            "down part only",
            [_step_name(s) for s in unbacked],
        )
    breaking = [s for s in plan.steps if s.breaking]
    if breaking:
        lines += _banner(
            ":boom:",
            f"{len(breaking)} breaking change(s) (planned with --allow-breaking)",
            [_step_name(s) for s in breaking],
        )
    return lines


def error_part(
    env: str,
    message: str,
    exit_code: int,
    *,
    file: str | None = None,
    line: int | None = None,
    field: str | None = None,
) -> Part:
    """The part of an environment whose plan could not be made: the PR shows why."""
    shown = message
    if len(shown) > ERROR_CHARS:
        shown = shown[:ERROR_CHARS] + f"\n... ({len(message) - ERROR_CHARS} more characters)"
    summary = [
        MARKER.format(env=env),
        f"### :x: releasectl plan: {code(env)}, no plan could be made",
        "",
        f"The plan failed (exit {exit_code}); nothing can be applied until this is fixed:",
        "",
        *fenced(shown),
        "",
    ]
    where = [f"file {code(file)}"] if file else []
    if line is not None:
        where.append(f"line {line}")
    if field:
        where.append(f"field {code(field)}")
    if where:
        summary += [f"At {', '.join(where)}.", ""]
    return Part(env, tuple(summary))


# --- assembling within the limit ------------------------------------------------------------


def _size(lines: Sequence[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def _cut_note(left_out: int, total: int, unit: str, full_plan: str | None, env: str) -> str:
    where = (
        f"the full plan is in {code(full_plan)} (the `--out` file)"
        if full_plan
        else f"run `releasectl plan --env {env}` for the full plan, or save it with `--out`"
    )
    return (
        f"_{left_out} of {total} {unit} left out to keep this comment under GitHub's "
        f"{LIMIT:,}-character limit; {where}._"
    )


def _frame(section: Section) -> tuple[list[str], list[str]]:
    opening = "<details open>" if section.open else "<details>"
    return [f"{opening}<summary>{text(section.title)}</summary>", "", *section.head], [
        "",
        "</details>",
        "",
    ]


def _fixed_size(part: Part) -> int:
    size = _size(part.summary) + _size(part.footer)
    for section in part.sections:
        top, bottom = _frame(section)
        n = len(section.items)
        size += _size(top) + _size(bottom)
        size += _size(["", _cut_note(n, n, section.unit, part.full_plan, part.env)])
    return size


def _allocate(needs: list[int], budget: int) -> list[int]:
    """Share `budget` among `needs`: each gets what it needs or an even share of the rest."""
    given = [0] * len(needs)
    order = sorted(range(len(needs)), key=lambda i: needs[i])
    left = budget
    for rank, i in enumerate(order):
        share = left // (len(order) - rank)
        given[i] = min(needs[i], share)
        left -= given[i]
    return given


def render(parts: Sequence[Part], limit: int = LIMIT) -> str:
    """The comment: every part's summary whole, sections cut to stay under `limit`."""
    slots = [(p, s) for p in parts for s in p.sections]
    budget = limit - 1 - sum(_fixed_size(p) for p in parts) - _size(["", "---", ""]) * len(parts)
    allowed: dict[int, int] = {}
    for priority in sorted({s.priority for _, s in slots}):
        members = [i for i, (_, s) in enumerate(slots) if s.priority == priority]
        needs = [_size(slots[i][1].items) for i in members]
        for i, got in zip(members, _allocate(needs, max(budget, 0)), strict=True):
            allowed[i] = got
            budget -= got
    out: list[str] = []
    slot = 0
    for number, part in enumerate(parts):
        if number:
            out += ["", "---", ""]
        out += part.summary
        for section in part.sections:
            top, bottom = _frame(section)
            kept: list[str] = []
            room = allowed.get(slot, 0)
            slot += 1
            for item in section.items:
                if room < len(item) + 1:
                    break
                kept.append(item)
                room -= len(item) + 1
            out += top + kept
            left_out = len(section.items) - len(kept)
            if left_out:
                note = _cut_note(
                    left_out, len(section.items), section.unit, part.full_plan, part.env
                )
                out += ["", note]
            out += bottom
        out += part.footer
    body = "\n".join(out).rstrip("\n") + "\n"
    if len(body) >= limit:  # only summaries so large that nothing can save them
        tail = "\n\n_(comment cut at GitHub's size limit)_\n"
        body = body[: limit - len(tail) - 1] + tail
    return body
