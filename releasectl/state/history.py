"""The append-only, hash-chained audit history.

Each line is a JSON object with sorted keys. `hash` is the SHA-256 of the line's canonical JSON
without `hash` (and `sig`); `prev` is the previous line's `hash` (64 zeros for the first).
Editing, deleting, inserting or reordering a line breaks the chain, and `verify` says where; a
missing tail, which leaves a valid chain, is caught by the anchor the state keeps
(`releasectl.state.anchor`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from releasectl.errors import Location
from releasectl.models.history import HistoryEntry
from releasectl.models.state import HistoryAnchor, State
from releasectl.secrets import redact
from releasectl.state import anchor
from releasectl.state.anchor import GENESIS, ChainProblem
from releasectl.state.base import StateBackend
from releasectl.util import timeutil

__all__ = ["GENESIS", "ChainProblem", "History", "canonical", "entry_hash", "verify_lines"]

MAX_OUTPUT = 16 * 1024
ANCHOR_ATTEMPTS = 20


def canonical(fields: dict[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(fields: dict[str, Any]) -> str:
    """SHA-256 of the entry without `hash` and `sig` (a signature signs the hash)."""
    body = {k: v for k, v in fields.items() if k not in ("hash", "sig")}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


class History:
    """Appends entries (each one moving the state's anchor) and reads them back.

    Before an entry is appended the history is checked against the anchor: a history whose
    last line is unreadable, or that lost entries the state recorded, takes no more entries
    (appending would hide the damage). `key`: the environment's signing key, if it signs."""

    def __init__(self, backend: StateBackend, *, actor: str, key: bytes | None = None) -> None:
        self.backend = backend
        self.actor = actor
        self.key = key

    def append(self, action: str, result: str, **fields: Any) -> HistoryEntry:
        state = self.backend.read()
        head = anchor.read_head(self.backend)
        anchor.check_tail(self.backend, state)
        prev, seq = (GENESIS, 1) if head is None else (head.hash, head.count + 1)
        record: dict[str, Any] = {
            "seq": seq,
            "time": timeutil.iso(),
            "actor": self.actor,
            "env": self.backend.env,
            "action": action,
            "result": result,
            "prev": prev,
        }
        for key, value in fields.items():
            if value is None:
                continue
            if isinstance(value, str):
                clean: Any = redact(value)[-MAX_OUTPUT:]
            elif isinstance(value, dict):  # details: text values, redacted like the rest
                clean = {str(k): redact(str(v))[-MAX_OUTPUT:] for k, v in value.items()}
            else:
                clean = value
            record["from" if key == "from_" else key] = clean
        record["hash"] = entry_hash(record)
        if self.key is not None:
            record["sig"] = anchor.entry_signature(self.key, record["hash"])
        self.backend.append_history(canonical(record))
        self._move_anchor(state, anchor.Head(seq, record["hash"]))
        return HistoryEntry.model_validate(record)

    def _move_anchor(self, state: State | None, head: anchor.Head) -> None:
        """Record the new head in the state (same serial: an entry is not a state change)."""
        for _attempt in range(ANCHOR_ATTEMPTS):
            if state is None:
                return  # nothing recorded yet: the first state write anchors the history
            current = state.history
            if current is not None and current.count >= head.count:
                return  # a later write anchored this entry or a newer one already
            moved = state.model_copy(update={"history": anchor.make_anchor(state, head, self.key)})
            if self.backend.rewrite(moved):
                return
            state = self.backend.read()  # written meanwhile: anchor on top of that

    def reanchor(self) -> None:
        """Anchor the history as it stands now (entries copied in whole: `state push`)."""
        head = anchor.read_head(self.backend)
        if head is not None:
            self._move_anchor(self.backend.read(), head)

    def anchor_for(self, state: State) -> HistoryAnchor:
        """The anchor a state write carries: where the history stands now."""
        return anchor.make_anchor(state, anchor.read_head(self.backend), self.key)

    def entries(self) -> Iterator[HistoryEntry]:
        from pydantic import ValidationError

        where = self.backend.describe_history()
        for number, line in enumerate(self.backend.history_lines(), start=1):
            fields = anchor.parse_entry(line, where, number)
            try:
                yield HistoryEntry.model_validate(fields)
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                field = ".".join(str(p) for p in first["loc"]) or None
                raise anchor.HistoryError(
                    f"not a history entry: {first['msg']}", location=Location(where, number, field)
                ) from None


def verify_lines(lines: Iterable[str]) -> tuple[int, list[ChainProblem]]:
    """Check every line's hash and the chain; returns (entries checked, problems)."""
    problems: list[ChainProblem] = []
    prev = GENESIS
    expected_seq = 1
    count = 0
    for number, line in enumerate(lines, start=1):
        count += 1
        try:
            fields = json.loads(line)
        except ValueError:
            problems.append(ChainProblem(number, "not valid JSON"))
            prev = ""
            continue
        if not isinstance(fields, dict) or "hash" not in fields:
            problems.append(ChainProblem(number, "not a history entry"))
            prev = ""
            continue
        if entry_hash(fields) != fields["hash"]:
            problems.append(ChainProblem(number, "entry was modified (its hash does not match)"))
        if prev and fields.get("prev") != prev:
            problems.append(
                ChainProblem(
                    number,
                    "chain broken: `prev` does not match the previous entry (an entry was "
                    "deleted, inserted or reordered)",
                )
            )
        if fields.get("seq") != expected_seq:
            problems.append(
                ChainProblem(
                    number, f"sequence number {fields.get('seq')} where {expected_seq} was expected"
                )
            )
        expected_seq = (fields.get("seq") or expected_seq) + 1
        prev = fields["hash"]
    return count, problems


# The old framework's state/migration_history.csv: `timestamp,component,version,event`, no
# header, local-style timestamps. Steps expand into the events it logged; an entry imported
# from that file (`import-legacy`) is its row again.
def to_legacy_csv(entries: Iterable[HistoryEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for entry in entries:
        if entry.imported:
            if entry.component is not None:
                writer.writerow(_imported_row(entry))
            continue
        if entry.component is None or entry.action not in ("up", "down", "deploy", "rollback"):
            continue
        end = timeutil.parse(entry.time)
        start = end
        if entry.duration:
            from datetime import timedelta

            start = end - timedelta(seconds=entry.duration)
        t0 = start.strftime("%Y-%m-%d %H:%M:%S")
        t1 = end.strftime("%Y-%m-%d %H:%M:%S")
        comp, to, frm = entry.component, entry.to, entry.from_
        if entry.action == "rollback":  # undoing a failed step: from = the failed target
            done = "rollback_completed" if entry.result == "success" else "rollback_failed"
            rows = [(t0, comp, frm, "rollback_started"), (t1, comp, to, done)]
        elif entry.action == "down":
            rows = [(t0, comp, frm, "rollback_started")]
            if entry.result == "success":
                rows += [(t1, comp, to, "version_updated"), (t1, comp, to, "rollback_completed")]
            else:
                rows += [(t1, comp, frm, "rollback_failed")]
        else:
            rows = [(t0, comp, to, "migration_started")]
            if entry.result == "success":
                rows += [(t1, comp, to, "migration_completed"), (t1, comp, to, "version_updated")]
            else:
                rows += [(t1, comp, to, "migration_failed")]
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


_EVENTS = {
    ("up", "started"): "migration_started",
    ("up", "success"): "migration_completed",
    ("up", "failed"): "migration_failed",
    ("up", "rolled_back"): "migration_failed",
    ("down", "started"): "rollback_started",
    ("down", "success"): "rollback_completed",
    ("down", "failed"): "rollback_failed",
    ("down", "rolled_back"): "rollback_failed",
}


def _imported_row(entry: HistoryEntry) -> list[str]:
    """An imported entry as the old file's row: its own `event` where it had one."""
    details = entry.details or {}
    event = details.get("event") or _EVENTS.get(
        (entry.action, entry.result), f"{entry.action}_{entry.result}"
    )
    version = entry.to if entry.to is not None else entry.from_
    when = timeutil.parse(entry.time).strftime("%Y-%m-%d %H:%M:%S")
    return [when, entry.component or "", "" if version is None else str(version), event]
