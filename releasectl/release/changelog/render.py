"""Markdown (Keep a Changelog) and JSON, straight from the report's tuples.

The JSON is written with the C string encoder, one commit per line, and each commit's line is
encoded once even though it appears twice (in `sections` and in its release): at 50,000
commits this is the difference between milliseconds and a second, and no pydantic model is
built. `as_data` gives the same document as plain data for the `Changelog` model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date as Date

from releasectl.release.changelog.commits import Row
from releasectl.release.changelog.links import Forge
from releasectl.release.changelog.manifests import Change, Version
from releasectl.release.changelog.report import Release, Report, Section
from releasectl.release.changelog.settings import DEFAULT, Settings

# --- Markdown -----------------------------------------------------------------------------


def markdown(releases: Sequence[Release], forge: Forge | None, settings: Settings = DEFAULT) -> str:
    """One `## ` section per release, newest first, separated by a blank line."""
    return "\n".join(release_markdown(r, forge, settings) for r in releases)


def heading(release: Release, forge: Forge | None, date: str | Date | None = None) -> str:
    label = release.version or "Unreleased"
    url = release.compare_url(forge)
    text = f"## [{label}]({url})" if url else f"## [{label}]"
    when = date if date is not None else release.date
    if release.version is not None and when:
        text += f" - {when.isoformat() if isinstance(when, Date) else when}"
    return text


def release_markdown(
    release: Release,
    forge: Forge | None,
    settings: Settings = DEFAULT,
    date: str | Date | None = None,
) -> str:
    """``## [1.1.0](compare) - 2026-11-02``, a ``###`` part per non-empty group (breaking
    changes with their footer text), then the component changes."""
    lines = [heading(release, forge, date), ""]
    typed = settings.slot_of
    refs = forge.link_references if forge is not None else None
    for title, rows in release.sections:
        lines.append(f"### {title}")
        lines.append("")
        for sha, type_, scope, text, breaking, note in rows:
            subject = refs(text) if refs is not None else text
            short = f"`{sha[:7]}`"
            link = f"([{short}]({forge.commit(sha)}))" if forge is not None else f"({short})"
            if type_ is not None and not breaking and type_ not in typed:
                # a type without a section of its own (`release: v8.2.2`) keeps its type
                lead = f"{type_}({scope}): " if scope else f"{type_}: "
            else:
                lead = f"**{scope}:** " if scope else ""
            lines.append(f"- {lead}{subject} {link}")
            if note:
                lines.append(f"  - {refs(note) if refs is not None else note}")
        lines.append("")
    if release.components:
        lines.extend(("### Components", ""))
        lines.extend(_component(name, old, new) for name, old, new in release.components)
        lines.append("")
    if release.empty:
        lines.extend(("No changes.", ""))
    return "\n".join(lines[:-1]) + "\n"


def _component(name: str, old: Version, new: Version) -> str:
    if old is None:
        return f"- {name}: added at {new}"
    if new is None:
        return f"- {name}: removed (was {old})"
    return f"- {name}: {old} -> {new}"


# --- JSON ---------------------------------------------------------------------------------

_enc = json.encoder.encode_basestring_ascii  # the C encoder json.dumps uses


def _s(value: str | None) -> str:
    return "null" if value is None else _enc(value)


def _scalar(value: Version) -> str:
    return json.dumps(value)


def _commit(row: Row) -> str:
    sha, t, s, subj, b, note = row
    return (
        f'{{"sha": "{sha}", "type": {_s(t)}, "scope": {_s(s)}, "subject": {_enc(subj)}, '
        f'"breaking": {"true" if b else "false"}, "breaking_description": {_s(note)}}}'
    )


def _sections(sections: Sequence[Section], pad: str, lines: dict[str, str]) -> str:
    if not sections:
        return "[]"
    parts = []
    inner = ",\n" + pad + "      "
    for title, rows in sections:
        commits = inner.join([lines[row[0]] for row in rows])
        parts.append(
            f'{pad}  {{\n{pad}    "title": {_enc(title)},\n{pad}    "commits": [\n'
            f"{pad}      {commits}\n{pad}    ]\n{pad}  }}"
        )
    return "[\n" + ",\n".join(parts) + f"\n{pad}]"


def _components(changes: Sequence[Change], pad: str) -> str:
    if not changes:
        return "[]"
    items = [
        f'{pad}  {{"name": {_enc(n)}, "from": {_scalar(a)}, "to": {_scalar(b)}}}'
        for n, a, b in changes
    ]
    return "[\n" + ",\n".join(items) + f"\n{pad}]"


def report_json(report: Report) -> str:
    """The `changelog --format json` document (schemas/changelog.schema.json)."""
    lines = {row[0]: _commit(row) for _, rows in report.sections for row in rows}
    forge = report.forge
    releases = []
    for r in report.releases:
        url = r.compare_url(forge)
        releases.append(
            "    {\n"
            f'      "version": {_s(r.version)},\n'
            f'      "tag": {_s(r.tag)},\n'
            f'      "commit": {_s(r.commit)},\n'
            f'      "date": {_s(r.date)},\n'
            f'      "previous": {_s(r.previous)},\n'
            f'      "head": {_s(r.head)},\n'
            f'      "compare_url": {_s(url)},\n'
            f'      "sections": {_sections(r.sections, "      ", lines)},\n'
            f'      "components": {_components(r.components, "      ")}\n'
            "    }"
        )
    repository = f'{{"forge": {_enc(forge.kind)}, "url": {_enc(forge.base)}}}' if forge else "null"
    notes = "[" + ", ".join(_enc(n) for n in report.notes) + "]"
    return (
        "{\n"
        f'  "from": {_s(report.from_ref)},\n'
        f'  "to": {_enc(report.to_ref)},\n'
        f'  "from_commit": {_s(report.from_commit)},\n'
        f'  "to_commit": {_s(report.to_commit)},\n'
        f'  "sections": {_sections(report.sections, "  ", lines)},\n'
        f'  "components": {_components(report.components, "  ")},\n'
        f'  "releases": [\n' + ",\n".join(releases) + "\n  ],\n"
        f'  "repository": {repository},\n'
        f'  "notes": {notes}\n'
        "}\n"
    )


def as_data(report: Report) -> dict[str, object]:
    """The JSON document as plain data (what `report_json` writes)."""
    keys = ("sha", "type", "scope", "subject", "breaking", "breaking_description")

    def sections(items: Sequence[Section]) -> list[dict[str, object]]:
        return [
            {"title": t, "commits": [dict(zip(keys, row, strict=True)) for row in rows]}
            for t, rows in items
        ]

    def components(changes: Sequence[Change]) -> list[dict[str, object]]:
        return [{"name": n, "from": a, "to": b} for n, a, b in changes]

    forge = report.forge
    return {
        "from": report.from_ref,
        "to": report.to_ref,
        "from_commit": report.from_commit,
        "to_commit": report.to_commit,
        "sections": sections(report.sections),
        "components": components(report.components),
        "releases": [
            {
                "version": r.version,
                "tag": r.tag,
                "commit": r.commit,
                "date": r.date,
                "previous": r.previous,
                "head": r.head,
                "compare_url": r.compare_url(forge),
                "sections": sections(r.sections),
                "components": components(r.components),
            }
            for r in report.releases
        ],
        "repository": {"forge": forge.kind, "url": forge.base} if forge else None,
        "notes": list(report.notes),
    }
