"""The history anchor: the count and head hash of the history, kept in the recorded state.

A hash chain shows an edited, inserted or reordered entry, but not a missing tail: the first
N entries of a chain are a valid chain. So every history entry also moves the anchor in the
state (`State.history`: count, head hash), and every state write carries it. A history shorter
than the anchor's count, or whose entry `count` does not hash to the anchor's head, lost its
tail or was rewritten; `history --verify`, `status` and every command that appends refuse it.

Environments with `history: {sign: true}` also sign each entry and the anchor with
HMAC-SHA256 under a key from the environment (`history.key_env`), so someone without the key
cannot rewrite the chain and rehash it: entries after the anchor must be signed, and the
anchor's signature binds everything up to its head.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from releasectl.errors import InputError, Location
from releasectl.models.state import HistoryAnchor, State

if TYPE_CHECKING:
    from releasectl.models.workspace import HistoryConfig
    from releasectl.state.base import StateBackend

GENESIS = "0" * 64
MIN_KEY_CHARS = 32


class HistoryError(InputError):
    """The history is unreadable, lost its tail, or was rewritten."""


@dataclass(frozen=True, slots=True)
class Head:
    """The last entry of a history: its position and hash."""

    count: int
    hash: str


def signing_key(config: HistoryConfig, environ: Mapping[str, str]) -> bytes | None:
    """The history key of an environment that signs its history (None: it does not)."""
    if not config.sign:
        return None
    value = environ.get(config.key_env, "")
    if len(value) < MIN_KEY_CHARS:
        raise InputError(
            f"the history of this environment is signed (history.sign): set {config.key_env} "
            f"to the signing key (at least {MIN_KEY_CHARS} characters)"
            + ("" if not value else f"; it holds only {len(value)}")
        )
    return value.encode()


def entry_signature(key: bytes, entry_hash: str) -> str:
    return hmac.new(key, entry_hash.encode(), hashlib.sha256).hexdigest()


def anchor_signature(key: bytes, env: str, lineage: str, count: int, head: str) -> str:
    text = f"releasectl-anchor\n{env}\n{lineage}\n{count}\n{head}"
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def parse_entry(line: str, display: str, number: int | None) -> dict[str, Any]:
    """One history line as a dict, or a HistoryError naming the file and line."""
    where = Location(display, number)
    try:
        fields = json.loads(line)
    except ValueError:
        raise HistoryError(
            "history entry is not valid JSON (the file was edited or cut short); restore the "
            "history from a copy (git, a backup of the state backend), then "
            "`releasectl history --verify`",
            location=where,
        ) from None
    if not isinstance(fields, dict) or not isinstance(fields.get("hash"), str):
        raise HistoryError("not a history entry (no `hash`)", location=where)
    if not isinstance(fields.get("seq"), int):
        raise HistoryError("not a history entry (no `seq`)", location=where)
    return fields


def read_head(backend: StateBackend) -> Head | None:
    """The last entry of the history (None: empty), or a HistoryError naming where it is."""
    last = backend.last_history_line()
    if last is None:
        return None
    try:
        fields = parse_entry(last, backend.describe_history(), None)
    except HistoryError as exc:
        exc.location = Location(backend.describe_history(), _count_lines(backend))
        raise
    return Head(int(fields["seq"]), str(fields["hash"]))


def _count_lines(backend: StateBackend) -> int:
    return sum(1 for _ in backend.history_lines())


def make_anchor(state: State, head: Head | None, key: bytes | None) -> HistoryAnchor:
    count, digest = (head.count, head.hash) if head else (0, GENESIS)
    signature = (
        anchor_signature(key, state.env, state.lineage, count, digest) if key is not None else None
    )
    return HistoryAnchor(count=count, head=digest, signature=signature)


def tail_problem(anchor: HistoryAnchor | None, head: Head | None, where: str) -> str | None:
    """What is wrong with a history whose last entry is `head`, given the state's anchor
    (a quick check: the last entry only)."""
    if anchor is None:
        return None
    count = head.count if head else 0
    if count < anchor.count:
        lost = (
            "the history is empty or gone"
            if count == 0
            else f"it ends at entry {count}: entries {count + 1}..{anchor.count} are missing"
        )
        return (
            f"{where}: the history was truncated: the state recorded {anchor.count} entries "
            f"(head {anchor.head[:12]}), {lost}"
        )
    if head is not None and count == anchor.count and head.hash != anchor.head:
        return (
            f"{where}: entry {count} is not the one the state recorded (hash {head.hash[:12]}, "
            f"recorded {anchor.head[:12]}): the history was rewritten"
        )
    return None


def check_tail(backend: StateBackend, state: State | None) -> None:
    """Raise HistoryError if the history cannot take another entry truthfully: its last line
    is unreadable, or it is shorter than (or differs from) what the state anchored."""
    head = read_head(backend)
    problem = tail_problem(state.history if state else None, head, backend.describe_history())
    if problem is not None:
        raise HistoryError(
            problem + ". Restore the missing entries (git, a copy of the state backend); "
            "`releasectl history --verify` shows the damage"
        )


@dataclass(frozen=True, slots=True)
class ChainProblem:
    line: int
    message: str


def verify_anchor(
    lines: Iterable[str],
    state: State | None,
    key: bytes | None,
) -> list[ChainProblem]:
    """Problems of the history against the state's anchor and, with a key, its signatures.
    Line 0 stands for the history as a whole."""
    anchor = state.history if state else None
    problems: list[ChainProblem] = []
    found_head: str | None = None
    total = 0
    for number, line in enumerate(lines, start=1):
        total = number
        try:
            fields = json.loads(line)
        except ValueError:
            continue  # the chain check reports it
        if not isinstance(fields, dict):
            continue
        seq = fields.get("seq")
        if anchor is not None and seq == anchor.count:
            found_head = str(fields.get("hash"))
        if key is None:
            continue
        sig = fields.get("sig")
        after = anchor is None or not isinstance(seq, int) or seq > anchor.count
        if sig is None:
            if after:
                problems.append(ChainProblem(number, "entry is not signed"))
        elif not hmac.compare_digest(str(sig), entry_signature(key, str(fields.get("hash")))):
            problems.append(ChainProblem(number, "signature does not match (wrong key or forged)"))
    if anchor is None or state is None:
        return problems
    if total < anchor.count:
        problems.append(
            ChainProblem(
                0,
                f"truncated: {total} entries, but the state recorded {anchor.count} "
                f"(head {anchor.head[:12]}); the last {anchor.count - total} are missing",
            )
        )
    elif anchor.count and found_head != anchor.head:
        problems.append(
            ChainProblem(
                0,
                f"entry {anchor.count} does not hash to the head the state recorded "
                f"({anchor.head[:12]}): the history was rewritten",
            )
        )
    if key is not None:
        expected = anchor_signature(key, state.env, state.lineage, anchor.count, anchor.head)
        if anchor.signature is None or not hmac.compare_digest(anchor.signature, expected):
            problems.append(
                ChainProblem(0, "the state's history anchor is not signed with this key")
            )
    return problems
