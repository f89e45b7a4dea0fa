"""Putting release sections into CHANGELOG.md: idempotent, whatever the heading style.

A release's section is found by the version in its heading, in any of the forms changelog
tools write, at heading levels 1 to 3:

    ## [1.1.0] - 2026-11-02                         Keep a Changelog (and releasectl)
    ## [2.13.1](https://.../compare/...) - date       git-cliff, release-please
    ## <small>[8.2.2](https://...) (date)</small>     conventional-changelog (patch releases)
    # [8.2.0](https://...) (date)                    conventional-changelog (minor releases)
    ## 1.1.0 / ## v1.1.0 / ## pkg@1.1.0 / ## [Unreleased]

A section runs to the next release heading (or any heading of level 1 or 2), the link
references at the bottom, or the end; the blank lines before the next heading are not part of
it. Writing a section that exists replaces it in place; writing the same thing twice changes
no byte. A section that has content is never replaced by an empty one ("No changes."). A new
section goes where its version sorts (newest first); an ``Unreleased`` section gives its place
to the newest release written. Every other byte is kept: older sections, link references,
CRLF line endings, a missing newline at the end. Headings inside fenced code blocks are text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from releasectl.errors import InputError
from releasectl.release.changelog.versions import label as tag_label
from releasectl.release.changelog.versions import version_key

CHANGELOG_FILE = "CHANGELOG.md"
HEADER = """# Changelog

All notable changes to this project are documented in this file.

The format is based on [Keep a Changelog](https://keepachangelog.com/en/1.1.0/),
and this project adheres to [Semantic Versioning](https://semver.org/spec/v2.0.0.html).
"""

Outcome = Literal["created", "added", "replaced", "unchanged", "kept"]

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)\s*$")
_LABEL = re.compile(r"^(?:<small>[ \t]*)?\[?[ \t]*([^\]\[()\s]+)")
_VERSION_LABEL = re.compile(r"^\d+\.\d+(?:\.\d+)?(?:[-+][0-9A-Za-z.+-]*)?$")
_LINK_REF = re.compile(r"^\[[^\]]+\]:\s")
_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")
UNRELEASED = "unreleased"


class Item(NamedTuple):
    version: str | None
    """The release (None: Unreleased)."""
    text: str
    empty: bool = False
    """The section says "No changes."."""


class _Heading(NamedTuple):
    line: int
    level: int
    label: str | None
    """A version, `unreleased`, or None for any other heading."""


def normalise(label: str | None) -> str:
    if label is None or label.lower() == UNRELEASED:
        return UNRELEASED
    return tag_label(label)


def _is_version(label: str) -> bool:
    return bool(_VERSION_LABEL.match(label))


def _headings(lines: Sequence[str]) -> list[_Heading]:
    found = []
    fenced = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced or not line.startswith("#"):
            continue
        match = _HEADING.match(line)
        if match is None:
            continue
        level = len(match.group(1))
        token = _LABEL.match(match.group(2))
        text = token.group(1) if token else ""
        name = normalise(text) if text else None
        if name is not None and name != UNRELEASED and not _is_version(name):
            name = None
        if (level <= 3 and name is not None) or level <= 2:
            found.append(_Heading(i, level, name if level <= 3 else None))
    return found


def _content_end(lines: Sequence[str], headings: Sequence[_Heading], start: int) -> int:
    """Where the section at line `start` ends, its trailing blank lines left out."""
    end = next((h.line for h in headings if h.line > start), len(lines))
    refs = next((i for i in range(start + 1, end) if _LINK_REF.match(lines[i])), None)
    end = refs if refs is not None else end
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return end


def write_sections(path: Path, items: Sequence[Item]) -> list[tuple[str | None, Outcome]]:
    """Write release sections (newest first) into `path`, atomically; what happened to each."""
    from releasectl.util.fsutil import atomic_write

    try:
        old = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        atomic_write(path, HEADER + "\n" + "\n".join(_ending(i.text) for i in items))
        return [(i.version, "created") for i in items]
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    newline = "\r\n" if "\r\n" in old else "\n"
    lines = old.splitlines(keepends=True)
    ended = old.endswith("\n")
    writes_unreleased = any(i.version is None for i in items)
    newest = next((i for i in items if i.version is not None), None)
    outcomes: list[tuple[str | None, Outcome]] = []
    for item in reversed(items):  # oldest first: each later one sorts above it
        text = _ending(item.text)
        if newline != "\n":
            text = text.replace("\n", newline)
        section = text.splitlines(keepends=True)
        outcome = _put(
            lines, section, item, newline, ended, item is newest and not writes_unreleased
        )
        outcomes.append((item.version, outcome))
    outcomes.reverse()
    new = "".join(lines)
    if new != old:
        atomic_write(path, new)
    return outcomes


def _ending(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _put(
    lines: list[str],
    section: list[str],
    item: Item,
    newline: str,
    ended: bool,
    may_take_unreleased: bool,
) -> Outcome:
    headings = _headings(lines)
    wanted = normalise(item.version)
    target = next((h for h in headings if h.label == wanted), None)
    if target is None and may_take_unreleased:
        versions = [h.label for h in headings if h.label not in (None, UNRELEASED)]
        key = version_key(wanted)
        if all(version_key(v) < key for v in versions if v is not None):
            target = next((h for h in headings if h.label == UNRELEASED), None)
    if target is not None:
        end = _content_end(lines, headings, target.line)
        if item.empty and any(line.strip() for line in lines[target.line + 1 : end]):
            return "kept"  # never replace a section that has content with "No changes."
        if end == len(lines) and not ended:
            section = [*section[:-1], section[-1].rstrip("\r\n")]
        if lines[target.line : end] == section:
            return "unchanged"
        lines[target.line : end] = section
        return "replaced"
    pos = _insertion_point(lines, headings, wanted)
    before, after = lines[:pos], lines[pos:]
    if before and not before[-1].endswith("\n"):
        before[-1] += newline
    if before and before[-1].strip():
        before.append(newline)
    gap = [newline] if after and after[0].strip() else []
    lines[:] = [*before, *section, *gap, *after]
    return "added"


def _insertion_point(lines: Sequence[str], headings: Sequence[_Heading], wanted: str) -> int:
    releases = [h for h in headings if h.label is not None]
    if wanted != UNRELEASED and _is_version(wanted):
        key = version_key(wanted)
        for h in releases:
            if h.label != UNRELEASED and h.label is not None and version_key(h.label) < key:
                return h.line
        if releases:
            return _content_end(lines, headings, releases[-1].line)
    elif releases:
        first = releases[0]
        if first.label == UNRELEASED and wanted != UNRELEASED:
            return _content_end(lines, headings, first.line)
        return first.line
    second = next((h.line for h in headings if h.level == 2), None)
    if second is not None:
        return second
    return next((i for i, line in enumerate(lines) if _LINK_REF.match(line)), len(lines))


def write_section(
    path: Path, markdown: str, version: str | None
) -> Literal["created", "added", "replaced", "unchanged", "kept"]:
    """Put one release's section into CHANGELOG.md (see `write_sections`)."""
    return write_sections(path, [Item(version, markdown)])[0][1]
