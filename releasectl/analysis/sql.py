"""SQL statements that destroy data, take heavy locks or break running clients, in the spirit
of squawk's rules (https://squawkhq.com/docs/rules), on SQLite and PostgreSQL.

Each statement of the part a step runs (`up.sql` for an up step, `down.sql` for a down step)
is split by the sql target's own splitter (so lines are the ones the target reports) and
parsed with sqlglot in the environment's dialect. A statement sqlglot cannot parse is noted,
not guessed at. Rules that only matter on PostgreSQL (lock levels, CONCURRENTLY, NOT VALID)
are skipped on SQLite, where a migration holds the database's one write lock anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from releasectl.clients.sql import Dialect
from releasectl.models.analysis import Severity, SqlFinding, StepAnalysis
from releasectl.targets.sql.checks import read_part
from releasectl.targets.sql.script import SqlSyntaxError, Statement, parse

if TYPE_CHECKING:
    from releasectl.analysis.base import StepInput

STATEMENT_CHARS = 200
READ = {"sqlite": "sqlite", "postgresql": "postgres"}


def analyze(item: StepInput) -> StepAnalysis | None:
    step, migration = item.step, item.migration
    if migration is None or step.action not in ("up", "down"):
        return None
    part = f"{step.action}.sql"
    out = StepAnalysis(
        index=item.index,
        component=step.component,
        type=step.type,
        action=step.action,
        migration=step.migration,
    )
    if part not in migration.files:
        return out
    dialect: Dialect = "sqlite" if item.dialect == "sqlite" else "postgresql"
    notes: list[str] = []
    if item.dialect is None:
        notes.append(
            "the database's dialect is not known (its URL is not set here): PostgreSQL's rules "
            "were applied"
        )
    where = f"{migration.rel}/{part}"
    try:
        script = parse(
            read_part(migration.file(part)), "sqlite" if dialect == "sqlite" else dialect
        )
    except (OSError, UnicodeDecodeError, SqlSyntaxError) as exc:
        return out.model_copy(update={"notes": [*notes, f"{where}: not analysed: {exc}"]})
    findings, more = lint(script.statements, where, dialect)
    data = list(item.rehearsed.observed_data) if item.rehearsed else []
    return out.model_copy(update={"sql": findings, "data": data, "notes": [*notes, *more]})


def lint(
    statements: tuple[Statement, ...], where: str, dialect: str
) -> tuple[list[SqlFinding], list[str]]:
    """The findings of a script's statements, and notes on what could not be parsed."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    findings: list[SqlFinding] = []
    notes: list[str] = []
    created: set[str] = set()  # tables the same part creates: locking them harms nobody
    for statement in statements:
        try:
            trees = [t for t in sqlglot.parse(statement.text, read=READ[dialect]) if t is not None]
        except ParseError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            notes.append(f"{where}:{statement.line}: not analysed (sqlglot: {first[:120]})")
            continue
        for tree in trees:
            if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "TABLE":
                created.add(_table_name(tree.this))
            for rule, severity, message in _rules(tree, dialect, created):
                findings.append(
                    SqlFinding(
                        rule=rule,
                        severity=severity,
                        file=where,
                        line=statement.line,
                        statement=_short(statement.text),
                        message=message,
                    )
                )
    return findings, notes


def _rules(tree: Any, dialect: str, created: set[str]) -> Iterator[tuple[str, Severity, str]]:
    from sqlglot import exp

    pg = dialect == "postgresql"
    if isinstance(tree, exp.Drop):
        kind = str(tree.args.get("kind") or "").upper()
        names = ", ".join(_table_name(t) for t in _dropped(tree)) or _table_name(tree.this)
        if kind == "TABLE":
            yield "ban-drop-table", "destructive", f"drops table {names} and every row in it"
        elif kind in ("DATABASE", "SCHEMA"):
            yield f"ban-drop-{kind.lower()}", "destructive", f"drops {kind.lower()} {names}"
        elif kind == "INDEX" and pg and not tree.args.get("concurrently"):
            yield (
                "require-concurrent-index-deletion",
                "locking",
                f"DROP INDEX {names} without CONCURRENTLY blocks reads and writes of its table",
            )
        return
    if isinstance(tree, exp.TruncateTable):
        names = ", ".join(_table_name(t) for t in tree.expressions)
        yield "ban-truncate", "destructive", f"deletes every row of {names}"
        return
    if isinstance(tree, exp.Delete) and not tree.args.get("where"):
        yield (
            "delete-without-where",
            "destructive",
            f"deletes every row of {_table_name(tree.this)}",
        )
        return
    if isinstance(tree, exp.Update) and not tree.args.get("where"):
        yield (
            "update-without-where",
            "destructive",
            f"overwrites {', '.join(_assigned(tree))} in every row of {_table_name(tree.this)}",
        )
        return
    if isinstance(tree, exp.Create) and isinstance(tree.this, exp.Index):
        table = _table_name(tree.this.args.get("table"))
        if pg and not tree.args.get("concurrently") and table not in created:
            yield (
                "require-concurrent-index-creation",
                "locking",
                f"CREATE INDEX on {table} without CONCURRENTLY blocks writes to it while it builds",
            )
        return
    if isinstance(tree, exp.Alter):
        table = _table_name(tree.this)
        fresh = table in created
        not_valid = bool(tree.args.get("not_valid"))
        for action in tree.args.get("actions") or []:
            yield from _alter_rules(action, table, pg, fresh, not_valid)


