"""A corrupt history line stops `apply` before anything runs and gets a clear error from
`history`; a truncated history (last lines deleted, the file removed, RPOP on Redis) is caught
by the anchor the state keeps; a signed history cannot be rewritten and rehashed without the
key. Real example workspace, real private Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis

from releasectl.state.history import canonical, entry_hash
from tests.builders import make_workspace
from tests.conftest import RedisServer, run_cli

HISTORY = ".releasectl/history/local.jsonl"
STATE = ".releasectl/state/local.json"
KEY = "k" * 40


def status(root: Path) -> dict[str, Any]:
    result = run_cli("status", "--format", "json", cwd=root)
    assert result.code == 0, result
    data: dict[str, Any] = json.loads(result.out)
    return data


def lines(root: Path) -> list[str]:
    return (root / HISTORY).read_text().splitlines()


# --- 6. a corrupt history line ----------------------------------------------------------


def test_a_corrupt_last_line_stops_apply_before_anything_runs(example: Path) -> None:
    assert run_cli("apply", "--yes", "--release", "1.0.0", cwd=example).code == 0
    serial = status(example)["serial"]
    with (example / HISTORY).open("a") as fh:
        fh.write("not json\n")
    count = len(lines(example))
    result = run_cli("apply", "--yes", cwd=example)
    assert result.code == 1, result
    assert f"{HISTORY}:{count}" in result.err and "not valid JSON" in result.err
    assert "internal error" not in result.err
    after = status(example)
    assert after["serial"] == serial and after["release"] == "1.0.0"  # nothing ran
    assert after["history_problems"] and HISTORY in after["history_problems"][0]
    for args in (("history",), ("history", "--format", "csv"), ("history", "--format", "json")):
        shown = run_cli(*args, cwd=example)
        assert shown.code == 1, shown
        assert f"{HISTORY}:{count}" in shown.err and "not valid JSON" in shown.err
    verified = run_cli("history", "--verify", cwd=example)
    assert verified.code == 1 and f"{HISTORY}:{count}" in verified.err


def test_a_corrupt_line_in_the_middle_is_named(example: Path) -> None:
    assert run_cli("apply", "--yes", cwd=example).code == 0
    text = lines(example)
    text[2] = text[2][:-5]
    (example / HISTORY).write_text("\n".join(text) + "\n")
    shown = run_cli("history", "--format", "csv", cwd=example)
    assert shown.code == 1 and f"{HISTORY}:3" in shown.err, shown


# --- 7. a truncated history -------------------------------------------------------------


def test_deleting_the_last_lines_is_detected(example: Path) -> None:
    assert run_cli("apply", "--yes", cwd=example).code == 0
    assert run_cli("history", "--verify", cwd=example).code == 0
    full = lines(example)
    for keep in (len(full) - 1, len(full) - 3):
        (example / HISTORY).write_text("\n".join(full[:keep]) + "\n")
        verified = run_cli("history", "--verify", cwd=example)
        assert verified.code == 1, verified
        assert HISTORY in verified.err and "truncated" in verified.err
        assert f"the last {len(full) - keep} are missing" in verified.err
        problems = status(example)["history_problems"]
        assert problems and "truncated" in problems[0] and HISTORY in problems[0]
        assert "HISTORY DAMAGED" in run_cli("status", cwd=example).out
        refused = run_cli("backup", "redis", cwd=example)  # nothing appends to it
        assert refused.code == 1 and "truncated" in refused.err, refused
    (example / HISTORY).write_text("\n".join(full) + "\n")  # restored from a copy
    assert run_cli("history", "--verify", cwd=example).code == 0


def test_deleting_the_history_file_is_detected(example: Path) -> None:
    assert run_cli("apply", "--yes", "--release", "1.0.0", cwd=example).code == 0
    (example / HISTORY).unlink()
    verified = run_cli("history", "--verify", cwd=example)
    assert verified.code == 1 and "truncated" in verified.err, verified
    refused = run_cli("apply", "--yes", cwd=example)
    assert refused.code == 1 and "the history is empty or gone" in refused.err, refused
    assert status(example)["release"] == "1.0.0"


def test_rpop_on_a_redis_history_is_detected(tmp_path: Path, redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    root = make_workspace(
        tmp_path / "ws",
        components={"cache": {"type": "redis"}},
        targets={"cache": {"url": redis_server.url}},
        env={"state": {"backend": "redis", "url": redis_server.url, "key_prefix": "anchor"}},
        releases={"1.0.0": {"cache": 1}},
        migrations={
            "cache": {
                "0001_a": {
                    "up.yaml": "ops:\n  - set: {key: a, value: '1'}\n",
                    "down.yaml": "ops:\n  - del: {keys: [a]}\n",
                }
            }
        },
    )
    assert run_cli("apply", "--yes", cwd=root).code == 0
    assert run_cli("history", "--verify", cwd=root).code == 0
    client.rpop("anchor:local:history")
    verified = run_cli("history", "--verify", cwd=root)
    assert verified.code == 1, verified
    assert "key anchor:local:history" in verified.err and "truncated" in verified.err
    client.close()


# --- signed histories -------------------------------------------------------------------


def signed_workspace(root: Path) -> Path:
    return make_workspace(
        root,
        components={"hooks": {"type": "script"}},
        targets={"hooks": {}},
        env={"history": {"sign": True}},
        releases={"1.0.0": {"hooks": 1}},
        migrations={"hooks": {"0001_a": {"up.sh": "echo a > a.txt\n", "down.sh": "rm a.txt\n"}}},
    )


def rehash(entries: list[dict[str, Any]]) -> list[str]:
    """What someone without the key can do: edit entries and recompute the whole chain."""
    prev = "0" * 64
    out = []
    for entry in entries:
        entry.pop("sig", None)
        entry["prev"] = prev
        entry["hash"] = entry_hash(entry)
        prev = entry["hash"]
        out.append(canonical(entry))
    return out


def test_a_rewritten_and_rehashed_signed_history_is_detected(
    tmp_path: Path, monkeypatch: Any
) -> None:
    root = signed_workspace(tmp_path / "ws")
    assert run_cli("apply", "--yes", cwd=root).code == 1  # no key: refused
    monkeypatch.setenv("RELEASECTL_HISTORY_KEY", KEY)
    assert run_cli("apply", "--yes", cwd=root).code == 0
    verified = run_cli("history", "--verify", cwd=root)
    assert verified.code == 0 and "signatures valid" in verified.out, verified
    entries = [json.loads(line) for line in lines(root)]
    assert all(e.get("sig") for e in entries)
    monkeypatch.setenv("RELEASECTL_HISTORY_KEY", "x" * 40)
    wrong = run_cli("history", "--verify", cwd=root)
    assert wrong.code == 1 and "signature does not match" in wrong.err, wrong
    entries[0]["actor"] = "someone-else"
    forged = rehash(entries)
    (root / HISTORY).write_text("\n".join(forged) + "\n")
    state = json.loads((root / STATE).read_text())
    state["history"] = {"count": len(forged), "head": entries[-1]["hash"], "signature": None}
    (root / STATE).write_text(json.dumps(state))
    monkeypatch.delenv("RELEASECTL_HISTORY_KEY")
    unkeyed = run_cli("history", "--verify", cwd=root)
    assert unkeyed.code == 1 and "RELEASECTL_HISTORY_KEY" in unkeyed.err, unkeyed
    monkeypatch.setenv("RELEASECTL_HISTORY_KEY", KEY)
    found = run_cli("history", "--verify", cwd=root)
    assert found.code == 1 and "not signed with this key" in found.err, found
