"""The SQL target's connection layer: URLs, one connection per dialect, deadlines, errors.

Both dialects run in autocommit mode and the target issues BEGIN / COMMIT / ROLLBACK itself:
Python's sqlite3 module otherwise opens transactions implicitly and `executescript` commits
first, which would break "one migration, one transaction"; psycopg gets the same treatment
so the two dialects behave alike (and a `no-transaction` migration is simply statements run
without BEGIN).

Deadlines: before each statement the remaining time is handed to the database, which cancels
the statement itself: PostgreSQL through `statement_timeout`, SQLite through a progress
handler that interrupts the virtual machine (and `busy_timeout` for lock waits).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from releasectl.errors import TargetError
from releasectl.secrets import redact, register_url
from releasectl.util.deadline import Deadline, StepTimeout

if TYPE_CHECKING:
    import psycopg

Dialect = Literal["sqlite", "postgresql"]
DIALECTS: tuple[Dialect, ...] = ("sqlite", "postgresql")

CONNECT_TIMEOUT = 10  # seconds to reach PostgreSQL
SQLITE_BUSY_MS = 30_000  # lock wait when no deadline applies
PROGRESS_OPS = 2_000  # SQLite VM instructions between deadline checks
# A timeout handed to the database is renewed only when the deadline's remaining time fell
# this far below it (so a 10,000-statement migration does not double its round trips); a
# statement may thus run up to this long past the deadline.
RENEW_MS = 1_000
MAX_NOTICES = 200  # PostgreSQL notices kept for the history


def quote_ident(name: str) -> str:
    """An identifier, quoted; "schema.table" is quoted part by part."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def parse_url(url: str, root: Path) -> tuple[Dialect, str, Path | None]:
    """(dialect, display URL without password, SQLite file path or None)."""
    register_url(url)
    display = redact(url)
    if url.startswith("sqlite:"):
        if not url.startswith("sqlite:///") or "?" in url:
            raise TargetError(
                f"invalid SQLite URL {display!r}: use sqlite:///relative/path.db (relative to "
                "the workspace) or sqlite:////absolute/path.db"
            )
        rest = url[len("sqlite:///") :]
        if rest in ("", ":memory:", "/:memory:"):
            raise TargetError(f"invalid SQLite URL {display!r}: a database file path is needed")
        path = Path(rest)
        return "sqlite", display, path if path.is_absolute() else root / path
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        return "postgresql", display, None
    if re.fullmatch(r"[a-z][a-z0-9+.-]{0,30}", scheme) and ":" in url:
        what = f"unsupported database URL scheme {scheme!r}"
    else:
        what = "not a database URL"  # said without quoting it: it may be a bare secret
    raise TargetError(f"{what} (use sqlite:///PATH or postgresql://...)")