def _alter_rules(
    action: Any, table: str, pg: bool, fresh: bool, not_valid: bool
) -> Iterator[tuple[str, Severity, str]]:
    from sqlglot import exp

    if isinstance(action, exp.Drop):
        kind = str(action.args.get("kind") or "").upper()
        dropped = _dropped(action)
        names = ", ".join(c.sql() for c in dropped) or (action.this.sql() if action.this else "?")
        if kind == "COLUMN" or (not kind and dropped):
            yield "ban-drop-column", "destructive", f"drops column {table}.{names} and its values"
        elif kind == "CONSTRAINT":
            yield "drop-constraint", "breaking", f"drops constraint {names} of {table}"
    elif isinstance(action, exp.AlterColumn):
        column = action.this.sql()
        if action.args.get("dtype") is not None:
            dtype = action.args["dtype"].sql()
            yield (
                "changing-column-type",
                "locking",
                f"changes {table}.{column} to {dtype}: the table is rewritten under an "
                "exclusive lock, and clients reading the old type may break",
            )
        if action.args.get("allow_null") is False and pg and not fresh:
            yield (
                "adding-not-nullable-field",
                "locking",
                f"SET NOT NULL on {table}.{column} scans the whole table under an exclusive "
                "lock (add a CHECK (... IS NOT NULL) NOT VALID constraint, validate it, then "
                "set NOT NULL)",
            )
    elif isinstance(action, exp.ColumnDef):
        constraints = [c.args.get("kind") for c in action.args.get("constraints") or []]
        not_null = any(
            isinstance(c, exp.NotNullColumnConstraint) and not c.args.get("allow_null")
            for c in constraints
        )
        default = any(isinstance(c, exp.DefaultColumnConstraint) for c in constraints)
        if not_null and not default and not fresh:
            yield (
                "adding-required-field",
                "breaking",
                f"adds {table}.{action.this.sql()} NOT NULL without a DEFAULT: fails when "
                f"{table} has rows, and inserts by clients that do not know it fail",
            )
    elif isinstance(action, exp.AlterRename):
        yield (
            "renaming-table",
            "breaking",
            f"renames {table} to {_table_name(action.this)}: clients using the old name break",
        )
    elif isinstance(action, exp.RenameColumn):
        yield (
            "renaming-column",
            "breaking",
            f"renames {table}.{action.this.sql()} to {action.args['to'].sql()}: clients using "
            "the old name break",
        )
    elif isinstance(action, exp.AddConstraint) and pg and not fresh:
        text = action.sql(dialect="postgres").upper()
        if not_valid or "NOT VALID" in text:
            return
        if "FOREIGN KEY" in text:
            yield (
                "adding-foreign-key-constraint",
                "locking",
                f"a foreign key on {table} without NOT VALID checks every row while it locks "
                "both tables",
            )
        elif "CHECK" in text:
            yield (
                "constraint-missing-not-valid",
                "locking",
                f"a CHECK constraint on {table} without NOT VALID scans the table under lock",
            )


def _dropped(node: Any) -> list[Any]:
    """What a DROP names (sqlglot keeps it under `tables`, or `expressions`)."""
    return list(node.args.get("tables") or node.expressions or [])


def _table_name(node: Any) -> str:
    from sqlglot import exp

    if node is None:
        return "?"
    if isinstance(node, exp.Table):
        parts = [p for p in (node.args.get("db"), node.this) if p is not None]
        return ".".join(p.name if hasattr(p, "name") else str(p) for p in parts)
    if isinstance(node, exp.Schema):
        return _table_name(node.this)
    return str(node.name if hasattr(node, "name") else node)


def _assigned(tree: Any) -> list[str]:
    return [str(e.this.sql()) for e in tree.expressions if hasattr(e, "this")] or ["columns"]


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= STATEMENT_CHARS else flat[: STATEMENT_CHARS - 3] + "..."
