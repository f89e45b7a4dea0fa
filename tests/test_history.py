"""The hash-chained history: append, verify, and every kind of tampering detected."""

from __future__ import annotations

import json
from pathlib import Path

from releasectl.state.file import FileBackend
from releasectl.state.history import History, to_legacy_csv, verify_lines


def make(tmp_path: Path, count: int = 4) -> FileBackend:
    backend = FileBackend(tmp_path / ".releasectl", "local")
    history = History(backend, actor="alice")
    for n in range(count):
        history.append(
            "up",
            "success",
            component="redis",
            migration=f"000{n + 1}_x",
            from_=n,
            to=n + 1,
            duration=0.5,
            plan="d" * 64,
        )
    return backend


def lines(backend: FileBackend) -> list[str]:
    return list(backend.history_lines())


def test_chain_verifies(tmp_path: Path) -> None:
    backend = make(tmp_path)
    count, problems = verify_lines(lines(backend))
    assert (count, problems) == (4, [])
    entries = list(History(backend, actor="x").entries())
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[1].prev == entries[0].hash
    assert entries[0].prev == "0" * 64
    assert entries[2].from_ == 2 and entries[2].to == 3 and entries[2].actor == "alice"


def test_edited_line_is_detected(tmp_path: Path) -> None:
    backend = make(tmp_path)
    data = lines(backend)
    entry = json.loads(data[1])
    entry["result"] = "failed"
    data[1] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    _, problems = verify_lines(data)
    assert [(p.line, p.message.split(" (")[0]) for p in problems] == [(2, "entry was modified")]


def test_deleted_line_is_detected(tmp_path: Path) -> None:
    data = lines(make(tmp_path))
    del data[2]
    _, problems = verify_lines(data)
    assert problems and problems[0].line == 3
    assert "chain broken" in problems[0].message


def test_reordered_lines_are_detected(tmp_path: Path) -> None:
    data = lines(make(tmp_path))
    data[1], data[2] = data[2], data[1]
    _, problems = verify_lines(data)
    assert {p.line for p in problems} >= {2, 3}


def test_last_line_truncated_is_detected(tmp_path: Path) -> None:
    data = lines(make(tmp_path))
    data[-1] = data[-1][:-10]
    _, problems = verify_lines(data)
    assert problems == [problems[0]] and problems[0].line == 4
    assert problems[0].message == "not valid JSON"


def test_secrets_are_redacted_in_errors(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path / ".releasectl", "local")
    History(backend, actor="a").append(
        "up",
        "failed",
        component="redis",
        error="cannot connect to redis://:hunter2hunter2@db:6379/0 with AKIAABCDEFGHIJKLMNOP",
    )
    text = backend.history_path.read_text()
    assert "hunter2hunter2" not in text and "AKIAABCDEFGHIJKLMNOP" not in text
    assert verify_lines(lines(backend))[1] == []


def test_legacy_csv_view(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path / ".releasectl", "local")
    history = History(backend, actor="a")
    history.append("up", "success", component="redis", from_=0, to=1, duration=2.0)
    history.append("up", "failed", component="redis", from_=1, to=2, duration=1.0)
    history.append("rollback", "success", component="redis", from_=2, to=1, duration=0.1)
    history.append("down", "success", component="redis", from_=1, to=0, duration=0.1)
    history.append("backup", "success", component="redis")
    rows = [
        line.split(",")
        for line in to_legacy_csv(History(backend, actor="a").entries()).splitlines()
    ]
    assert [r[1:] for r in rows] == [
        ["redis", "1", "migration_started"],
        ["redis", "1", "migration_completed"],
        ["redis", "1", "version_updated"],
        ["redis", "2", "migration_started"],
        ["redis", "2", "migration_failed"],
        ["redis", "2", "rollback_started"],
        ["redis", "1", "rollback_completed"],
        ["redis", "1", "rollback_started"],
        ["redis", "0", "version_updated"],
        ["redis", "0", "rollback_completed"],
    ]
    assert all(len(r[0]) == len("2026-01-01 00:00:00") for r in rows)
