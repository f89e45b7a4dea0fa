"""Static checks of SQL migrations (validate / plan time: no connection).

Only what is truly wrong is reported: an up.sql without a statement, a script that never ends
(unterminated string, comment, dollar quote, trigger or routine body, parenthesis), a whitespace-
only down.sql, BEGIN/COMMIT inside a migration that releasectl already wraps in a transaction,
a statement that cannot run in a transaction without the `no-transaction` header, a verify.sql
that is not one query, a verify.sql that could fail with nothing able to undo the migration
(neither down.sql nor a scope), and a scope naming the history table.

The database dialect is not known at validate time (environments differ), so a script is
accepted when it is sound in at least one dialect.
"""

from __future__ import annotations

from pathlib import Path

from releasectl.clients.sql import DIALECTS, Dialect
from releasectl.errors import InputError, Location, ReleasectlError
from releasectl.models.workspace import SqlTarget as SqlSettings
from releasectl.targets.sql.script import (
    Script,
    SqlSyntaxError,
    header_problems,
    is_query,
    outside_transaction,
    parse,
    transaction_control,
)
from releasectl.util import safefiles
from releasectl.workspace.catalogue import Migration

HISTORY_TABLE = str(SqlSettings.model_fields["history_table"].default)

PARTS = ("up.sql", "down.sql", "verify.sql")
Found = list[tuple[int, str]]  # (line, message)
HEADER_HINT = (
    "start the file with `-- releasectl: no-transaction` to run it statement by statement "
    "without a transaction (see docs/sql.md)"
)


def read_part(path: Path, display: str | None = None) -> str:
    """A part's text, read through `safefiles` (no link out of the workspace, capped)."""
    text = safefiles.read_text(path, display)
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        shown = display or safefiles.display_of(str(path))
        raise InputError("a NUL byte: a SQL file is text", location=Location(shown, line))
    return text


def script_problems(script: Script, part: str, dialect: Dialect | None) -> Found:
    """(line, message) of what `script` may not do as `part`, run against `dialect` (None:
    either)."""
    found: Found = []
    if part == "verify.sql":
        if len(script.statements) != 1 or not is_query(script.statements[0]):
            line = script.statements[1].line if len(script.statements) > 1 else 1
            found.append((line, "verify.sql must be exactly one query (SELECT, WITH or VALUES)"))
        return found
    if not script.transactional:
        return found
    for statement in script.statements:
        control = transaction_control(statement)
        if control is not None:
            found.append(
                (
                    statement.line,
                    f"{control} inside a migration: releasectl runs each migration in one "
                    f"transaction with its history row; remove it, or {HEADER_HINT}",
                )
            )
            continue
        reason = outside_transaction(statement, dialect)
        if reason is not None:
            found.append((statement.line, f"{reason}; {HEADER_HINT}"))
    return found


def parse_checked(text: str, part: str, dialect: Dialect | None) -> tuple[Script | None, Found]:
    """Parse `text` as `dialect`, or when it is unknown as whichever dialect finds fewest
    problems (a statement only one dialect refuses is then still reported: it is either
    refused by that dialect or a syntax error in the other)."""
    best: tuple[Script | None, Found] | None = None
    for candidate in (dialect,) if dialect else DIALECTS:
        try:
            script = parse(text, candidate)
        except SqlSyntaxError as exc:
            result: tuple[Script | None, Found] = (None, [(exc.line, exc.message)])
        else:
            result = (script, script_problems(script, part, dialect))
        if best is None or _rank(result) < _rank(best):
            best = result
        if _rank(best) == (False, 0):
            break  # sound as it is: no dialect can find fewer problems
    assert best is not None
    return best


def _rank(result: tuple[Script | None, Found]) -> tuple[int, int]:
    return (result[0] is None, len(result[1]))


def problems(
    migration: Migration, dialect: Dialect | None = None, history_table: str = HISTORY_TABLE
) -> list[ReleasectlError]:
    """Everything wrong with one migration that can be told without a database (both dialects
    are tried where the environment's is unknown)."""
    errors: list[ReleasectlError] = []
    for part in PARTS:
        if part not in migration.files:
            continue
        where = f"{migration.rel}/{part}"
        try:
            text = read_part(migration.file(part), where)
        except ReleasectlError as exc:
            errors.append(exc)
            continue
        for line, message in header_problems(text):
            errors.append(InputError(message, location=Location(where, line)))
        script, found = parse_checked(text, part, dialect)
        errors.extend(InputError(m, location=Location(where, line)) for line, m in found)
        if script is None:
            continue
        if part == "up.sql" and not script.statements:
            errors.append(InputError("up.sql has no SQL statement", location=Location(where)))
        if part == "down.sql" and not text.strip():
            errors.append(
                InputError(
                    "down.sql is empty: write the statements that undo up.sql, or a comment "
                    "saying why nothing needs undoing",
                    location=Location(where),
                )
            )
    try:
        scope = migration.meta.scope or ()
    except ReleasectlError as exc:
        errors.append(exc)
        return errors
    if "verify.sql" in migration.files and "down.sql" not in migration.files and not scope:
        errors.append(
            InputError(
                "verify.sql runs after up.sql has committed, and without down.sql or a `scope` "
                "to restore, a failing check could not be rolled back: add down.sql (or a scope)",
                location=Location(f"{migration.rel}/verify.sql"),
            )
        )
    short = history_table.rsplit(".", maxsplit=1)[-1]
    for entry in scope:
        if entry in (history_table, short):
            errors.append(
                InputError(
                    f"scope names the history table {history_table}: it records the migrations "
                    "and is never restored from a step's backup",
                    location=Location(f"{migration.rel}/migration.yaml", None, "scope"),
                )
            )
    return errors
