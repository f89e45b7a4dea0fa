"""The "What this changes" section of the pull-request comment: destructive statements, data
deleted, operations outside a migration's scope, access gained and lost, objects pruned, and
the rehearsal's verdict, within a size limit.

`changes_section(analysis, rehearsal, limit)` returns the Markdown; it never exceeds `limit`
characters. The headline (one line per kind of change, and the verdict) always stays; the
item lists under it are cut from the end, most important kinds kept longest, each cut list
ending with how many items were left out. `change_groups` gives the same content as
(title, lines) groups for a renderer that does its own cutting.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from releasectl.models.analysis import AccessChange, Analysis, StepAnalysis
from releasectl.models.rehearsal import Rehearsal, StepRehearsal

TITLE = "What this changes"
ICON = {"destructive": ":boom:", "locking": ":lock:", "breaking": ":warning:"}
FULL = "the full list is in `releasectl plan --format json` (`analysis`, `rehearsal`)"


@dataclass
class Group:
    title: str
    lines: list[str]
    priority: int  # lower: kept longer when the section must shrink


def text(value: object) -> str:
    out = html.escape(str(value), quote=False).replace("|", "\\|")
    return re.sub(r"\s*[\r\n]+\s*", " ", out).strip()


def code(value: object) -> str:
    raw = re.sub(r"[\r\n]+", " ", str(value)).replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", raw)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if raw.startswith("`") or raw.endswith("`") else ""
    return f"{fence}{pad}{raw}{pad}{fence}"


def _step(item: StepAnalysis | StepRehearsal) -> str:
    name = f"step {item.index} {code(item.component)}"
    return f"{name} ({code(item.migration)})" if item.migration else name


# --- the groups -----------------------------------------------------------------------------


def change_groups(analysis: Analysis | None, rehearsal: Rehearsal | None) -> list[Group]:
    """Every kind of change the plan makes, as groups of Markdown list lines."""
    groups: list[Group] = []
    if analysis is not None:
        groups += _sql(analysis)
        groups += _data(analysis)
        groups += _scope(analysis)
        groups += _access(analysis)
        groups += _objects(analysis)
    if rehearsal is not None:
        groups.append(_rehearsal(rehearsal))
    return [g for g in groups if g.lines]


def _sql(analysis: Analysis) -> list[Group]:
    lines = [
        f"- {ICON[f.severity]} {code(f'{f.file}:{f.line}')} **{f.rule}**: {text(f.message)}"
        for step in analysis.steps
        for f in sorted(
            step.sql, key=lambda f: ("destructive", "breaking", "locking").index(f.severity)
        )
    ]
    count = {s: sum(1 for st in analysis.steps for f in st.sql if f.severity == s) for s in ICON}
    title = ", ".join(f"{n} {s}" for s, n in count.items() if n)
    return [Group(f"SQL statements ({title})", lines, 10)]


def _data(analysis: Analysis) -> list[Group]:
    lines: list[str] = []
    for step in analysis.steps:
        for change in step.data:
            what = (
                f"column {code(f'{change.table}.{change.column}')} dropped: {change.rows:,} "
                "row(s) held a value"
                if change.change == "column dropped"
                else f"{change.change} in {code(change.table)}: {change.rows:,} row(s)"
                if change.change == "rows deleted"
                else f"table {code(change.table)} dropped with {change.rows:,} row(s)"
            )
            lines.append(f"- :wastebasket: {_step(step)}: {what}")
        redis = step.redis
        if redis is None:
            continue
        for label, counts in (
            ("deleted", redis.deleted),
            ("renamed", redis.renamed),
            ("TTL shortened", redis.ttl_shortened),
        ):
            for c in counts:
                lines.append(
                    f"- :wastebasket: {_step(step)}: {c.count:,} key(s) {label} matching "
                    f"{code(c.pattern)}"
                )
        if not redis.observed:
            for op in redis.operations:
                where = f" ({code(f'{op.file}:{op.line}')})" if op.file else ""
                lines.append(
                    f"- :wastebasket: {_step(step)}: {code(op.command)} {code(op.key)}{where}"
                )
    return [Group("Data deleted, renamed or expiring", lines, 20)]


def _scope(analysis: Analysis) -> list[Group]:
    lines: list[str] = []
    for step in analysis.steps:
        if step.redis is None:
            continue
        scope = ", ".join(code(p) for p in step.redis.scope) or "none"
        for op in step.redis.outside_scope:
            where = f" at {code(f'{op.file}:{op.line}')}" if op.file else " (seen in the rehearsal)"
            real = (
                f"; {op.real_keys:,} real key(s) match it, not in the backup"
                if op.real_keys
                else ""
            )
            kind = "writes" if op.write else "reads"
            lines.append(
                f"- :rotating_light: {_step(step)} {kind} {code(op.key)} ({code(op.command)}) "
                f"outside its scope {scope}{where}{real}"
            )
    return [Group("Operations outside the declared scope", lines, 15)]


def _access(analysis: Analysis) -> list[Group]:
    gained: list[str] = []
    lost: list[str] = []
    for step in analysis.steps:
        if step.cedar is None:
            continue
        for into, changes, verb in (
            (gained, step.cedar.gained, "gains"),
            (lost, step.cedar.lost, "loses"),
        ):
            for principal, action, resources in _grouped(changes):
                on = ", ".join(code(r) for r in resources)
                into.append(f"- {code(principal)} {verb} {code(action)} on {on} ({_step(step)})")
    return [
        Group(":unlock: Access gained", gained, 12),
        Group(":lock: Access lost", lost, 13),
    ]


def _grouped(changes: list[AccessChange]) -> list[tuple[str, str, list[str]]]:
    by: dict[tuple[str, str], list[str]] = {}
    for c in changes:
        by.setdefault((c.principal, c.action), []).append(c.resource)
    return [(p, a, r) for (p, a), r in by.items()]


def _objects(analysis: Analysis) -> list[Group]:
    lines: list[str] = []
    for step in analysis.steps:
        for change in step.kubernetes:
            name = code(f"{change.kind}/{change.name}")
            if change.change == "changed":
                fields = ", ".join(
                    f"{code(f.path)}: {code(f.old) if f.old is not None else 'absent'} → "
                    f"{code(f.new) if f.new is not None else 'removed'}"
                    for f in change.fields[:5]
                )
                more = f" and {len(change.fields) - 5} more" if len(change.fields) > 5 else ""
                lines.append(f"- :pencil2: {name} changed ({_step(step)}): {fields}{more}")
            elif change.change == "pruned":
                lines.append(f"- :wastebasket: {name} pruned ({_step(step)})")
            else:
                lines.append(f"- :new: {name} created ({_step(step)})")
    return [Group("Kubernetes objects", lines, 30)]


VERDICT = {
    "ok": ":white_check_mark: every step ran, verified and rolled back exactly on a copy",
    "failed": ":x: a step, its verify or its rollback failed or differed on a copy",
    "incomplete": ":large_orange_diamond: the rehearsed steps rolled back exactly; some steps "
    "were not rehearsed",
    "nothing": ":grey_question: no step could be rehearsed",
}
ROLLBACK = {
    "exact": "exact",
    "differs": "**differs**",
    "failed": "**failed**",
    "not-run": "not run",
    "not-compared": "ran, not compared",
}


def _rehearsal(rehearsal: Rehearsal) -> Group:
    lines = []
    for s in rehearsal.steps:
        if s.status == "not-rehearsed":
            lines.append(f"- {_step(s)} {s.action}: not rehearsed: {text(s.reason or '')}")
            continue
        state = ":white_check_mark:" if s.status == "ok" else ":x:"
        seconds = f"{s.seconds:.2f} s" if s.seconds is not None else "-"
        line = (
            f"- {state} {_step(s)} {s.action} {s.from_} → {s.to}: run {s.run or '-'}, verify "
            f"{s.verify or '-'}, {seconds}, rollback {ROLLBACK.get(s.rollback or 'not-run', '-')}"
        )
        if s.error:
            line += f": {text(s.error[:300])}"
        if s.rollback_error:
            line += f"; rollback: {text(s.rollback_error[:300])}"
        if s.differences:
            shown = "; ".join(f"{text(d.what)} {text(d.detail)}" for d in s.differences[:3])
            more = f" and {len(s.differences) - 3} more" if len(s.differences) > 3 else ""
            line += f" ({shown}{more})"
        lines.append(line)
    return Group(f"Rehearsal ({rehearsal.seconds:.1f} s on copies)", lines, 5)


# --- the section ----------------------------------------------------------------------------


def _headline(analysis: Analysis | None, rehearsal: Rehearsal | None) -> list[str]:
    lines: list[str] = []
    if analysis is not None:
        s = analysis.summary
        facts = [
            (s.destructive, ":boom:", "destructive SQL statement(s)"),
            (s.breaking, ":warning:", "SQL statement(s) that break on data or clients"),
            (s.locking, ":lock:", "locking SQL statement(s)"),
            (s.rows_deleted, ":wastebasket:", "row(s) deleted in the rehearsal"),
            (s.keys_deleted, ":wastebasket:", "Redis key(s) deleted"),
            (s.keys_renamed, ":arrows_counterclockwise:", "Redis key(s) renamed"),
            (s.ttl_shortened, ":hourglass:", "Redis TTL(s) shortened"),
            (s.outside_scope, ":rotating_light:", "operation(s) outside a declared scope"),
            (s.access_gained, ":unlock:", "access right(s) gained"),
            (s.access_lost, ":lock:", "access right(s) lost"),
            (s.objects_pruned, ":wastebasket:", "Kubernetes object(s) pruned"),
            (s.objects_changed, ":pencil2:", "Kubernetes object(s) changed"),
            (s.objects_created, ":new:", "Kubernetes object(s) created"),
        ]
        shown = [f"{icon} **{n:,}** {label}" for n, icon, label in facts if n]
        lines.append("> " + (" · ".join(shown) if shown else "No destructive change found."))
    if rehearsal is not None:
        lines.append(">")
        lines.append(f"> **Rehearsal**: {VERDICT[rehearsal.verdict]}.")
    return lines


def section_parts(
    analysis: Analysis | None, rehearsal: Rehearsal | None, limit: int = 20_000
) -> tuple[str, list[str], list[str]]:
    """(title, headline lines, item lines) of the section, the items already cut so that
    headline and items together stay under `limit` characters; a renderer that cuts sections
    itself (cli/markdown.py's `Section`) keeps the headline whole and may cut items further."""
    head = [*_headline(analysis, rehearsal), ""]
    groups = change_groups(analysis, rehearsal)
    shown = {id(g): len(g.lines) for g in groups}
    budget = limit - _size(head) - len(f"#### {TITLE}") - 2
    while True:
        items = _items(groups, shown)
        if _size(items) <= budget:
            return TITLE, head, items
        # shrink the least important group that still shows something
        candidates = [g for g in groups if shown[id(g)] > 0]
        if not candidates:
            return TITLE, head, []
        worst = max(candidates, key=lambda g: (g.priority, shown[id(g)]))
        shown[id(worst)] = shown[id(worst)] // 2 if shown[id(worst)] > 1 else 0


def changes_section(
    analysis: Analysis | None, rehearsal: Rehearsal | None, limit: int = 20_000
) -> str:
    """The section as Markdown on its own, at most `limit` characters."""
    if analysis is None and rehearsal is None:
        return ""
    title, head, items = section_parts(analysis, rehearsal, limit)
    body = "\n".join([f"#### {title}", "", *head, *items]) + "\n"
    if len(body) > limit:  # a headline alone larger than the limit: never in practice
        note = "\n_(cut to fit the comment)_\n"
        return body[: max(0, limit - len(note))] + note
    return body


def _size(lines: list[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def _items(groups: list[Group], shown: dict[int, int]) -> list[str]:
    out: list[str] = []
    for group in sorted(groups, key=lambda g: g.priority):
        keep = shown[id(group)]
        out.append(f"**{group.title}**")
        out.extend(group.lines[:keep])
        left = len(group.lines) - keep
        if left:
            out.append(f"- _… and {left} more: {FULL}_")
        out.append("")
    return out[:-1] if out and out[-1] == "" else out
