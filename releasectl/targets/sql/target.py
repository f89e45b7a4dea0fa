"""The `sql` target: SQLite and PostgreSQL migrations (`up.sql`, `down.sql`, `verify.sql`).

Each part runs in ONE transaction together with its row in the database's own history table
(`history_table`), so a failure half-way leaves nothing behind and the table never disagrees
with what happened. The database's version is checked against the recorded state before a
step and inside its transaction. See docs/sql.md for the rules (transactions, the
`no-transaction` header, timeouts, backups, rollback).
"""

from __future__ import annotations

import contextlib
import time
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

from releasectl.clients.sql import Database, Dialect, connect, parse_url
from releasectl.errors import Location, ReleasectlError, TargetError
from releasectl.models.workspace import SqlTarget as SqlSettings
from releasectl.targets.base import BackupInfo, BaseTarget, Failure
from releasectl.targets.sql import history
from releasectl.targets.sql.checks import HISTORY_TABLE, parse_checked, read_part
from releasectl.targets.sql.frames import FORMAT, FrameReader
from releasectl.targets.sql.script import Script
from releasectl.util import failpoints
from releasectl.util.deadline import Deadline

if TYPE_CHECKING:
    from releasectl.models.plan import Step
    from releasectl.workspace.catalogue import Migration

TRUE_TEXT = frozenset({"t", "true", "1", "y", "yes", "on"})


