"""Splitting SQL migrations into statements, and the static checks of `validate` (no database)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from releasectl.clients.sql import Dialect
from releasectl.targets.sql import checks as sql_checks
from releasectl.targets.sql.script import SqlSyntaxError, parse
from releasectl.targets.sql.target import truthy
from releasectl.workspace.catalogue import scan_component

REPO = Path(__file__).resolve().parent.parent


def words(text: str, dialect: Dialect = "sqlite") -> list[tuple[int, str]]:
    """(line, first word) of each statement."""
    script = parse(textwrap.dedent(text), dialect)
    return [(s.line, s.words[0] if s.words else "") for s in script.statements]


def test_split_respects_strings_comments_and_identifiers() -> None:
    text = """
        -- leading comment; not a statement
        CREATE TABLE "we;ird" (x TEXT DEFAULT 'a;b', y TEXT DEFAULT 'it''s; fine');
        /* a block; comment */ INSERT INTO "we;ird" VALUES ('1;2', '3');
        ;;
        SELECT 1 -- trailing; comment
        ;
        SELECT 2
    """
    dialects: tuple[Dialect, ...] = ("sqlite", "postgresql")
    for dialect in dialects:
        assert words(text, dialect) == [(3, "CREATE"), (4, "INSERT"), (6, "SELECT"), (8, "SELECT")]


def test_sqlite_trigger_bodies_stay_whole() -> None:
    text = """
        CREATE TABLE t (a INTEGER, [b;c] TEXT, `d;e` TEXT);
        CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
            UPDATE t SET a = a + 1 WHERE a = NEW.a;
            INSERT INTO t (a) SELECT CASE WHEN NEW.a > 0 THEN 1 ELSE 2 END;
        END;
        SELECT 1;
    """
    script = parse(textwrap.dedent(text), "sqlite")
    assert [s.line for s in script.statements] == [2, 3, 7]
    assert script.statements[1].text.endswith("END;")


def test_postgres_dollar_quotes_atomic_bodies_and_e_strings() -> None:
    text = """
        CREATE FUNCTION f() RETURNS trigger AS $fn$
        BEGIN
            RAISE NOTICE 'x; y';
            RETURN NEW;
        END;
        $fn$ LANGUAGE plpgsql;
        CREATE OR REPLACE PROCEDURE p(a INT) LANGUAGE sql BEGIN ATOMIC
            INSERT INTO t VALUES (CASE WHEN a > 0 THEN a ELSE 0 END);
            INSERT INTO t VALUES (2);
        END;
        SELECT E'it\\'s; escaped', $$x;y$$, $1;
        SELECT ARRAY[1, 2][1];
    """
    assert words(text, "postgresql") == [
        (2, "CREATE"),
        (8, "CREATE"),
        (12, "SELECT"),
        (13, "SELECT"),
    ]


def test_nested_comments_are_postgres_only() -> None:
    assert words("/* a /* b */ c; */ SELECT 1;", "postgresql") == [(1, "SELECT")]
    # SQLite ends the comment at the first */, as SQLite itself does
    assert words("/* a /* b */ SELECT 1;", "sqlite") == [(1, "SELECT")]


@pytest.mark.parametrize(
    ("text", "dialect", "line", "message"),
    [
        ("SELECT 1;\nSELECT 'open;\n", "sqlite", 2, "unterminated string"),
        ('SELECT "x;\n', "postgresql", 1, "unterminated quoted identifier"),
        ("SELECT 1;\n/* never closed", "postgresql", 2, "unterminated /* comment"),
        ("SELECT $a$ body;\n", "postgresql", 1, "unterminated dollar-quoted string $a$"),
        ("SELECT (1;\n", "sqlite", 1, "unclosed '('"),
        ("SELECT (1;\n", "postgresql", 1, "unclosed '('"),
        ("SELECT 1);\n", "sqlite", 1, "')' without a matching '('"),
        (
            "\nCREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\n",
            "sqlite",
            2,
            "statement never ends",
        ),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1;",
            "postgresql",
            1,
            "BEGIN without END",
        ),
    ],
)
def test_unbalanced_scripts_name_the_line(
    text: str, dialect: Dialect, line: int, message: str
) -> None:
    with pytest.raises(SqlSyntaxError) as caught:
        parse(text, dialect)
    assert caught.value.line == line
    assert message in caught.value.message


def test_header_options() -> None:
    script = parse("-- comment\n-- releasectl: no-transaction\n\nVACUUM;\n", "sqlite")
    assert not script.transactional
    # a header comment after the first statement is just a comment
    assert parse("SELECT 1;\n-- releasectl: no-transaction\n", "sqlite").transactional


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (1, True),
        (0, False),
        ("t", True),
        ("TRUE", True),
        ("f", False),
        (None, False),
        (2.5, True),
    ],
)
def test_truthy(value: object, expected: bool) -> None:
    assert truthy(value) is expected


# --- validate-time problems ------------------------------------------------------------------


def problems_of(root: Path, files: dict[str, str], number: int = 1) -> list[str]:
    path = root / "migrations" / "db" / f"{number:04d}_m"
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(textwrap.dedent(text).lstrip("\n"))
    found, errors = scan_component(root, "db", "sql", "migrations/db")
    assert not errors
    migration = found.get(number)
    assert migration is not None
    return [str(p) for p in sql_checks.problems(migration)]


def test_example_migrations_have_no_problems(tmp_path: Path) -> None:
    shutil.copytree(REPO / "migrations" / "database", tmp_path / "migrations" / "db")
    found, _ = scan_component(tmp_path, "db", "sql", "migrations/db")
    assert found.migrations
    for migration in found.migrations:
        assert sql_checks.problems(migration) == []


def test_problems_are_reported_with_file_and_line(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        {
            "up.sql": """
                -- releasectl: no-transactions
                CREATE TABLE a (id INTEGER);
                BEGIN;
                CREATE INDEX CONCURRENTLY a_idx ON a (id);
                COMMIT;
            """,
            "down.sql": "   \n",
            "verify.sql": "SELECT 1; SELECT 2;",
        },
    )
    where = "migrations/db/0001_m"
    assert found == [
        f"{where}/up.sql:1: unknown header option 'no-transactions' (known: no-transaction)",
        f"{where}/up.sql:3: BEGIN inside a migration: releasectl runs each migration in one "
        "transaction with its history row; remove it, or start the file with "
        "`-- releasectl: no-transaction` to run it statement by statement without a "
        "transaction (see docs/sql.md)",
        f"{where}/up.sql:4: CREATE INDEX CONCURRENTLY cannot run inside a transaction; start "
        "the file with `-- releasectl: no-transaction` to run it statement by statement "
        "without a transaction (see docs/sql.md)",
        f"{where}/up.sql:5: COMMIT inside a migration: releasectl runs each migration in one "
        "transaction with its history row; remove it, or start the file with "
        "`-- releasectl: no-transaction` to run it statement by statement without a "
        "transaction (see docs/sql.md)",
        f"{where}/down.sql: down.sql is empty: write the statements that undo up.sql, or a "
        "comment saying why nothing needs undoing",
        f"{where}/verify.sql:1: verify.sql must be exactly one query (SELECT, WITH or VALUES)",
    ]


def test_problems_empty_up_unbalanced_and_irreversible_verify(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        {"up.sql": "-- nothing here\n", "verify.sql": "SELECT 'unterminated"},
    )
    assert found == [
        "migrations/db/0001_m/up.sql: up.sql has no SQL statement",
        "migrations/db/0001_m/verify.sql:1: unterminated string",
        "migrations/db/0001_m/verify.sql: verify.sql runs after up.sql has committed, and "
        "without down.sql or a `scope` to restore, a failing check could not be rolled back: "
        "add down.sql (or a scope)",
    ]


def test_problems_accept_either_dialect_and_the_no_transaction_header(tmp_path: Path) -> None:
    assert (
        problems_of(
            tmp_path,
            {
                "up.sql": """
                    -- releasectl: no-transaction
                    CREATE INDEX CONCURRENTLY a_idx ON a (id);
                    DO $$ BEGIN RAISE NOTICE 'a;b'; END $$;
                    VACUUM;
                """,
                "down.sql": "-- nothing to undo: the index stays\n",
                "migration.yaml": "scope: [a]\n",
            },
        )
        == []
    )


def test_scope_naming_the_history_table(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        {"up.sql": "SELECT 1;", "migration.yaml": "scope: [users, releasectl_schema_history]\n"},
    )
    assert found == [
        "migrations/db/0001_m/migration.yaml: scope: scope names the history table "
        "releasectl_schema_history: it records the migrations and is never restored from a "
        "step's backup"
    ]


# --- the quiet-run fast path of the lexer gives what the token-by-token lexer gives --------

FRAGMENTS = [
    "CREATE",
    "TABLE",
    "IF",
    "NOT",
    "EXISTS",
    "t",
    "(",
    ")",
    ",",
    ";",
    " ",
    "\n",
    "\t",
    "id",
    "INTEGER",
    "PRIMARY",
    "KEY",
    "'a;b'",
    "'it''s'",
    "'open",
    '"q;x"',
    '"open',
    "`bt;`",
    "[br;]",
    "[open",
    "E'x\\'y'",
    "e'",
    "E",
    "e",
    "x'",
    "$$",
    "$f$",
    "$f$ body; $f$",
    "$1",
    "-- c;\n",
    "--",
    "-",
    "/* c; */",
    "/*",
    "/",
    "*",
    "1",
    "1.5",
    "1e3",
    "0x1F",
    "BEGIN",
    "END",
    "CASE",
    "WHEN",
    "FUNCTION",
    "PROCEDURE",
    "OR",
    "REPLACE",
    "ATOMIC",
    "TRIGGER",
    "é",
    "名前",
    "\U0001f600",
    ".",
    "=",
    "::",
    "@",
    "#",
    "\\",
    "?",
    "{",
    "}",
]


def _outcome(text: str, dialect: Dialect, *, skip: bool) -> object:
    from releasectl.targets.sql import script

    try:
        return script._split(text, dialect, skip=skip)
    except SqlSyntaxError as exc:
        return ("error", exc.message, exc.line)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_quiet_runs_change_nothing(dialect: Dialect) -> None:
    import random

    rng = random.Random(20261202)
    texts = [
        (REPO / "migrations" / "database" / m / part).read_text()
        for m in sorted(p.name for p in (REPO / "migrations" / "database").iterdir())
        for part in ("up.sql", "down.sql")
        if (REPO / "migrations" / "database" / m / part).exists()
    ]
    for _ in range(4000):
        texts.append(" ".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 40))))
        texts.append("".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 40))))
    for text in texts:
        assert _outcome(text, dialect, skip=True) == _outcome(text, dialect, skip=False), text
