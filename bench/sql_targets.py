"""Benchmark of the sql and script targets: scoped backup and restore of a large table on
SQLite and PostgreSQL (time, size, peak Python memory), a whole SQLite backup, a long up.sql,
statement splitting, and the cost of running one shell part.

    .venv/bin/python bench/sql_targets.py [--rows 200000] [--postgres URL]

PostgreSQL runs when --postgres or RELEASECTL_TEST_POSTGRES_URL names a server (a scratch
database is created and dropped). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from releasectl.models.plan import Step
from releasectl.models.workspace import ScriptTarget as ScriptSettings
from releasectl.models.workspace import SqlTarget as SqlSettings
from releasectl.targets.base import TargetContext
from releasectl.targets.script.target import ScriptTarget
from releasectl.targets.sql.script import parse
from releasectl.targets.sql.target import SqlTarget
from releasectl.util.deadline import Deadline
from releasectl.workspace.catalogue import scan_component

ROWS: list[str] = []


class Sink(io.RawIOBase):
    """A writable stream that keeps nothing (like a backup file on disk)."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def peak_memory(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def workspace(root: Path, rows: int) -> None:
    one = root / "migrations" / "db" / "0001_events"
    one.mkdir(parents=True)
    (one / "up.sql").write_text(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, kind VARCHAR(20) NOT NULL, "
        "payload TEXT, score DOUBLE PRECISION, created TIMESTAMP DEFAULT CURRENT_TIMESTAMP);\n"
        "CREATE INDEX events_kind_idx ON events (kind);\n"
    )
    (one / "down.sql").write_text("DROP TABLE events;\n")
    two = root / "migrations" / "db" / "0002_backfill"
    two.mkdir(parents=True)
    (two / "migration.yaml").write_text("scope: [events]\n")
    (two / "up.sql").write_text("UPDATE events SET score = score * 2;\n")
    (two / "down.sql").write_text("UPDATE events SET score = score / 2;\n")
    three = root / "migrations" / "db" / "0003_many_statements"
    three.mkdir(parents=True)
    (three / "up.sql").write_text(
        "".join(
            f"INSERT INTO events (id, kind, payload, score) VALUES ({rows + i}, 'k{i % 7}', "
            f"'statement {i}; with a semicolon', {i}.5);\n"
            for i in range(10_000)
        )
    )
    (three / "down.sql").write_text(f"DELETE FROM events WHERE id >= {rows};\n")


def target(root: Path, url: str) -> SqlTarget:
    found, errors = scan_component(root, "db", "sql", "migrations/db")
    assert not errors, errors
    ctx = TargetContext(
        root=root,
        env="bench",
        component="db",
        type="sql",
        settings=SqlSettings(url=url),
        migrations=found,
    )
    return SqlTarget(ctx)


def step(number: int, action: str = "up") -> Step:
    from_, to = (number - 1, number) if action == "up" else (number, number - 1)
    return Step(component="db", type="sql", action=action, **{"from": from_}, to=to)


def fill(t: SqlTarget, rows: int) -> None:
    db = t.db
    payload = "x" * 120
    batch = 5_000
    db.begin()
    for start in range(0, rows, batch):
        values = [
            (i, f"kind{i % 13}", f"{payload} {i}", i * 0.25)
            for i in range(start, min(rows, start + batch))
        ]
        if db.dialect == "sqlite":
            db.conn.executemany(
                "INSERT INTO events (id, kind, payload, score) VALUES (?, ?, ?, ?)", values
            )
        else:
            sql = "COPY events (id, kind, payload, score) FROM STDIN"
            with db.conn.cursor() as cur, cur.copy(sql) as copy:
                for row in values:
                    copy.write_row(row)
    db.commit()


