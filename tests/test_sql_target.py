"""The sql target against real SQLite files and real PostgreSQL databases: up, down, verify,
the history table, transactional failure, rollback through down.sql, timeouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasectl.errors import TargetError
from releasectl.targets.base import Failure
from releasectl.targets.sql import checks as sql_checks
from releasectl.util.deadline import Deadline, StepTimeout
from tests.test_sql_support import (
    HISTORY,
    StepFailed,
    apply,
    copy_example,
    history_rows,
    migration,
    open_target,
    pick_db_url,
    snapshot,
    sql,
    step,
    write_migration,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    return pick_db_url(request)


EXAMPLE_TABLES = {"users", "roles", "user_roles", "oauth_clients", "sessions", "audit_log"}


def tables(url: str, root: Path) -> set[str]:
    if url.startswith("sqlite"):
        rows = sql(url, root, "SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = sql(url, root, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r[0] for r in rows}


def test_example_migration_up_down_up(tmp_path: Path, db_url: str) -> None:
    copy_example(tmp_path)
    target = open_target(tmp_path, db_url)
    try:
        out = apply(target, "up", 1)
        assert out.startswith("up.sql: 10 statements")
        assert tables(db_url, tmp_path) == EXAMPLE_TABLES | {HISTORY}
        assert sql(db_url, tmp_path, "SELECT name FROM roles ORDER BY id") == [
            ("admin",),
            ("operator",),
            ("viewer",),
        ]
        apply(target, "down", 1)
        assert tables(db_url, tmp_path) == {HISTORY}
        apply(target, "up", 1)
        assert tables(db_url, tmp_path) == EXAMPLE_TABLES | {HISTORY}
        assert history_rows(db_url, tmp_path) == [
            (1, 1, "up", 1),
            (2, 1, "down", 0),
            (3, 1, "up", 1),
        ]
        rows = sql(
            db_url,
            tmp_path,
            f"SELECT component, migration, checksum, applied_by FROM {HISTORY} ORDER BY 1",
        )
        assert rows[0] == ("db", "0001_initial_schema", migration(target, 1).checksum, "tester")
    finally:
        target.close()


def test_sqlite_relative_and_absolute_urls(tmp_path: Path) -> None:
    copy_example(tmp_path)
    relative = open_target(tmp_path, "sqlite:///nested/dir/app.db")
    apply(relative, "up", 1)
    relative.close()
    assert (tmp_path / "nested" / "dir" / "app.db").is_file()
    absolute_path = tmp_path / "elsewhere" / "abs.db"
    absolute = open_target(tmp_path, f"sqlite:///{absolute_path}")
    assert f"sqlite:///{absolute_path}".startswith("sqlite:////")
    apply(absolute, "up", 1)
    absolute.close()
    assert absolute_path.is_file()


def test_bad_urls_are_clear(tmp_path: Path) -> None:
    copy_example(tmp_path)
    for url, words in [
        ("sqlite://relative.db", "sqlite:///relative/path.db"),
        ("sqlite:///:memory:", "a database file path is needed"),
        ("mysql://localhost/db", "unsupported database URL scheme 'mysql'"),
    ]:
        target = open_target(tmp_path, url)
        with pytest.raises(TargetError, match=words):
            target.check(None, None)


def test_failure_half_way_leaves_nothing_behind(tmp_path: Path, db_url: str) -> None:
    copy_example(tmp_path)
    write_migration(
        tmp_path,
        2,
        "broken",
        {
            "up.sql": """
                CREATE TABLE api_keys (id INTEGER PRIMARY KEY, owner INTEGER NOT NULL);
                INSERT INTO roles (id, name, description) VALUES (4, 'auditor', 'Reads logs');
                UPDATE users SET display_name = 'changed';
                ALTER TABLE users ADD COLUMN locale VARCHAR(10);
                INSERT INTO no_such_table VALUES (1);
                CREATE TABLE never (id INTEGER);
            """,
            "down.sql": "DROP TABLE api_keys;\nDELETE FROM roles WHERE id = 4;\n",
        },
    )
    target = open_target(tmp_path, db_url)
    try:
        apply(target, "up", 1)
        sql(
            db_url,
            tmp_path,
            "INSERT INTO users (id, email, display_name) VALUES (1, 'a@example.com', 'Alice')",
            "INSERT INTO user_roles (user_id, role_id) VALUES (1, 1)",
        )
        before = snapshot(db_url, tmp_path)
        with pytest.raises(StepFailed) as caught:
            apply(target, "up", 2)
        error = caught.value.error
        assert isinstance(error, TargetError)
        assert str(error).startswith("migrations/db/0002_broken/up.sql:5: statement 5 failed")
        assert "no_such_table" in str(error)
        assert "rolled back" in str(error)
        assert caught.value.rollback.startswith("the step's transaction was rolled back")
        assert snapshot(db_url, tmp_path) == before
        assert history_rows(db_url, tmp_path) == [(1, 1, "up", 1)]
    finally:
        target.close()


def test_failing_verify_rolls_back_through_down_sql(tmp_path: Path, db_url: str) -> None:
    copy_example(tmp_path)
    write_migration(
        tmp_path,
        2,
        "locale",
        {
            "up.sql": """
                ALTER TABLE users ADD COLUMN locale VARCHAR(10) DEFAULT 'en';
                INSERT INTO roles (id, name, description) VALUES (4, 'auditor', 'Reads logs');
            """,
            "down.sql": """
                DELETE FROM roles WHERE id = 4;
                ALTER TABLE users DROP COLUMN locale;
            """,
            "verify.sql": "SELECT COUNT(*) = 99 FROM roles",
        },
    )
    target = open_target(tmp_path, db_url)
    try:
        apply(target, "up", 1)
        sql(db_url, tmp_path, "INSERT INTO users (id, email, display_name) VALUES (7, 'b@x', 'B')")
        before = snapshot(db_url, tmp_path, history=False)
        with pytest.raises(StepFailed) as caught:
            apply(target, "up", 2)
        assert "verify.sql: the first column of the first row is" in str(caught.value.error)
        assert str(caught.value.error).startswith("migrations/db/0002_locale/verify.sql:1")
        assert caught.value.rollback == "ran down.sql"
        assert snapshot(db_url, tmp_path, history=False) == before
        # the history tells the truth: the up committed, the down undid it
        assert history_rows(db_url, tmp_path) == [
            (1, 1, "up", 1),
            (2, 2, "up", 2),
            (3, 2, "down", 1),
        ]
        target.check(step("up", 2, target), migration(target, 2))  # back at version 1
    finally:
        target.close()


def test_verify_truthiness(tmp_path: Path, db_url: str) -> None:
    copy_example(tmp_path)
    (tmp_path / "migrations/db/0001_initial_schema/verify.sql").write_text(
        "SELECT CASE WHEN COUNT(*) = 3 THEN 't' ELSE 'f' END FROM roles -- text 't' is true\n"
    )
    target = open_target(tmp_path, db_url)
    try:
        apply(target, "up", 1)
    finally:
        target.close()


def test_verify_sql_without_rows_fails(tmp_path: Path, db_url: str) -> None:
    copy_example(tmp_path)
    (tmp_path / "migrations/db/0001_initial_schema/verify.sql").write_text(
        "SELECT 1 FROM roles WHERE 0 = 1\n"
    )
    target = open_target(tmp_path, db_url)
    try:
        with pytest.raises(StepFailed) as caught:
            apply(target, "up", 1)
        assert "verify.sql returned no rows" in str(caught.value.error)
        assert caught.value.rollback == "ran down.sql"
        assert tables(db_url, tmp_path) == {HISTORY}
    finally:
        target.close()


def test_verify_sql_runs_read_only(tmp_path: Path, postgres_url: str) -> None:
    copy_example(tmp_path)
    (tmp_path / "migrations/db/0001_initial_schema/verify.sql").write_text(
        "WITH gone AS (DELETE FROM roles RETURNING id) SELECT COUNT(*) = 3 FROM gone\n"
    )
    target = open_target(tmp_path, postgres_url)
    try:
        with pytest.raises(StepFailed) as caught:
            apply(target, "up", 1)
        assert "read-only transaction" in str(caught.value.error)
        assert tables(postgres_url, tmp_path) == {HISTORY}
    finally:
        target.close()


def test_history_precheck_names_both_versions(tmp_path: Path, db_url: str) -> None:
    copy_example(tmp_path)
    write_migration(tmp_path, 2, "more", {"up.sql": "CREATE TABLE t2 (id INTEGER);\n"})
    target = open_target(tmp_path, db_url)
    try:
        with pytest.raises(TargetError) as caught:
            target.check(step("up", 2, target), migration(target, 2))
        text = str(caught.value)
        assert "the database says version 0" in text
        assert f"no rows in {HISTORY}" in text
        assert "the recorded state says 1" in text
        apply(target, "up", 1)
        with pytest.raises(
            TargetError, match=r"the database says version 1 .*recorded state says 0"
        ):
            target.check(step("up", 1, target), migration(target, 1))
        # run re-checks inside its transaction: nothing runs against the wrong version
        with pytest.raises(TargetError, match="the database is at version 1, not 0"):
            target.run(step("up", 1, target), migration(target, 1), Deadline.after(5))
        assert history_rows(db_url, tmp_path) == [(1, 1, "up", 1)]
    finally:
        target.close()


def test_components_sharing_a_database_keep_their_own_versions(tmp_path: Path, db_url: str) -> None:
    copy_example(tmp_path)
    first = open_target(tmp_path, db_url)
    apply(first, "up", 1)
    first.close()
    other = open_target(tmp_path, db_url)
    other.ctx.component = "other"
    try:
        # the history of "db" does not make "other" look applied
        other.check(step("up", 1, other), migration(other, 1))
    finally:
        other.close()


def test_timeout_stops_the_statement_and_rolls_back(tmp_path: Path, db_url: str) -> None:
    slow = (
        "SELECT pg_sleep(30);"
        if db_url.startswith("postgres")
        else "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT count(*) FROM c;"
    )
    write_migration(
        tmp_path,
        1,
        "slow",
        {"up.sql": f"CREATE TABLE before_sleep (id INTEGER);\n{slow}\n", "down.sql": "SELECT 1;\n"},
    )
    target = open_target(tmp_path, db_url)
    try:
        s, m = step("up", 1, target), migration(target, 1)
        import time

        started = time.monotonic()
        with pytest.raises(StepTimeout) as caught:
            target.run(s, m, Deadline.after(0.5))
        assert time.monotonic() - started < 5
        assert str(caught.value).startswith("migrations/db/0001_slow/up.sql:2: statement 2")
        assert "timed out" in str(caught.value)
        assert "before_sleep" not in tables(db_url, tmp_path)
        assert target.rollback(s, m, None, Failure("run", caught.value)).startswith(
            "the step's transaction was rolled back"
        )
        # the deadline does not outlive the step: the connection works normally afterwards
        assert target.db.query("SELECT 1") == [(1,)]
    finally:
        target.close()


def test_timeout_of_verify(tmp_path: Path, db_url: str) -> None:
    copy_example(tmp_path)
    (tmp_path / "migrations/db/0001_initial_schema/verify.sql").write_text(
        "SELECT pg_sleep(30) IS NULL\n"
        if db_url.startswith("postgres")
        else "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT count(*) > 0 FROM c\n"
    )
    target = open_target(tmp_path, db_url)
    try:
        s, m = step("up", 1, target), migration(target, 1)
        target.run(s, m, Deadline.after(10))
        with pytest.raises(StepTimeout, match=r"verify\.sql"):
            target.verify(s, m, Deadline.after(0.3))
        assert target.rollback(s, m, None, Failure("verify", StepTimeout("x"))) == "ran down.sql"
    finally:
        target.close()


def test_sqlite_trigger_bodies_and_comments_split_correctly(tmp_path: Path) -> None:
    write_migration(
        tmp_path,
        1,
        "triggers",
        {
            "up.sql": """
                -- a comment; with a semicolon
                CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT DEFAULT 'a;b');
                CREATE TABLE log (msg TEXT);
                /* block; comment */
                CREATE TRIGGER items_log AFTER INSERT ON items BEGIN
                    INSERT INTO log (msg) VALUES ('inserted; ' || NEW.name);
                    INSERT INTO log (msg) VALUES ('twice');
                END;
                INSERT INTO items (name) VALUES ('x');
            """,
            "down.sql": "DROP TABLE items;\nDROP TABLE log;\n",
            "verify.sql": "SELECT COUNT(*) = 2 FROM log",
        },
    )
    target = open_target(tmp_path, "sqlite:///t.db")
    try:
        assert apply(target, "up", 1).startswith("up.sql: 4 statements")
        assert sql("sqlite:///t.db", tmp_path, "SELECT msg FROM log ORDER BY rowid") == [
            ("inserted; x",),
            ("twice",),
        ]
    finally:
        target.close()


def test_postgres_routines_and_notices(tmp_path: Path, postgres_url: str) -> None:
    write_migration(
        tmp_path,
        1,
        "routines",
        {
            "up.sql": """
                CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
                CREATE FUNCTION bump(k TEXT) RETURNS INTEGER AS $body$
                BEGIN
                    INSERT INTO counters VALUES (k, 1)
                        ON CONFLICT (name) DO UPDATE SET n = counters.n + 1;
                    RETURN (SELECT n FROM counters WHERE name = k);
                END;
                $body$ LANGUAGE plpgsql;
                CREATE FUNCTION twice(a INTEGER) RETURNS INTEGER LANGUAGE sql
                BEGIN ATOMIC
                    SELECT CASE WHEN a > 0 THEN a * 2 ELSE 0 END;
                END;
                DO $$ BEGIN RAISE NOTICE 'bumped to %', bump('x;y'); END $$;
                SELECT '100%' AS literal_percent;
            """,
            "down.sql": "DROP FUNCTION twice;\nDROP FUNCTION bump;\nDROP TABLE counters;\n",
            "verify.sql": "SELECT twice(2) = 4 AND (SELECT n FROM counters WHERE name = 'x;y') = 1",
        },
    )
    target = open_target(tmp_path, postgres_url)
    try:
        out = apply(target, "up", 1)
        first, *notices = out.splitlines()
        assert first.startswith("up.sql: 5 statements in ")
        assert notices == ["NOTICE: bumped to 1"]
        apply(target, "down", 1)
        assert tables(postgres_url, tmp_path) == {HISTORY}
    finally:
        target.close()


def test_no_transaction_header(tmp_path: Path, postgres_url: str) -> None:
    copy_example(tmp_path)
    index = "CREATE INDEX CONCURRENTLY users_name_idx ON users (display_name);\n"
    write_migration(
        tmp_path, 2, "index", {"up.sql": index, "down.sql": "DROP INDEX users_name_idx;\n"}
    )
    target = open_target(tmp_path, postgres_url)
    try:
        apply(target, "up", 1)
        problems = sql_checks.problems(migration(target, 2), "postgresql")
        assert [str(p) for p in problems] == [
            "migrations/db/0002_index/up.sql:1: CREATE INDEX CONCURRENTLY cannot run inside a "
            "transaction; start the file with `-- releasectl: no-transaction` to run it "
            "statement by statement without a transaction (see docs/sql.md)"
        ]
        with pytest.raises(TargetError, match="CONCURRENTLY cannot run inside a transaction"):
            target.check(step("up", 2, target), migration(target, 2))
    finally:
        target.close()
    (tmp_path / "migrations/db/0002_index/up.sql").write_text(
        "-- releasectl: no-transaction\n" + index
    )
    target = open_target(tmp_path, postgres_url)
    try:
        assert sql_checks.problems(migration(target, 2), "postgresql") == []
        assert "(no transaction)" in apply(target, "up", 2)
        assert sql(
            postgres_url,
            tmp_path,
            "SELECT indexname FROM pg_indexes WHERE indexname = 'users_name_idx'",
        )
        assert history_rows(postgres_url, tmp_path)[-1] == (2, 2, "up", 2)
    finally:
        target.close()


def test_no_transaction_failure_reports_what_stays(tmp_path: Path, db_url: str) -> None:
    write_migration(
        tmp_path,
        1,
        "partial",
        {
            "up.sql": """
                -- releasectl: no-transaction
                CREATE TABLE first (id INTEGER);
                CREATE TABLE second (id INTEGER);
                INSERT INTO missing VALUES (1);
            """,
            "down.sql": "DROP TABLE second;\nDROP TABLE first;\n",
        },
    )
    target = open_target(tmp_path, db_url)
    try:
        with pytest.raises(StepFailed) as caught:
            apply(target, "up", 1)
        assert "statements 1-2 of it had been committed and stay" in caught.value.rollback
        assert tables(db_url, tmp_path) == {"first", "second"}  # and no history row
    finally:
        target.close()


def test_run_refuses_transaction_control(tmp_path: Path, db_url: str) -> None:
    write_migration(tmp_path, 1, "commit", {"up.sql": "CREATE TABLE a (id INTEGER);\nCOMMIT;\n"})
    target = open_target(tmp_path, db_url)
    try:
        with pytest.raises(TargetError, match=r"up.sql:2: COMMIT inside a migration"):
            target.run(step("up", 1, target), migration(target, 1), Deadline.after(5))
        assert "a" not in tables(db_url, tmp_path)
    finally:
        target.close()


def test_verify_failure_without_down_or_scope_cannot_roll_back(tmp_path: Path) -> None:
    write_migration(tmp_path, 1, "oneway", {"up.sql": "CREATE TABLE a (id INTEGER);\n"})
    target = open_target(tmp_path, "sqlite:///x.db")
    try:
        s, m = step("up", 1, target), migration(target, 1)
        target.run(s, m, Deadline.after(5))
        with pytest.raises(TargetError, match=r"there is no down\.sql and no scoped backup"):
            target.rollback(s, m, None, Failure("verify", TargetError("bad")))
    finally:
        target.close()


def test_unreachable_postgres_is_a_clear_error(tmp_path: Path) -> None:
    copy_example(tmp_path)
    target = open_target(tmp_path, "postgresql://nobody:s3cretpw@127.0.0.1:9/none")
    with pytest.raises(TargetError) as caught:
        target.check(None, None)
    text = str(caught.value)
    assert text.startswith("db: cannot connect to postgresql://nobody:***@127.0.0.1:9/none")
    assert "s3cretpw" not in text


def test_no_transaction_migration_cannot_leave_a_transaction_open(
    tmp_path: Path, db_url: str
) -> None:
    write_migration(
        tmp_path,
        1,
        "open",
        {"up.sql": "-- releasectl: no-transaction\nBEGIN;\nCREATE TABLE a (id INTEGER);\n"},
    )
    target = open_target(tmp_path, db_url)
    try:
        with pytest.raises(TargetError, match="ended with a transaction still open"):
            target.run(step("up", 1, target), migration(target, 1), Deadline.after(5))
        assert tables(db_url, tmp_path) == set()
    finally:
        target.close()


def test_session_settings_of_a_migration_do_not_stick(tmp_path: Path) -> None:
    write_migration(
        tmp_path,
        1,
        "fk_off",
        {
            "up.sql": """
                -- releasectl: no-transaction
                PRAGMA foreign_keys = OFF;
                CREATE TABLE parent (id INTEGER PRIMARY KEY);
                CREATE TABLE child (parent INTEGER REFERENCES parent (id));
            """
        },
    )
    target = open_target(tmp_path, "sqlite:///fk.db")
    try:
        target.run(step("up", 1, target), migration(target, 1), Deadline.after(5))
        assert target.db.query("PRAGMA foreign_keys") == [(1,)]
    finally:
        target.close()
