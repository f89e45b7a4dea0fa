"""`--log-format json`: one JSON object per line on stderr for every event of a run (step
started, finished, failed, rolled back, backup written, lock waited, run finished) and the
error that ends it; `text` keeps the human lines; -q/-v move the level; secrets redacted."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from releasectl.observe.events import StepFailed
from releasectl.observe.logs import JsonFormatter, level_for
from tests.builders import add_failing_redis_migration
from tests.conftest import run_cli


def lines(stderr: str) -> list[dict[str, Any]]:
    parsed = []
    for line in stderr.splitlines():
        data = json.loads(line)  # every line is JSON, or this raises
        assert isinstance(data, dict)
        parsed.append(data)
    return parsed


def test_json_log_of_an_apply_then_a_failed_step(example: Path) -> None:
    first = run_cli("--log-format", "json", "apply", "--yes", cwd=example)
    assert first.code == 0, first
    events = lines(first.err)
    names = [e["event"] for e in events]
    assert names[0] == "lock.waited" and names[-1] == "run.finished"
    assert names.count("step.started") == names.count("step.finished") == 8
    assert names.count("backup.written") == 5
    started = next(e for e in events if e["event"] == "step.started")
    assert {k: started[k] for k in ("env", "index", "total", "component", "action")} == {
        "env": "local",
        "index": 0,
        "total": 8,
        "component": "config",
        "action": "up",
    }
    assert (started["from"], started["to"], started["migration"]) == (0, 1, "0001_base_config")
    backup = next(e for e in events if e["event"] == "backup.written")
    assert backup["size"] > 0 and backup["component"] == "config" and backup["kind"] == "step"
    assert all(e["time"].endswith("Z") and e["level"] == "info" for e in events)
    assert events[-1]["result"] == "success" and events[-1]["command"] == "apply"

    add_failing_redis_migration(example)
    failed = run_cli("--log-format", "json", "migrate", "redis", "3", "--yes", cwd=example)
    assert failed.code == 1, failed
    events = lines(failed.err)
    names = [e["event"] for e in events]
    assert names == [
        "lock.waited",
        "step.started",
        "backup.written",
        "step.rolled_back",
        "step.failed",
        "run.finished",
        "error",
    ]
    rolled, step, run, error = events[3], events[4], events[5], events[6]
    assert (rolled["component"], rolled["from"], rolled["to"]) == ("redis", 3, 2)
    assert rolled["result"] == "success" and rolled["cause"] == "run"
    assert step["level"] == "error" and "WRONGTYPE" in step["error"]
    assert step["rollback"] and step["backup"] == events[2]["backup"]
    assert run["result"] == "failed" and "WRONGTYPE" in run["error"]
    assert error["exit_code"] == 1 and "step 1 failed during run" in error["message"]


def test_text_log_is_for_people(example: Path) -> None:
    result = run_cli("apply", "--yes", cwd=example)
    assert result.code == 0, result
    assert "[1/8] config up 0 -> 1 (0001_base_config): ok" in result.err
    assert "{" not in result.err
    quiet = run_cli("-q", "apply", "--release", "1.0.0", "--yes", cwd=example)
    assert quiet.code == 0, quiet
    assert quiet.err == ""


def test_log_format_from_the_environment(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELEASECTL_LOG_FORMAT", "json")
    result = run_cli("apply", "--yes", cwd=example)
    assert result.code == 0, result
    assert lines(result.err)[-1]["event"] == "run.finished"
    quiet = run_cli("-q", "apply", "--release", "1.0.0", "--yes", cwd=example)
    assert quiet.code == 0 and quiet.err == ""  # -q: warnings and worse only


def test_bad_log_format_is_a_usage_error(example: Path) -> None:
    result = run_cli("--log-format", "xml", "status", cwd=example)
    assert result.code == 64, result
    assert "--log-format" in result.err


def test_levels() -> None:
    assert level_for("json", 0) == logging.INFO
    assert level_for("json", 1) == logging.DEBUG
    assert level_for("json", -1) == logging.WARNING
    assert level_for("text", 0) == logging.WARNING
    assert level_for("text", 2) == logging.DEBUG
    assert level_for("text", -5) == logging.CRITICAL


def test_json_lines_redact_secrets() -> None:
    from releasectl import secrets

    secret = "hunter2-is-a-very-long-password-value"
    secrets.register(secret)
    event = StepFailed(
        "prod", 0, 1, "database", "up", 1, 2, "0002_x", 0.5, None, f"auth failed: {secret}", None
    )
    record = logging.LogRecord(
        "releasectl.events", logging.ERROR, __file__, 1, event.message(), None, None
    )
    record.event = event
    text = JsonFormatter().format(record)
    assert secret not in text
    data = json.loads(text)
    assert data["event"] == "step.failed" and "auth failed" in data["error"]