def bench_dialect(name: str, url: str, rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workspace(root, rows)
        t = target(root, url)
        assert t.ctx.migrations is not None
        m1, m2, m3 = (t.ctx.migrations.get(n) for n in (1, 2, 3))
        assert m1 and m2 and m3
        t.run(step(1), m1, Deadline.after(60))
        t.run(step(1, "down"), m1, Deadline.after(60))
        t.run(step(1), m1, Deadline.after(60))
        fill(t, rows)
        t.run(step(2), m2, Deadline.after(600))

        def backup() -> bytes:
            buf = io.BytesIO()
            t.backup(step(3), m2, buf)
            return buf.getvalue()

        seconds, data = timed(backup)
        ROWS.append(
            f"| {name} | scoped backup of one table, {rows:,} rows | {seconds:.2f} s | "
            f"{len(data) / 1e6:.1f} MB |"
        )

        def restore() -> None:
            t.restore(io.BytesIO(data))

        seconds, _ = timed(restore)
        ROWS.append(f"| {name} | restore of it (one transaction) | {seconds:.2f} s | |")

        small = max(1, rows // 10)

        def backup_to_sink() -> None:
            t.backup(step(3), m2, Sink())

        # peak Python memory of a backup written to a file-like sink: flat in the number of
        # rows (streamed in batches; an in-memory BytesIO would count the backup itself)
        big_peak = peak_memory(backup_to_sink)
        t.db.begin()
        t.db.execute(f"DELETE FROM events WHERE id >= {small}")
        t.db.commit()
        small_peak = peak_memory(backup_to_sink)
        ROWS.append(
            f"| {name} | peak Python memory of a backup: {small:,} rows / {rows:,} rows | "
            f"{small_peak / 1e6:.1f} MB / {big_peak / 1e6:.1f} MB | |"
        )

        def whole() -> int:
            buf = io.BytesIO()
            t.backup(None, None, buf)
            return len(buf.getvalue())

        seconds, size = timed(whole)
        ROWS.append(
            f"| {name} | whole-database backup ({small:,} rows + history) | "
            f"{seconds:.2f} s | {size / 1e6:.1f} MB |"
        )

        def many() -> None:
            t.run(step(3), m3, Deadline.after(600))
            t.run(step(3, "down"), m3, Deadline.after(600))

        seconds, _ = timed(many, repeat=1)
        ROWS.append(
            f"| {name} | up.sql of 10,000 INSERT statements + its down.sql | {seconds:.2f} s | |"
        )
        t.close()


def bench_split() -> None:
    text = "".join(
        f"INSERT INTO t VALUES ({i}, 'text; {i}', \"id\"); -- note; {i}\n" for i in range(50_000)
    )
    for dialect in ("sqlite", "postgresql"):
        seconds, script = timed(lambda d=dialect: parse(text, d))
        assert len(script.statements) == 50_000
        ROWS.append(
            f"| {dialect} | split a 50,000-statement script ({len(text) / 1e6:.1f} MB) | "
            f"{seconds:.2f} s | |"
        )


def bench_script() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        part = root / "migrations" / "hooks" / "0001_noop"
        part.mkdir(parents=True)
        (part / "up.sh").write_text("echo ok\n")
        found, _ = scan_component(root, "hooks", "script", "migrations/hooks")
        ctx = TargetContext(
            root=root,
            env="bench",
            component="hooks",
            type="script",
            settings=ScriptSettings(),
            migrations=found,
            environ={"PATH": os.environ["PATH"]},
        )
        t = ScriptTarget(ctx)
        m = found.get(1)
        assert m is not None
        s = Step(component="hooks", type="script", action="up", **{"from": 0}, to=1)
        seconds, _ = timed(lambda: t.run(s, m, Deadline.after(10)), repeat=20)
        ROWS.append(
            f"| script | run a one-line up.sh (bash, own process group, capture) | "
            f"{seconds * 1000:.1f} ms | |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--postgres", default=os.environ.get("RELEASECTL_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_dialect("sqlite", f"sqlite:///{tmp}/bench.db", args.rows)
    if args.postgres:
        import psycopg

        name = f"rbench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            bench_dialect("postgresql", f"{args.postgres.rpartition('/')[0]}/{name}", args.rows)
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    bench_split()
    bench_script()
    print("| target | what | time (median of 3) | size |")
    print("|---|---|---:|---:|")
    print("\n".join(ROWS))


if __name__ == "__main__":
    main()
