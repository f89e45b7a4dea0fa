"""The analysis and the rehearsal in `plan`'s text output: the same groups as the Markdown
section, as plain indented lines."""

from __future__ import annotations

import re

from releasectl.analysis.markdown import VERDICT, change_groups
from releasectl.models.analysis import Analysis
from releasectl.models.rehearsal import Rehearsal

_EMOJI = re.compile(r":[a-z_0-9]+:\s*")
_MARKUP = re.compile(r"\*\*|(?<!\\)`+|\\(?=[|`])")


def plain(line: str) -> str:
    return (
        _MARKUP.sub("", _EMOJI.sub("", line))
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )


def changes_text(analysis: Analysis | None, rehearsal: Rehearsal | None) -> str:
    if analysis is None and rehearsal is None:
        return ""
    lines = ["What this changes:"]
    groups = change_groups(analysis, rehearsal)
    if analysis is not None and not any(g.priority != 5 for g in groups):
        lines.append("  no destructive change found")
    for group in sorted(groups, key=lambda g: g.priority):
        lines.append(f"  {plain(group.title)}:")
        lines.extend(f"    {plain(line).removeprefix('- ')}" for line in group.lines)
    if rehearsal is not None:
        lines.append(f"  Rehearsal verdict: {plain(VERDICT[rehearsal.verdict])}.")
    return "\n".join(lines) + "\n"
