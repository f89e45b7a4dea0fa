"""Changelogs from conventional commits, a section per release, plus the component versions
two releases differ by.

The modules, in the order a changelog is made:

- `settings`: sections, filters, release tags and links; defaults, or the `changelog:` block;
- `ends`: FROM and TO as typed (`A..B`, release versions) resolved to commits;
- `commits`: the range's `git log` classified into plain tuples (one regex match per commit);
- `graph`: which release each commit belongs to, which merges stay;
- `manifests`: component versions from the release manifests at each release;
- `links`: the forge's compare, commit and issue pages, from the `origin` remote;
- `core`: `build`, which does all of the above into a `Report`;
- `render`: Markdown (Keep a Changelog) and JSON from the report;
- `document`: CHANGELOG.md edited in place, idempotent whatever the heading style.

`build` is what the CLI uses (no pydantic model on its path); `generate` wraps the same result
in the `Changelog` model for library callers (the apply engine's commit-back), and
`render_markdown` renders that model.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date as Date
from pathlib import Path
from typing import TYPE_CHECKING

from releasectl.release.changelog.core import build
from releasectl.release.changelog.document import (
    CHANGELOG_FILE,
    HEADER,
    Item,
    write_section,
    write_sections,
)
from releasectl.release.changelog.ends import split_range
from releasectl.release.changelog.links import Forge
from releasectl.release.changelog.manifests import diff_components
from releasectl.release.changelog.render import as_data, markdown, release_markdown, report_json
from releasectl.release.changelog.report import Release, Report, Section

if TYPE_CHECKING:
    from releasectl.models.changelog import Changelog, ChangelogSection

__all__ = [
    "CHANGELOG_FILE",
    "HEADER",
    "Item",
    "Release",
    "Report",
    "as_data",
    "build",
    "diff_components",
    "generate",
    "render_markdown",
    "report_json",
    "report_markdown",
    "split_range",
    "write_report",
    "write_section",
    "write_sections",
]


def generate(
    repo: Path,
    from_ref: str | None,
    to_ref: str | None,
    *,
    version_label: str | None = None,
    from_root: bool = False,
) -> Changelog:
    """The changelog of FROM..TO as the `Changelog` model (one validation for the document).

    `version_label` names the release the range ends at when TO carries no tag yet (the apply
    engine calls this before it tags): its manifest is the newer side of `components`.
    """
    from releasectl.models.changelog import Changelog

    report = build(repo, from_ref, to_ref, version_label=version_label, from_root=from_root)
    return Changelog.model_validate(as_data(report))


def report_markdown(report: Report) -> str:
    return markdown(report.releases, report.forge)


def render_markdown(changelog: Changelog, version: str | None, date: str | Date | None) -> str:
    """The model's releases as Markdown, newest first; `version` and `date` name the newest
    one (``## [Unreleased]`` when `version` is None)."""
    repo = changelog.repository
    forge = Forge(repo.forge, repo.url) if repo is not None else None
    releases = [
        Release(
            r.version,
            r.tag,
            r.commit,
            r.date,
            r.previous,
            _sections(r.sections),
            [(c.name, c.from_, c.to) for c in r.components],
            r.head,
        )
        for r in changelog.releases
    ] or [
        Release(
            None,
            None,
            changelog.to_commit,
            None,
            changelog.from_,
            _sections(changelog.sections),
            [(c.name, c.from_, c.to) for c in changelog.components],
        )
    ]
    first = releases[0]
    releases[0] = Release(
        version,
        first.tag,
        first.commit,
        None,
        first.previous,
        first.sections,
        first.components,
        first.head,
    )
    parts = [release_markdown(releases[0], forge, date=date if version else None)]
    parts.extend(release_markdown(r, forge) for r in releases[1:])
    return "\n".join(parts)


def write_report(report: Report, path: Path | None = None) -> list[tuple[str | None, str]]:
    """Write every release of `report` into its CHANGELOG.md (or `path`); what happened to
    each section."""
    target = path or report.root / CHANGELOG_FILE
    items = [Item(r.version, release_markdown(r, report.forge), r.empty) for r in report.releases]
    return [(v, str(o)) for v, o in write_sections(target, items)]


def _sections(sections: Sequence[ChangelogSection]) -> list[Section]:
    return [
        (
            s.title,
            [
                (c.sha, c.type, c.scope, c.subject, c.breaking, c.breaking_description)
                for c in s.commits
            ],
        )
        for s in sections
    ]
