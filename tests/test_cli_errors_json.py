"""With `--format json`, a command that fails prints `{"error": {"message", "file", "line",
"field", "exit_code"}}` on stdout (null where unknown) and exits with DESIGN.md's code; reports
that fail (validate, authz test, release verify, history --verify) carry the same `error`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from releasectl.state.base import LockInfo
from releasectl.state.file import FileBackend
from tests.builders import make_workspace
from tests.conftest import REPO, run_cli

KEYS = {"message", "file", "line", "field", "exit_code"}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def error_of(out: str) -> dict[str, Any]:
    doc = json.loads(out)  # stdout is exactly one JSON document
    schema = json.loads((REPO / "schemas" / "error.schema.json").read_text())
    jsonschema.validate(doc, schema)
    error: dict[str, Any] = doc["error"]
    assert set(error) >= KEYS
    return error


def test_a_located_input_error(example: Path) -> None:
    edit(example / "releases/1.1.0.yaml", "version: 1.3.0", "version: 1.3")
    result = run_cli("plan", "--format", "json", cwd=example)
    assert result.code == 1
    error = error_of(result.out)
    line = next(
        n
        for n, text in enumerate((example / "releases/1.1.0.yaml").read_text().splitlines(), 1)
        if text.strip() == "version: 1.3"
    )
    assert error == {
        "message": "'1.3' is not a semantic version (X.Y.Z)",
        "file": "releases/1.1.0.yaml",
        "line": line,
        "field": "components.auth-service.version",
        "exit_code": 1,
    }
    assert result.err.startswith("error: releases/1.1.0.yaml:")  # the log keeps the text


@pytest.mark.parametrize(
    "spelling",
    [("--format", "json"), ("-f", "json"), ("--format=json",), ("-fjson",)],
)
def test_every_spelling_of_the_format(example: Path, spelling: tuple[str, ...]) -> None:
    result = run_cli("status", "--env", "nowhere", *spelling, cwd=example)
    assert result.code == 1
    error = error_of(result.out)
    assert "unknown environment 'nowhere'" in error["message"]
    assert error["file"] == "releasectl.yaml" and error["field"] == "environments"


def test_the_global_format_and_usage_errors(example: Path) -> None:
    usage = run_cli("plan", "--format", "json", "--no-such-flag", cwd=example)
    assert usage.code == 64
    error = error_of(usage.out)
    assert error["exit_code"] == 64 and "--no-such-flag" in error["message"]
    assert error["file"] is None and error["line"] is None and error["field"] is None
    unknown = run_cli("--format", "json", "frobnicate", cwd=example)
    assert unknown.code == 64 and "frobnicate" in error_of(unknown.out)["message"]
    released = run_cli("--format", "json", "release", "show", "9.9.9", cwd=example)
    assert released.code == 1 and "9.9.9" in error_of(released.out)["message"]
    text = run_cli("plan", "--release", "9.9.9", cwd=example)
    assert text.code == 1 and text.out == ""  # without --format json: stderr only


def test_stale_plan_lock_and_denial_keep_their_codes(example: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert run_cli("plan", "--out", plan, cwd=example).code == 0
    assert run_cli("apply", "--yes", "--release", "1.0.0", cwd=example).code == 0
    stale = run_cli("apply", plan, "--format", "json", cwd=example)
    assert stale.code == 3 and error_of(stale.out)["exit_code"] == 3

    backend = FileBackend(example / ".releasectl", "local")
    holder = LockInfo(
        id="far",
        env="local",
        holder="ci",
        operation="apply",
        host="elsewhere",
        pid=1,
        since="2026-01-01T00:00:00Z",
    )
    backend.lock_path.parent.mkdir(parents=True, exist_ok=True)
    backend.lock_path.write_text(json.dumps(holder.as_dict()))
    locked = run_cli("apply", "--yes", "--format", "json", cwd=example)
    assert locked.code == 4
    assert "held by ci" in error_of(locked.out)["message"]
    backend.lock_path.unlink()


def test_a_promotion_denial_exits_5(tmp_path: Path) -> None:
    prod = {
        "prod": {"state": {"backend": "file"}, "targets": {"jobs": {}}, "promote_from": "local"}
    }
    ws = make_workspace(
        tmp_path / "ws",
        components={"jobs": {"type": "script"}},
        targets={"jobs": {}},
        releases={"1.0.0": {"jobs": 1}},
        migrations={"jobs": {"0001_a": {"up.sh": "true\n", "down.sh": "true\n"}}},
        environments=prod,
    )
    denied = run_cli("apply", "--yes", "--env", "prod", "--format", "json", cwd=ws)
    assert denied.code == 5
    error = error_of(denied.out)
    assert error["exit_code"] == 5 and "promot" in error["message"]


def test_several_errors_are_listed(example: Path) -> None:
    edit(example / "releases/1.1.0.yaml", "version: 1.3.0", "version: 1.3")
    edit(example / "releases/1.1.0.yaml", "redis: {version: 2}", "redis: {version: two}")
    result = run_cli("plan", "--format", "json", cwd=example)
    assert result.code == 1
    error = error_of(result.out)
    assert len(error["errors"]) == 2
    assert {e["field"] for e in error["errors"]} == {
        "components.auth-service.version",
        "components.redis.version",
    }
    assert all(e["file"] == "releases/1.1.0.yaml" and e["line"] for e in error["errors"])


def test_failing_reports_carry_the_error(example: Path) -> None:
    edit(example / "releases/1.1.0.yaml", "version: 1.3.0", "version: 1.3")
    validate = run_cli("validate", "--format", "json", cwd=example)
    assert validate.code == 1
    doc = json.loads(validate.out)
    assert doc["valid"] is False and doc["error"]["exit_code"] == 1
    assert doc["error"]["file"] == "releases/1.1.0.yaml"
    assert doc["error"]["field"] == "components.auth-service.version"

    (example / ".releasectl/history").mkdir(parents=True)
    (example / ".releasectl/history/local.jsonl").write_text('{"seq": 1}\n')
    verify = run_cli("history", "--verify", "--format", "json", cwd=example)
    assert verify.code == 1
    doc = json.loads(verify.out)
    assert doc["ok"] is False and doc["error"]["exit_code"] == 1 and doc["problems"]


def test_a_secret_in_an_error_is_redacted(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELEASECTL_STATE_URL", "redis://:hunter2secret@127.0.0.1:1/0")
    result = run_cli("status", "--env", "staging", "--format", "json", cwd=example)
    assert result.code == 1
    assert "hunter2secret" not in result.out and "hunter2secret" not in result.err
    assert error_of(result.out)["exit_code"] == 1