class SqlTarget(BaseTarget):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._db: Database | None = None
        self._actor: str | None = None
        # statements a `no-transaction` part committed before it failed, per migration id
        self._committed: dict[str, int] = {}

    # --- settings and connection -----------------------------------------------------------

    @property
    def settings(self) -> SqlSettings:
        if not isinstance(self.ctx.settings, SqlSettings):
            raise TargetError(f"{self.ctx.component}: no sql target settings")
        return self.ctx.settings

    @property
    def table(self) -> str:
        if isinstance(self.ctx.settings, SqlSettings):
            return self.ctx.settings.history_table
        return HISTORY_TABLE

    @property
    def db(self) -> Database:
        if self._db is not None and self._db.broken:  # lost mid-step: a rollback reconnects
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None
        if self._db is None:
            try:
                self._db = connect(self.settings.url, self.ctx.root)
            except TargetError as exc:
                exc.message = f"{self.ctx.component}: {exc.message}"
                raise
        return self._db

    def _dialect_hint(self) -> Dialect | None:
        if not isinstance(self.ctx.settings, SqlSettings):
            return None
        try:
            return parse_url(self.ctx.settings.url, self.ctx.root)[0]
        except TargetError:
            return None

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None

    def _applied_by(self) -> str:
        if self._actor is None:
            from releasectl.util.actor import actor

            self._actor = actor(self.ctx.environ or None)
        return self._actor

    def _where(self) -> str:
        return f"{self.ctx.component} ({self.db.display})"

    # --- static checks ---------------------------------------------------------------------

    # --- pre-check -------------------------------------------------------------------------

    def check(self, step: Step | None, migration: Migration | None) -> None:
        db = self.db  # connecting is the reachability check
        if step is None:
            return
        if step.action in ("up", "down"):
            migration = self._need(step, migration)
            self._script(migration, f"{step.action}.sql")
            if step.action == "up" and "verify.sql" in migration.files:
                self._script(migration, "verify.sql")  # refused now, not after the commit
        row = history.latest(db, self.table, self.ctx.component)
        have = 0 if row is None else row.schema_version
        if have != step.from_:
            last = f"last: {row.describe()}" if row else f"no rows in {self.table}"
            raise TargetError(
                f"{self._where()}: the database says version {have} ({last}), the recorded state "
                f"says {step.from_}. The database was changed outside releasectl, or the state "
                f"belongs to another database: compare the {self.table} table with "
                "`releasectl status`, and fix whichever is wrong before applying"
            )

    def recorded_version(self) -> int | None:
        """The `schema_version` of the component's latest history row (None: no row)."""
        row = history.latest(self.db, self.table, self.ctx.component)
        return None if row is None else row.schema_version

    def stamp(self, version: int, migration: Migration | None) -> None:
        """Record in the history table that the database is at `version` without running
        anything (`baseline`, `import-legacy`): a `baseline` row, in its own transaction."""
        try:
            history.stamp(
                self.db, self.table, self.ctx.component, version, migration, self._applied_by()
            )
        except Exception as exc:
            raise self._failure(exc, self.table, Deadline.after(None), rolled_back=True) from exc

    def _need(self, step: Step, migration: Migration | None) -> Migration:
        if migration is None:
            raise TargetError(f"{self.ctx.component}: step {step.action} has no migration")
        return migration

    def _script(self, migration: Migration, part: str) -> Script:
        where = f"{migration.rel}/{part}"
        if part not in migration.files:
            raise TargetError(f"{migration.rel}: no {part}", location=Location(migration.rel))
        text = read_part(migration.file(part), where)
        script, found = parse_checked(text, part, self.db.dialect)
        if found:
            line, message = found[0]
            raise TargetError(message, location=Location(where, line))
        assert script is not None
        return script

    # --- run -------------------------------------------------------------------------------

    def run(self, step: Step, migration: Migration | None, deadline: Deadline) -> str:
        migration = self._need(step, migration)
        if step.action not in ("up", "down"):
            raise TargetError(f"{self.ctx.component}: a sql component cannot {step.action}")
        return self._apply(
            migration, step.action, int(step.from_ or 0), int(step.to or 0), deadline
        )

    def _apply(
        self, migration: Migration, direction: str, from_: int, to: int, deadline: Deadline
    ) -> str:
        part = f"{direction}.sql"
        script = self._script(migration, part)
        db = self.db
        started = time.monotonic()
        db.take_notices()
        self._committed.pop(migration.id, None)
        try:
            self._execute(script, migration, direction, from_, to, started, deadline)
        finally:
            with contextlib.suppress(Exception):  # a broken connection: keep the real error
                db.reset()
        elapsed = time.monotonic() - started
        count = len(script.statements)
        lines = [f"{part}: {count} statement{'s' if count != 1 else ''} in {elapsed:.2f} s"]
        if not script.transactional:
            lines[0] += " (no transaction)"
        lines += db.take_notices()
        return "\n".join(lines)

    def _execute(
        self,
        script: Script,
        migration: Migration,
        direction: str,
        from_: int,
        to: int,
        started: float,
        deadline: Deadline,
    ) -> None:
        db = self.db
        part = f"{direction}.sql"
        if script.transactional:
            db.limit(deadline)
            try:
                db.begin()
                self._bookkeeping(migration, direction, from_, to, deadline)
                self._statements(script, migration, part, deadline)
                self._record(migration, direction, to, started)
                deadline.check(f"{migration.rel}/{part}: commit")  # a lost lease: no commit
                db.commit()
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    db.rollback()
                raise self._failure(
                    exc, f"{migration.rel}/{part}", deadline, rolled_back=True
                ) from exc
        else:
            db.limit(deadline)
            self._bookkeeping(migration, direction, from_, to, deadline)
            try:
                self._statements(script, migration, part, deadline, autocommit=True)
            except BaseException:
                if db.in_transaction:  # the migration's own BEGIN: what it held is not committed
                    with contextlib.suppress(Exception):
                        db.rollback()
                raise
            if db.in_transaction:
                with contextlib.suppress(Exception):
                    db.rollback()
                raise TargetError(
                    f"{part} ended with a transaction still open (BEGIN without COMMIT); it was "
                    "rolled back and the migration is not recorded",
                    location=Location(f"{migration.rel}/{part}"),
                )
            try:
                db.begin()
                history.ensure(db, self.table)
                self._record(migration, direction, to, started)
                db.commit()
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    db.rollback()
                raise self._failure(
                    exc, f"{migration.rel}/{part}", deadline, rolled_back=False
                ) from exc

    def _bookkeeping(
        self,
        migration: Migration,
        direction: str,
        from_: int,
        to: int,
        deadline: Deadline,
    ) -> None:
        """Inside the step's transaction: the history table exists, writers are serialised and
        the database is still at `from_`."""
        db = self.db
        try:
            if db.in_transaction:
                history.ensure(db, self.table)
                history.lock(db, self.table)
            have = history.version(db, self.table, self.ctx.component)
        except Exception as exc:
            raise self._failure(exc, f"{self.table}", deadline, rolled_back=False) from exc
        if have != from_:
            raise TargetError(
                f"{self._where()}: the database is at version {have}, not {from_}: another "
                f"process changed it; {direction} {migration.id} was not run"
            )

    def _statements(
        self,
        script: Script,
        migration: Migration,
        part: str,
        deadline: Deadline,
        *,
        autocommit: bool = False,
    ) -> None:
        db = self.db
        where = f"{migration.rel}/{part}"
        for statement in script.statements:
            failpoints.hit("in-run")
            deadline.check(f"{where}:{statement.line}")
            db.limit(deadline)
            try:
                db.execute(statement.text)
            except Exception as exc:
                if not db.is_error(exc):
                    raise
                error = db.fail(exc, f"statement {statement.number} failed", deadline)
                error.location = Location(where, statement.line)
                raise error from exc
            if autocommit:
                self._committed[migration.id] = statement.number

    def _record(self, migration: Migration, direction: str, to: int, started: float) -> None:
        history.append(
            self.db,
            self.table,
            component=self.ctx.component,
            version=migration.number,
            migration=migration.id,
            direction=direction,
            checksum=migration.checksum,
            schema_version=to,
            description=migration.meta.description,
            applied_by=self._applied_by(),
            execution_ms=int((time.monotonic() - started) * 1000),
        )

    def _failure(
        self, exc: BaseException, where: str, deadline: Deadline, *, rolled_back: bool
    ) -> BaseException:
        if isinstance(exc, ReleasectlError):
            error: BaseException = exc
        elif self._db is not None and self._db.is_error(exc):
            error = self._db.fail(exc, where, deadline)
        else:
            return exc
        if rolled_back and isinstance(error, TargetError):
            error.message += "; the transaction was rolled back, nothing was changed"
        return error

    # --- verify ----------------------------------------------------------------------------

    def verify(self, step: Step, migration: Migration | None, deadline: Deadline) -> None:
        db = self.db
        have = history.version(db, self.table, self.ctx.component)
        if have != step.to:
            raise TargetError(
                f"{self._where()}: after the step the database says version {have}, "
                f"expected {step.to}"
            )
        # verify.sql describes the state after up.sql; after a down the history check suffices
        if step.action != "up" or migration is None or "verify.sql" not in migration.files:
            return
        script = self._script(migration, "verify.sql")
        statement = script.statements[0]
        where = Location(f"{migration.rel}/verify.sql", statement.line)
        read_only = db.dialect == "sqlite"
        try:
            if read_only:
                db.execute("PRAGMA query_only = ON")
            db.limit(deadline)
            db.begin(write=False)
            db.limit(deadline)
            rows = db.query(statement.text)
        except Exception as exc:
            if not db.is_error(exc):
                raise
            error = db.fail(exc, "verify.sql failed", deadline)
            error.location = where
            raise error from exc
        finally:
            with contextlib.suppress(Exception):
                db.rollback()
            db.limit(None)
            if read_only:
                db.execute("PRAGMA query_only = OFF")
        if not rows:
            raise TargetError(
                "verify.sql returned no rows (expected one true value)", location=where
            )
        value = rows[0][0] if rows[0] else None
        if not truthy(value):
            raise TargetError(
                f"verify.sql: the first column of the first row is {value!r}, not true",
                location=where,
            )

    # --- backup and restore ----------------------------------------------------------------

    def _header(self, step: Step | None, migration: Migration | None) -> dict[str, Any]:
        db = self.db
        return {
            "format": FORMAT,
            "version": 1,
            "dialect": db.dialect,
            "component": self.ctx.component,
            "history_table": self.table,
            "schema_version": history.version(db, self.table, self.ctx.component),
            "migration": migration.id if migration else None,
            "step": step.model_dump(mode="json", by_alias=True) if step else None,
        }

    def backup(self, step: Step | None, migration: Migration | None, out: IO[bytes]) -> BackupInfo:
        from releasectl.targets.sql import backup as sqlbackup

        header = self._header(step, migration)
        scope = None if step is None else list(migration.meta.scope or ()) if migration else []
        return sqlbackup.backup(self.db, header, scope, self.table, out)

    def restore(self, src: IO[bytes]) -> BackupInfo:
        reader = FrameReader(src)
        return self._restore(reader, reader.header(), None)

    def _restore(
        self,
        reader: FrameReader,
        header: dict[str, Any],
        record: tuple[Migration, int] | None,
    ) -> BackupInfo:
        """Restore a backup; `record` (migration, version): also append a `restore` history row
        returning the component to that version, in the restore's transaction."""
        from releasectl.targets.sql import backup as sqlbackup

        db = self.db

        def before_commit() -> None:
            if record is None:
                return
            migration, version = record
            history.ensure(db, self.table)
            if history.version(db, self.table, self.ctx.component) != version:
                self._record(migration, "restore", version, time.monotonic())

        try:
            return sqlbackup.restore(db, reader, header, self.table, before_commit)
        except TargetError as exc:
            if exc.location is None and not exc.message.startswith(self.ctx.component):
                exc.message = f"{self._where()}: {exc.message}"
            raise

    # --- rollback --------------------------------------------------------------------------

    def rollback(
        self, step: Step, migration: Migration | None, backup: IO[bytes] | None, failure: Failure
    ) -> str:
        if failure.phase in ("check", "backup"):
            return "nothing had run"
        migration = self._need(step, migration)
        have = history.version(self.db, self.table, self.ctx.component)
        reader: FrameReader | None = None
        header: dict[str, Any] = {"mode": "none"}
        if backup is not None:
            reader = FrameReader(backup)
            header = reader.header()
        scoped = reader is not None and header.get("mode") == "tables"
        if have == step.from_:
            committed = self._committed.pop(migration.id, None)
            script = self._script(migration, f"{step.action}.sql")
            if script.transactional:
                return "the step's transaction was rolled back: nothing had changed"
            if scoped and reader is not None:
                info = self._restore(reader, header, None)
                scope = ", ".join(header.get("scope", []))
                return f"restored the backup of {scope} ({info.items} rows)"
            if committed:
                how_many = f"statements 1-{committed}"
            elif committed is None and failure.phase != "run":
                how_many = "an unknown number of statements"
            else:
                how_many = "no statement"
            return (
                f"{step.action}.sql runs without a transaction: {how_many} of it had been "
                "committed and stay (nothing to restore without a scope); the database is still at "
                f"version {have}"
            )
        if have != step.to:
            raise TargetError(
                f"{self._where()}: cannot roll back: the database says version {have}, "
                f"neither {step.from_} nor {step.to}"
            )
        # The step had committed (verify or a later phase failed): undo it.
        reverse = "down" if step.action == "up" else "up"
        done: list[str] = []
        if f"{reverse}.sql" in migration.files:
            deadline = Deadline.after(self.timeout(migration))
            self._apply(migration, reverse, int(step.to or 0), int(step.from_ or 0), deadline)
            done.append(f"ran {reverse}.sql")
            if scoped and reader is not None:
                info = self._restore(reader, header, None)
                done.append(f"restored the backup of its scope ({info.items} rows)")
        elif scoped and reader is not None:
            info = self._restore(reader, header, (migration, int(step.from_ or 0)))
            done.append(f"restored the backup of its scope ({info.items} rows)")
        else:
            raise TargetError(
                f"{self._where()}: cannot roll back {step.action} {migration.id}: it committed, "
                f"and there is no {reverse}.sql and no scoped backup; the database stays at "
                f"version {have}"
            )
        return "; ".join(done)


def truthy(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in TRUE_TEXT
    return False