class Database:
    """One connection, autocommit, with explicit transactions and a per-statement deadline."""

    dialect: Dialect
    param: str  # the driver's placeholder
    display: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the row count the driver reports."""
        raise NotImplementedError

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def begin(self, *, write: bool = True) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    @property
    def broken(self) -> bool:
        """The connection was lost (a server restart, a cut network): open a new one."""
        return False

    def limit(self, deadline: Deadline | None) -> None:
        """Make the next statements stop when `deadline` passes; None: back to the defaults
        (call it when an operation ends so no deadline outlives its step)."""
        raise NotImplementedError

    def reset(self) -> None:
        """After a migration: no deadline, and the session settings a migration may have
        changed (outside a transaction, or with a plain SET) back to the target's."""
        self.limit(None)

    def is_error(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def is_timeout(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def describe(self, exc: BaseException) -> str:
        return redact(str(exc).strip())

    def take_notices(self) -> list[str]:
        return []

    def close(self) -> None:
        raise NotImplementedError

    def sql(self, text: str) -> str:
        """`text` with `?` placeholders turned into this driver's."""
        return text if self.param == "?" else text.replace("?", self.param)

    def fail(self, exc: BaseException, what: str, deadline: Deadline | None = None) -> TargetError:
        """The TargetError (or StepTimeout) to raise for a driver error during `what`."""
        if self.is_timeout(exc) or (deadline is not None and deadline.expired()):
            return StepTimeout(
                f"{what}: timed out (the deadline passed; the statement was stopped)"
            )
        return TargetError(f"{what}: {self.describe(exc)}")


class SqliteDatabase(Database):
    dialect: Dialect = "sqlite"
    param = "?"

    def __init__(self, path: Path, display: str) -> None:
        self.path = path
        self.display = display
        self._deadline: Deadline | None = None
        self._busy_ms = SQLITE_BUSY_MS
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: no implicit transactions; we BEGIN and COMMIT ourselves.
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_MS / 1000)
        except (OSError, sqlite3.Error) as exc:
            raise TargetError(f"cannot open {display}: {exc}") from exc
        self.conn.set_progress_handler(self._progress, PROGRESS_OPS)
        # Foreign keys on, as applications run and as PostgreSQL always is, so a portable
        # migration behaves the same on both. (Restores turn them off while they reload.)
        self.foreign_keys(True)

    def _progress(self) -> int:
        return 1 if self._deadline is not None and self._deadline.expired() else 0

    def foreign_keys(self, on: bool) -> bool:
        """Set PRAGMA foreign_keys (outside a transaction only); returns the previous value."""
        row = self.conn.execute("PRAGMA foreign_keys").fetchone()
        self.conn.execute(f"PRAGMA foreign_keys = {'ON' if on else 'OFF'}")
        return bool(row[0]) if row else False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = self.conn.execute(sql, params)
        try:
            return cur.rowcount
        finally:
            cur.close()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, params).fetchall())

    def begin(self, *, write: bool = True) -> None:
        # IMMEDIATE takes the write lock now: the version check and the migration that
        # follows see the same database.
        self.conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def limit(self, deadline: Deadline | None) -> None:
        # the progress handler stops running statements on time; busy_timeout bounds lock waits
        self._deadline = deadline
        remaining = deadline.remaining() if deadline else None
        busy = SQLITE_BUSY_MS if remaining is None else max(1, int(remaining * 1000))
        if busy > self._busy_ms or busy <= self._busy_ms - RENEW_MS:
            self.conn.execute(f"PRAGMA busy_timeout = {busy}")
            self._busy_ms = busy

    def reset(self) -> None:
        super().reset()
        if not self.in_transaction:
            self.conn.execute("PRAGMA query_only = OFF")
            self.foreign_keys(True)

    def is_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.Error)

    def is_timeout(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and str(exc) == "interrupted"

    def close(self) -> None:
        self.conn.close()


class PostgresDatabase(Database):
    dialect: Dialect = "postgresql"
    param = "%s"

    def __init__(self, url: str, display: str) -> None:
        import psycopg

        self.display = display
        self._notices: list[str] = []
        self._session_ms: int | None = None  # statement_timeout set for the session
        self._local_ms: int | None = None  # SET LOCAL in the current transaction
        kwargs: dict[str, Any] = {"autocommit": True, "application_name": "releasectl"}
        if "connect_timeout" not in url:
            kwargs["connect_timeout"] = CONNECT_TIMEOUT
        try:
            # prepare_threshold=None: never prepare; a migration's DDL would invalidate plans.
            self.conn: psycopg.Connection[Any] = psycopg.connect(
                url, prepare_threshold=None, **kwargs
            )
        except psycopg.Error as exc:
            raise TargetError(f"cannot connect to {display}: {redact(str(exc).strip())}") from exc
        self.conn.add_notice_handler(self._notice)

    def _notice(self, diag: psycopg.errors.Diagnostic) -> None:
        if len(self._notices) < MAX_NOTICES:
            self._notices.append(redact(f"{diag.severity}: {diag.message_primary}"))

    def take_notices(self) -> list[str]:
        notices, self._notices = self._notices, []
        return notices

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.conn.cursor() as cur:
            cur.execute(sql, params or None)
            return cur.rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params or None)
            return list(cur.fetchall())

    def begin(self, *, write: bool = True) -> None:
        self.execute("BEGIN" if write else "BEGIN READ ONLY")
        self._local_ms = None

    @property
    def broken(self) -> bool:
        return bool(self.conn.closed or self.conn.broken)

    @property
    def in_transaction(self) -> bool:
        from psycopg import pq

        return self.conn.info.transaction_status != pq.TransactionStatus.IDLE

    def commit(self) -> None:
        self._local_ms = None
        super().commit()

    def rollback(self) -> None:
        self._local_ms = None
        super().rollback()

    def limit(self, deadline: Deadline | None) -> None:
        if not self.in_transaction:
            self._local_ms = None  # SET LOCAL ended with the transaction that had it
        remaining = deadline.remaining() if deadline else None
        if remaining is None:
            if self._session_ms is not None and not self.in_transaction:
                self.execute("RESET statement_timeout")  # the role's or database's default
                self._session_ms = None
            return
        ms = max(1, int(remaining * 1000))
        if self.in_transaction:
            if self._local_ms is None or ms <= self._local_ms - RENEW_MS:
                self.execute(f"SET LOCAL statement_timeout = {ms}")
                self._local_ms = ms
        elif self._session_ms is None or ms <= self._session_ms - RENEW_MS:
            self.execute(f"SET statement_timeout = {ms}")
            self._session_ms = ms

    def reset(self) -> None:
        if not self.in_transaction and not self.conn.closed:
            self.execute("RESET ALL")  # search_path, statement_timeout, ... set by a migration
            self._session_ms = None
            self._local_ms = None

    def is_error(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.Error)

    def is_timeout(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.errors.QueryCanceled)

    def describe(self, exc: BaseException) -> str:
        import psycopg

        if not isinstance(exc, psycopg.Error) or exc.diag.message_primary is None:
            return redact(str(exc).strip())
        diag = exc.diag
        text = f"{diag.message_primary} (SQLSTATE {diag.sqlstate})"
        if diag.message_detail:
            text += f"; {diag.message_detail}"
        if diag.message_hint:
            text += f"; hint: {diag.message_hint}"
        return redact(re.sub(r"\s+", " ", text))

    def close(self) -> None:
        self.conn.close()


def connect(url: str, root: Path) -> Database:
    dialect, display, path = parse_url(url, root)
    if dialect == "sqlite":
        assert path is not None
        return SqliteDatabase(path, display)
    return PostgresDatabase(url, display)
