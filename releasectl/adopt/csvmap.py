"""The old framework's `migration_history.csv`, read into history entries.

The file either starts with a header row, whose columns are mapped by name (case and
punctuation ignored):

| field | column names |
|---|---|
| time | timestamp, time, date, datetime, applied_at, when |
| component | component, service |
| from | from, from_version, previous_version, old_version |
| to | to, to_version, version, new_version, target_version |
| result | status, result, outcome |
| actor | user, actor, applied_by, author, operator, who |
| event | event, action, operation |

and every other column is kept in the entry's `details`; or it has no header and four columns,
`timestamp,component,version,event`, as `migration-framework.sh` wrote it. One row is one
entry. The action and result come from the status column, else from the event
(`migration_started`, `migration_completed`, `migration_failed`, `version_updated`,
`rollback_started`, `rollback_completed`, `rollback_failed`, `backup_*`, `restore_*`); where a
row has only `version`, `from` is the version the component had reached before it. Times
without a zone are UTC. A row that cannot be read is an error naming its line and column.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from releasectl.errors import InputError, Location, ReleasectlError, bundle
from releasectl.util import timeutil

SEED_COLUMNS = ("timestamp", "component", "version", "event")
MAX_BYTES = 64 * 1024 * 1024

_NAMES: dict[str, tuple[str, ...]] = {
    "time": ("timestamp", "time", "date", "datetime", "appliedat", "when"),
    "component": ("component", "service"),
    "from": ("from", "fromversion", "previousversion", "oldversion"),
    "to": ("to", "toversion", "version", "newversion", "targetversion"),
    "result": ("status", "result", "outcome"),
    "actor": ("user", "actor", "appliedby", "author", "operator", "who"),
    "event": ("event", "action", "operation"),
}
_RESULTS: dict[str, str] = {
    **dict.fromkeys(("success", "succeeded", "successful", "completed", "complete"), "success"),
    **dict.fromkeys(("ok", "done", "applied", "updated", "passed"), "success"),
    **dict.fromkeys(("failed", "failure", "fail", "error", "errored"), "failed"),
    **dict.fromkeys(("rolledback", "reverted", "rollback"), "rolled_back"),
    **dict.fromkeys(("started", "running", "inprogress", "start", "begin"), "started"),
    **dict.fromkeys(("skipped", "skip"), "skipped"),
}
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y%m%d_%H%M%S")


@dataclass
class Row:
    """One imported history row, as the fields of a history entry."""

    line: int
    time: str
    component: str
    action: str
    result: str
    from_: int | str | None
    to: int | str | None
    actor: str
    details: dict[str, str] = field(default_factory=dict)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def read_history(path: Path, display: str) -> list[Row]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", location=Location(display)) from None
    if len(raw) > MAX_BYTES:
        raise InputError(f"larger than {MAX_BYTES} bytes", location=Location(display))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", location=Location(display)) from None
    records = list(csv.reader(io.StringIO(text)))
    numbered = [(n, r) for n, r in enumerate(records, start=1) if any(c.strip() for c in r)]
    if not numbered:
        return []
    first_line, first = numbered[0]
    columns = _header(first)
    if columns is not None:
        names, body = [c.strip() for c in first], numbered[1:]
    elif len(first) == len(SEED_COLUMNS):
        columns = {"time": 0, "component": 1, "to": 2, "event": 3}
        names, body = list(SEED_COLUMNS), numbered
    else:
        raise InputError(
            f"no header row naming the columns (and {len(first)} columns, not the four of "
            "timestamp,component,version,event)",
            location=Location(display, first_line),
        )
    rows: list[Row] = []
    errors: list[ReleasectlError] = []
    track = _Tracker()
    for number, record in body:
        if len(record) != len(names):
            errors.append(
                InputError(
                    f"{len(record)} columns where the header has {len(names)}",
                    location=Location(display, number),
                )
            )
            continue
        try:
            rows.append(_row(record, names, columns, number, display, track))
        except InputError as exc:
            errors.append(exc)
    if errors:
        raise bundle(errors)
    return rows


def _header(record: list[str]) -> dict[str, int] | None:
    found: dict[str, int] = {}
    for index, cell in enumerate(record):
        key = _norm(cell)
        for name, aliases in _NAMES.items():
            if key in aliases and name not in found:
                found[name] = index
    if "time" in found and "component" in found:
        return found
    return None


def _row(
    record: list[str],
    names: list[str],
    columns: dict[str, int],
    number: int,
    display: str,
    track: _Tracker,
) -> Row:
    def cell(name: str) -> str | None:
        index = columns.get(name)
        return record[index].strip() if index is not None else None

    def where(name: str) -> Location:
        return Location(display, number, names[columns[name]])

    component = cell("component") or ""
    if not component:
        raise InputError("empty component", location=where("component"))
    when = _time(cell("time") or "", where("time"))
    event = cell("event")
    action, result = _action_result(event, cell("result"), columns, where)
    from_ = _version(cell("from"))
    to = _version(cell("to"))
    if "from" not in columns:
        from_, to = track.derive(component, action, result, to)
    details = {
        names[i]: value.strip()
        for i, value in enumerate(record)
        if i not in columns.values() and value.strip()
    }
    if event:
        details["event"] = event
    return Row(
        line=number,
        time=when,
        component=component,
        action=action,
        result=result,
        from_=from_,
        to=to,
        actor=cell("actor") or "unknown",
        details=details,
    )


class _Tracker:
    """Derives `from` for a log that names only the version each event is about.

    The events of one step (started, completed, version_updated) share the version the
    component was at before the step; a rollback names the version it leaves when it starts
    and the one it reaches when it completes."""

    def __init__(self) -> None:
        self.reached: dict[str, int | str | None] = {}
        self.step: dict[str, tuple[str, int | str | None, int | str | None]] = {}

    def derive(
        self, component: str, action: str, result: str, version: int | str | None
    ) -> tuple[int | str | None, int | str | None]:
        last = self.step.get(component)
        if action == "down" and result == "started":
            from_, to = version, None
        elif last is not None and last[0] == action and (last[2] == version or last[2] is None):
            from_, to = last[1], version  # a later event of the same step
        else:
            start: int | str | None = 0 if isinstance(version, int) else None
            from_, to = self.reached.get(component, start), version
        self.step[component] = (action, from_, to)
        if result == "success" and to is not None:
            self.reached[component] = to
        if result in ("failed", "rolled_back"):
            self.step.pop(component, None)
        return from_, to


def _version(text: str | None) -> int | str | None:
    if text is None or not text:
        return None
    text = text.removeprefix("v") if re.fullmatch(r"v\d+", text) else text
    return int(text) if text.isdigit() else text


def _action_result(
    event: str | None,
    status: str | None,
    columns: dict[str, int],
    locate: Callable[[str], Location],
) -> tuple[str, str]:
    action = "up"
    result: str | None = None
    if event:
        key = event.strip().lower()
        family, _, phase = key.rpartition("_")
        if key == "version_updated":
            family, phase = "migration", "updated"
        if family in ("migration", "migrate", "upgrade", "apply", "up"):
            action = "up"
        elif family in ("rollback", "downgrade", "down", "revert"):
            action = "down"
        elif family in ("backup", "restore"):
            action = family
        else:
            raise InputError(
                f"unknown event {event!r} (expected migration_*, rollback_*, backup_*, "
                "restore_* or version_updated)",
                location=locate("event"),
            )
        result = _RESULTS.get(_norm(phase))
        if result is None and status is None:
            raise InputError(f"cannot tell the result of event {event!r}", location=locate("event"))
    if status:
        mapped = _RESULTS.get(_norm(status))
        if mapped is None:
            raise InputError(
                f"unknown status {status!r} (expected one of success, failed, rolled_back, "
                "started, skipped or a synonym)",
                location=locate("result"),
            )
        result = mapped
        if mapped == "rolled_back" and not event:
            action = "up"  # a migration that failed and was rolled back
    if result is None:
        if "result" not in columns and "event" not in columns:
            result = "success"  # a log of what was applied, nothing else
        else:
            raise InputError("no status and no event", location=locate("result"))
    return action, result


def _time(text: str, where: Location) -> str:
    if not text:
        raise InputError("empty time", location=where)
    moment: datetime | None = None
    if text.isdigit() and len(text) >= 9:
        moment = datetime.fromtimestamp(int(text), UTC)
    else:
        for fmt in _TIME_FORMATS:
            try:
                moment = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if moment is None:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise InputError(
                    f"{text!r} is not a time (YYYY-MM-DD HH:MM:SS, ISO 8601 or epoch seconds)",
                    location=where,
                ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the old log wrote no zone: read as UTC
    return timeutil.iso(moment)
