"""Conventional commits: one regex match per commit, into plain tuples.

A commit is conventional when the first line of its message reads ``type(scope)!: description``
(type: letters, lowercased; scope and ``!`` optional; one or more spaces after the colon). Only
that first line is the subject; the rest of the message is the body. A commit is breaking with
``!`` or a ``BREAKING CHANGE:`` / ``BREAKING-CHANGE:`` footer line; the footer's text (or, when
the footer line is empty, the paragraph after it) is its description. Where each commit goes is
its *slot*: the index of its section in `Settings.titles`, -1 when it is left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from releasectl.release.changelog.settings import Settings, author_excluded

Row = tuple[str, str | None, str | None, str, bool, str | None]
"""(sha, type, scope, subject, breaking, breaking description): one commit of the document."""

SUBJECT = re.compile(r"([A-Za-z]+)(?:\(\s*([^()\s](?:[^()]*[^()\s])?)\s*\))?(!)?:[ \t]+(\S.*)")
_FOOTER = re.compile(r"^BREAKING[ -]CHANGE:[ \t]*(.*)$", re.MULTILINE)
# A line that starts another git trailer ends the text of a BREAKING CHANGE footer.
_TRAILER = re.compile(r"^[A-Za-z][\w-]*(?::[ \t]| #)")


class Log:
    """The commits of a range in `git log` order (newest first), as parallel lists: `parents`
    as git printed them (space-separated), `merges` the indexes of the merge commits."""

    __slots__ = ("merges", "parents", "rows", "shas", "slots")

    def __init__(
        self,
        shas: list[str],
        parents: list[str],
        rows: list[Row],
        slots: list[int],
        merges: list[int],
    ) -> None:
        self.shas = shas
        self.parents = parents
        self.rows = rows
        self.slots = slots
        self.merges = merges

    def __len__(self) -> int:
        return len(self.shas)


def breaking_note(body: str) -> str | None:
    """The description of the first BREAKING CHANGE footer of `body`, on one line ('' when it
    has no text); None when there is no such footer."""
    match = _FOOTER.search(body)
    if match is None:
        return None
    first = match.group(1).strip()
    rest = body[match.end() :].split("\n")[1:]
    lines = [first] if first else []
    i = 0
    if not first:
        while i < len(rest) and not rest[i].strip():
            i += 1  # an empty footer: its text is the next paragraph
    for line in rest[i:]:
        if not line.strip() or (_TRAILER.match(line) and (lines or first)):
            break
        lines.append(line.strip())
    return " ".join(lines)


def parse(batches: Iterable[Sequence[str]], settings: Settings, *, author: bool = False) -> Log:
    """Classify the flat [sha, parents, message(, author)] batches of one `git log -z`."""
    if author or settings.filters:
        return _parse_filtered(batches, settings, author=author)
    shas: list[str] = []
    parents: list[str] = []
    rows: list[Row] = []
    slots: list[int] = []
    merges: list[int] = []
    match = SUBJECT.match
    slot_of = settings.slot_of.get
    other = -1 if settings.other_slot is None else settings.other_slot
    breaking_slot = settings.breaking_slot
    add_sha, add_parents, add_row, add_slot = shas.append, parents.append, rows.append, slots.append
    # The hot loop of a large changelog: one regex match per commit, everything else inline.
    for batch in batches:
        fields = iter(batch)
        for sha, par, message in zip(fields, fields, fields, strict=True):
            if " " in par:
                merges.append(len(shas))
            add_sha(sha)
            add_parents(par)
            subject, _, body = message.partition("\n")
            m = match(subject)
            if m is None:
                add_row((sha, None, None, subject.strip(), False, None))
                add_slot(other)
                continue
            type_, scope, bang, text = m.groups()
            type_ = type_.lower()
            note = breaking_note(body) if "BREAKING" in body else None
            if bang is not None or note is not None:
                add_row((sha, type_, scope, text.rstrip(), True, note or None))
                add_slot(slot_of(type_, other) if breaking_slot is None else breaking_slot)
            else:
                add_row((sha, type_, scope, text.rstrip(), False, None))
                add_slot(slot_of(type_, other))
    return Log(shas, parents, rows, slots, merges)


def _parse_filtered(batches: Iterable[Sequence[str]], settings: Settings, *, author: bool) -> Log:
    """`parse` with the configured filters (and an author field when they need it)."""
    log = Log([], [], [], [], [])
    width = 4 if author else 3
    other = -1 if settings.other_slot is None else settings.other_slot
    excluded_types = settings.exclude_types
    subjects = settings.exclude_subjects
    for batch in batches:
        for start in range(0, len(batch), width):
            sha, par, message = batch[start : start + 3]
            if " " in par:
                log.merges.append(len(log.shas))
            log.shas.append(sha)
            log.parents.append(par)
            subject, _, body = message.partition("\n")
            row, slot = classify(sha, subject, body, settings, other)
            log.rows.append(row)
            if (
                (row[1] is not None and row[1] in excluded_types)
                or (subjects is not None and subjects.search(subject.strip()))
                or (author and author_excluded(settings, batch[start + 3]))
            ):
                slot = -1
            log.slots.append(slot)
    return log


def classify(sha: str, subject: str, body: str, settings: Settings, other: int) -> tuple[Row, int]:
    m = SUBJECT.match(subject)
    if m is None:
        return (sha, None, None, subject.strip(), False, None), other
    type_, scope, bang, text = m.groups()
    type_ = type_.lower()
    note = breaking_note(body) if "BREAKING" in body else None
    slot = settings.slot_of.get(type_, other)
    if bang is not None or note is not None:
        if settings.breaking_slot is not None:
            slot = settings.breaking_slot
        return (sha, type_, scope, text.rstrip(), True, note or None), slot
    return (sha, type_, scope, text.rstrip(), False, None), slot
