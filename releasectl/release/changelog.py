"""Changelogs from conventional commits, plus the component versions two releases differ by.

`build` reads a range of history (see `gitlog`) and groups it into plain tuples; `generate`
wraps the same result in the pydantic `Changelog` model for library callers (the apply
engine's commit-back). The CLI renders the tuples directly, so a 50,000-commit range never
builds 50,000 models: `report_json` writes the schema's JSON with the C string encoder and
`report_markdown` the Keep-a-Changelog section.

Grouping (DESIGN: breaking changes first, then features, fixes, performance): a commit is
conventional when its subject reads ``type(scope)!: description`` (type: letters, lowercased;
scope and ``!`` optional). It is breaking with ``!`` or a ``BREAKING CHANGE:`` /
``BREAKING-CHANGE:`` footer line, and a breaking commit is listed under Breaking Changes only:
each commit appears once, so the sections partition the range, and its `type` still says what
it was. Known types have their section in `SECTIONS` order; any other type and every
non-conventional subject (type null) go under Other. Merge commits are skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date as Date
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from releasectl.errors import InputError
from releasectl.release import gitlog

if TYPE_CHECKING:
    from releasectl.models.changelog import Changelog

# (type, section title) in the order sections appear; breaking first, other last.
SECTIONS: tuple[tuple[str | None, str], ...] = (
    (None, "Breaking Changes"),
    ("feat", "Features"),
    ("fix", "Bug Fixes"),
    ("perf", "Performance"),
    ("docs", "Documentation"),
    ("refactor", "Refactoring"),
    ("build", "Build"),
    ("ci", "CI"),
    ("chore", "Chores"),
    ("test", "Tests"),
    ("style", "Style"),
    ("revert", "Reverts"),
    (None, "Other"),
)
_BREAKING = 0
_OTHER = len(SECTIONS) - 1
_SLOT = {t: i for i, (t, _) in enumerate(SECTIONS) if t is not None}

_SUBJECT = re.compile(r"([A-Za-z]+)(?:\(\s*([^()\s](?:[^()]*[^()\s])?)\s*\))?(!)?: (\S.*)")
_FOOTER = re.compile(r"^BREAKING[ -]CHANGE: \S", re.MULTILINE)
_VERSION_TAG = re.compile(r"v?(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?)")

WORKSPACE_FILE = "releasectl.yaml"
CHANGELOG_FILE = "CHANGELOG.md"
HEADER = """# Changelog

All notable changes to this project are documented in this file.

The format is based on [Keep a Changelog](https://keepachangelog.com/en/1.1.0/),
and this project adheres to [Semantic Versioning](https://semver.org/spec/v2.0.0.html).
"""

Row = tuple[str, str | None, str | None, str, bool]
"""(sha, type, scope, subject, breaking): one commit, as the JSON document lists it."""
Version = int | str | None
Change = tuple[str, Version, Version]
"""(component, from, to)."""


@dataclass(frozen=True, slots=True)
class Report:
    from_ref: str | None
    to_ref: str
    sections: list[tuple[str, list[Row]]]
    components: list[Change]
    version: str | None
    """The release the range ends at (from TO's tag or the caller), None: unreleased."""
    date: str | None
    root: Path
    """Where CHANGELOG.md belongs: the workspace, else the top of the work tree."""


def build(
    repo: Path,
    from_ref: str | None = None,
    to_ref: str | None = None,
    *,
    version_label: str | None = None,
    from_root: bool = False,
) -> Report:
    """Read FROM..TO (default: the nearest older tag..HEAD, or the whole history when there is
    no tag or `from_root`) and group its commits."""
    repo = Path(repo)
    version_label = _label(version_label) if version_label else None  # "v1.1.0" -> "1.1.0"
    refs = [to_ref or "HEAD"] + ([from_ref] if from_ref is not None else [])
    found = gitlog.resolve(repo, refs)
    to_sha = found.commits[0]
    tags = gitlog.list_tags(repo)
    at: dict[str, list[str]] = {}
    for tag in tags:
        at.setdefault(tag.commit, []).append(tag.name)
    from_sha: str | None = None
    if from_ref is not None:
        from_sha = found.commits[1]
    elif not from_root and tags:
        from_ref = gitlog.nearest_tag(repo, to_sha, exclude=at.get(to_sha, ()))
        if from_ref is not None:
            known = next((t.commit for t in tags if t.name == from_ref), None)
            from_sha = known or gitlog.resolve(repo, [from_ref]).commits[0]
    sections = group(gitlog.iter_log(repo, to_sha, from_sha))
    to_tag = _release_tag(at.get(to_sha, []), to_ref)
    version = version_label or (_label(to_tag) if to_tag else None)
    when = next((t.date for t in tags if t.name == to_tag), None) if to_tag else None
    ws = _workspace_root(repo.resolve(), found.toplevel)
    components: list[Change] = []
    if ws is not None:
        releases = _Releases(repo, found.toplevel, ws)
        old = releases.at(from_sha, _tag_version(at, from_sha, from_ref), name=from_ref)
        new = releases.at(
            to_sha,
            version_label or _tag_version(at, to_sha, to_tag),
            name=to_tag or to_ref,
            in_tree=to_ref is None or to_ref == "HEAD",
        )
        components = diff_components(old.components if old else {}, new.components if new else {})
        if new is not None and new.date and new.version == version:
            when = new.date  # the release manifest's own date wins over the tag's
    return Report(
        from_ref=from_ref,
        to_ref=to_ref or "HEAD",
        sections=sections,
        components=components,
        version=version,
        date=when if version is not None else None,
        root=ws or found.toplevel,
    )


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


def as_data(report: Report) -> dict[str, object]:
    """The JSON document as plain data (what `report_json` writes)."""
    keys = ("sha", "type", "scope", "subject", "breaking")
    return {
        "from": report.from_ref,
        "to": report.to_ref,
        "sections": [
            {"title": title, "commits": [dict(zip(keys, row, strict=True)) for row in rows]}
            for title, rows in report.sections
        ],
        "components": [{"name": n, "from": a, "to": b} for n, a, b in report.components],
    }


# --- grouping ----------------------------------------------------------------------------


def group(batches: Iterable[Sequence[str]]) -> list[tuple[str, list[Row]]]:
    """Group flat [sha, subject, body, ...] batches (newest first) into ordered sections."""
    buckets: list[list[Row]] = [[] for _ in SECTIONS]
    match = _SUBJECT.match
    footer = _FOOTER.search
    slot = _SLOT.get
    # The hot loop of a large changelog: one regex match per commit, everything else inline.
    for batch in batches:
        fields = iter(batch)
        for sha, subject, body in zip(fields, fields, fields, strict=True):
            m = match(subject)
            if m is None:
                buckets[_OTHER].append((sha, None, None, subject.strip(), False))
                continue
            type_, scope, bang, text = m.groups()
            type_ = type_.lower()
            if bang is not None or ("BREAKING" in body and footer(body) is not None):
                buckets[_BREAKING].append((sha, type_, scope, text.rstrip(), True))
            else:
                buckets[slot(type_, _OTHER)].append((sha, type_, scope, text.rstrip(), False))
    return [(SECTIONS[i][1], rows) for i, rows in enumerate(buckets) if rows]


def _release_tag(names: list[str], asked: str | None) -> str | None:
    """Which of the tags on TO names its release: the one asked for, else the highest version."""
    if not names:
        return None
    if asked is not None and asked in names:
        return asked
    versions = [n for n in names if _VERSION_TAG.fullmatch(n)]
    if versions:
        return max(versions, key=_version_key)
    return min(names)


def _version_key(tag: str) -> tuple[int, ...]:
    match = _VERSION_TAG.fullmatch(tag)
    core = match.group(1) if match else ""
    numbers = re.findall(r"\d+", core.split("-")[0].split("+")[0])
    # A pre-release sorts before its release: 1.0.0-rc.1 < 1.0.0.
    return (*(int(n) for n in numbers[:3]), 0 if "-" in core else 1)


def _label(tag: str) -> str:
    match = _VERSION_TAG.fullmatch(tag)
    return match.group(1) if match else tag


# --- component versions from the release manifests --------------------------------------


def _workspace_root(start: Path, toplevel: Path) -> Path | None:
    for candidate in (start, *start.parents):
        if (candidate / WORKSPACE_FILE).is_file():
            return candidate
        if candidate == toplevel:
            break
    return None


def _tag_version(at: dict[str, list[str]], commit: str | None, asked: str | None) -> str | None:
    if commit is None:
        return None
    tag = _release_tag(at.get(commit, []), asked)
    if tag is None or not _VERSION_TAG.fullmatch(tag):
        return None
    return _label(tag)


class Manifest(NamedTuple):
    version: str
    date: str | None
    components: dict[str, Version]


class _Releases:
    """The release manifests of workspace `ws`, in the work tree or at any commit."""

    def __init__(self, repo: Path, toplevel: Path, ws: Path) -> None:
        from releasectl.workspace import yamlio

        self.repo = repo
        self.ws = ws
        data = yamlio.load_fast(ws / WORKSPACE_FILE, WORKSPACE_FILE)
        value = data.get("releases") if isinstance(data, dict) else None
        self.dir = value.strip("/") if isinstance(value, str) and value.strip("/") else "releases"
        rel = ws.relative_to(toplevel).as_posix()
        self.in_repo = f"{'' if rel == '.' else rel + '/'}{self.dir}"  # git paths are from the top

    def at(
        self, commit: str | None, version: str | None, *, name: str | None, in_tree: bool = False
    ) -> Manifest | None:
        """The release at `commit`: the manifest of `version` (its tag), else the highest one
        there; from the work tree when `in_tree`. None: no manifest. `name` is for messages."""
        if commit is None:
            return None
        from releasectl.workspace import yamlio

        if in_tree:
            directory = self.ws / self.dir
            names = [p.name for p in directory.glob("*.yaml")] if directory.is_dir() else []
            chosen = _choose(names, version)
            if chosen is None:
                return None
            display = f"{self.dir}/{chosen}"
            return _read(chosen, yamlio.read_text(directory / chosen, display), display)
        chosen = f"{version}.yaml" if version else None
        blob = self._blob(commit, chosen) if chosen else None
        if blob is None or chosen is None:
            chosen = _choose(gitlog.list_dir(self.repo, commit, self.in_repo), None)
            blob = self._blob(commit, chosen) if chosen else None
            if blob is None or chosen is None:
                return None
        display = f"{name or commit[:12]}:{self.dir}/{chosen}"
        return _read(chosen, blob.decode("utf-8", "replace"), display)

    def _blob(self, commit: str, file: str) -> bytes | None:
        return gitlog.read_blobs(self.repo, [f"{commit}:{self.in_repo}/{file}"])[0]


def _choose(names: Iterable[str], version: str | None) -> str | None:
    """The manifest of `version` if present, else the highest version among `names`."""
    manifests = {n[: -len(".yaml")]: n for n in names if n.endswith(".yaml")}
    if version is not None and version in manifests:
        return manifests[version]
    versions = [v for v in manifests if _VERSION_TAG.fullmatch(v) and not v.startswith("v")]
    return manifests[max(versions, key=_version_key)] if versions else None


def _read(file: str, text: str, display: str) -> Manifest:
    from releasectl.errors import Location
    from releasectl.workspace import yamlio

    doc = yamlio.loads(text, display)
    data = doc.data if isinstance(doc.data, dict) else {}
    components = data.get("components") or {}
    if not isinstance(components, dict):
        raise InputError("must be a mapping of components", location=doc.location(("components",)))
    versions: dict[str, Version] = {}
    for name, pin in components.items():
        value = pin.get("version") if isinstance(pin, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | str | float | type(None)):
            where = Location(display, doc.line_of(("components", name)), f"components.{name}")
            raise InputError("version must be a number or a semantic version", location=where)
        versions[str(name)] = str(value) if isinstance(value, float) else value
    released = data.get("date")
    date = str(released) if released is not None else None
    return Manifest(file.removesuffix(".yaml"), date, versions)


def diff_components(old: dict[str, Version], new: dict[str, Version]) -> list[Change]:
    """Components whose version differs, plus added (from None) and removed (to None) ones."""
    changes = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if name not in old or name not in new or str(a) != str(b):
            changes.append((name, a if name in old else None, b if name in new else None))
    return changes


# --- rendering ----------------------------------------------------------------------------


def render_markdown(changelog: Changelog, version: str | None, date: str | Date | None) -> str:
    """One Keep-a-Changelog section: ``## [1.1.0] - 2026-11-02`` (``## [Unreleased]`` when
    `version` is None), a ``###`` part per non-empty group, then the component changes."""
    sections = [
        (s.title, [(c.sha, c.type, c.scope, c.subject, c.breaking) for c in s.commits])
        for s in changelog.sections
    ]
    components = [(c.name, c.from_, c.to) for c in changelog.components]
    return markdown(sections, components, version, date)


def report_markdown(report: Report) -> str:
    return markdown(report.sections, report.components, report.version, report.date)


def markdown(
    sections: Sequence[tuple[str, Sequence[Row]]],
    components: Sequence[Change],
    version: str | None,
    date: str | Date | None,
) -> str:
    if version is None:
        lines = ["## [Unreleased]", ""]
    else:
        when = date.isoformat() if isinstance(date, Date) else date
        lines = [f"## [{version}]" + (f" - {when}" if when else ""), ""]
    for title, rows in sections:
        lines.append(f"### {title}")
        lines.append("")
        lines.extend(
            f"- **{scope}:** {subject} (`{sha[:7]}`)" if scope else f"- {subject} (`{sha[:7]}`)"
            for sha, _, scope, subject, _ in rows
        )
        lines.append("")
    if components:
        lines.extend(("### Components", ""))
        for name, old, new in components:
            if old is None:
                lines.append(f"- {name}: added at {new}")
            elif new is None:
                lines.append(f"- {name}: removed (was {old})")
            else:
                lines.append(f"- {name}: {old} -> {new}")
        lines.append("")
    if not sections and not components:
        lines.extend(("No changes.", ""))
    return "\n".join(lines[:-1]) + "\n"


def report_json(report: Report) -> str:
    """The `changelog --format json` document, one commit per line, straight from the tuples.

    Same data as `Changelog.model_dump(by_alias=True)` (the schema's shape), without a model or
    a dict per commit: at 50,000 commits this is the difference between milliseconds and a
    second.
    """
    enc = json.encoder.encode_basestring_ascii  # the C encoder json.dumps uses
    out = ["{", f'  "from": {_scalar(report.from_ref)},', f'  "to": {enc(report.to_ref)},']
    parts = []
    for title, rows in report.sections:
        commits = ",\n".join(
            f'        {{"sha": "{sha}", "type": {"null" if t is None else enc(t)}, '
            f'"scope": {"null" if s is None else enc(s)}, "subject": {enc(subj)}, '
            f'"breaking": {"true" if b else "false"}}}'
            for sha, t, s, subj, b in rows
        )
        parts.append(
            f'    {{\n      "title": {enc(title)},\n      "commits": [\n{commits}\n      ]\n    }}'
        )
    out.append('  "sections": [\n' + ",\n".join(parts) + "\n  ]," if parts else '  "sections": [],')
    items = [
        f'    {{"name": {enc(n)}, "from": {_scalar(a)}, "to": {_scalar(b)}}}'
        for n, a, b in report.components
    ]
    out.append(
        '  "components": [\n' + ",\n".join(items) + "\n  ]" if items else '  "components": []'
    )
    out.append("}\n")
    return "\n".join(out)


def _scalar(value: Version) -> str:
    return json.dumps(value)


# --- CHANGELOG.md -------------------------------------------------------------------------

_LINK_REF = re.compile(r"^\[[^\]]+\]:\s")


def write_section(
    path: Path, markdown: str, version: str | None
) -> Literal["created", "added", "replaced"]:
    """Put one release's section into CHANGELOG.md, atomically.

    A missing file is created with the usual Keep-a-Changelog header. A section with the same
    version (``## [1.1.0]``, ``## 1.1.0``, ``## [v1.1.0]``) is replaced where it stands; else a
    released version takes the place of an ``## [Unreleased]`` section (its commits are now
    released), and otherwise the section goes above the newest one. Every other byte of the
    file, older sections and link references included, is left as it was.
    """
    from releasectl.util.fsutil import atomic_write

    section = markdown if markdown.endswith("\n") else markdown + "\n"
    try:
        old = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        atomic_write(path, HEADER + "\n" + section)
        return "created"
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if "\r\n" in old:
        section = section.replace("\n", "\r\n")
    newline = "\r\n" if "\r\n" in old else "\n"
    lines = old.splitlines(keepends=True)
    headings = [i for i, line in enumerate(lines) if line.startswith("## ")]
    target = _find(lines, headings, version or "Unreleased")
    if target is None and version is not None:
        target = _find(lines, headings, "Unreleased")
    if target is not None:
        end = _section_end(lines, headings, target)
        after = lines[end:]
        new = [*lines[:target], section, *([newline] if after else []), *after]
        atomic_write(path, "".join(new))
        return "replaced"
    if headings:
        pos = headings[0]
    else:
        pos = next((i for i, line in enumerate(lines) if _LINK_REF.match(line)), len(lines))
    before, after = lines[:pos], lines[pos:]
    if before and not before[-1].endswith("\n"):
        before[-1] += newline
    if before and before[-1].strip():
        before.append(newline)
    new = [*before, section, *([newline] if after else []), *after]
    atomic_write(path, "".join(new))
    return "added"


def _find(lines: list[str], headings: list[int], label: str) -> int | None:
    pattern = re.compile(
        r"##\s+\[?v?" + re.escape(label) + r"\]?(?:\s|$)",
        re.IGNORECASE if label == "Unreleased" else 0,
    )
    return next((i for i in headings if pattern.match(lines[i])), None)


def _section_end(lines: list[str], headings: list[int], start: int) -> int:
    following = [i for i in headings if i > start]
    end = following[0] if following else len(lines)
    links = next((i for i in range(start + 1, end) if _LINK_REF.match(lines[i])), None)
    return links if links is not None else end
