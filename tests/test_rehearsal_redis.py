"""`plan --rehearse` against a real Redis server (a private redis-server): the copy is an
embedded Redis loaded from the scoped backup; keys deleted, renamed and given shorter TTLs are
counted by scope pattern; commands outside the declared scope are caught by MONITOR and the
real keys they name counted; a failing verify is rolled back like apply would; limits stop a
copy; and the real server's keyspace is exactly what it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from releasectl.rehearsal.redis_watch import parse_monitor
from tests.builders import make_workspace
from tests.conftest import run_cli
from tests.redis_helpers import same_keyspace, snapshot

UP_1 = """
ops:
  - set: {key: "config:a", value: "1"}
  - set: {key: "schema:version", value: "1"}
"""
DOWN_1 = """
ops:
  - del: {keys: ["config:a", "schema:version"]}
"""
PRUNE = """
def up(r):
    r.delete("cache:stale")
    r.rename("cache:old", "cache:new")
    r.expire("cache:x", 10)
    r.delete("config:a")
    for key in r.scan_iter("session:*"):
        r.delete(key)


def down(r):
    pass


def verify(r):
    return VERIFY
"""


def workspace(root: Path, url: str, *, verify: bool = True, **env: Any) -> Path:
    return make_workspace(
        root,
        components={"redis": {"type": "redis"}},
        targets={"redis": {"url": url}},
        releases={"1.0.0": {"redis": 1}, "1.1.0": {"redis": 2}},
        migrations={
            "redis": {
                "0001_settings": {"up.yaml": UP_1, "down.yaml": DOWN_1},
                "0002_prune": {
                    "migration.yaml": 'scope: ["cache:*"]\n',
                    "migration.py": PRUNE.replace("VERIFY", str(verify)),
                },
            }
        },
        env=env or None,
    )


def seeded(root: Path, url: str) -> redis.Redis:
    result = run_cli("apply", "--release", "1.0.0", "--yes", cwd=root)
    assert result.code == 0, result
    client = redis.Redis.from_url(url)
    client.set("cache:stale", "s")
    client.set("cache:old", "o")
    client.set("cache:x", "x", ex=1000)
    client.set("session:1", "t")
    client.set("other:keep", "k")
    return client


def rehearsed(root: Path) -> tuple[int, dict[str, Any]]:
    result = run_cli("plan", "--rehearse", "--format", "json", cwd=root)
    data: dict[str, Any] = json.loads(result.out)
    return result.code, data


def test_keys_outside_the_scope_are_caught_and_the_server_untouched(
    tmp_path: Path, redis_url: str
) -> None:
    root = workspace(tmp_path / "ws", redis_url)
    client = seeded(root, redis_url)
    before = snapshot(client)
    code, doc = rehearsed(root)
    assert same_keyspace(before, snapshot(client)) == []
    assert code == 1  # down() puts nothing back: the rollback differs
    (step,) = doc["rehearsal"]["steps"]
    assert (step["run"], step["verify"], step["rollback"]) == ("ok", "ok", "differs")
    assert {d["what"] for d in step["differences"]} == {
        "key cache:stale",
        "key cache:old",
        "key cache:new",
        "key cache:x",
    }
    (copy,) = doc["rehearsal"]["copies"]
    assert copy["scope"] == ["cache:*"] and copy["items"] == 3  # only the scope was copied
    (analysis,) = doc["analysis"]["steps"]
    changes = analysis["redis"]
    assert changes["observed"] is True
    assert changes["deleted"] == [{"pattern": "cache:*", "count": 1}]
    assert changes["renamed"] == [{"pattern": "cache:*", "count": 1}]
    assert changes["ttl_shortened"] == [{"pattern": "cache:*", "count": 1}]
    outside = {(o["command"], o["key"]): o for o in changes["outside_scope"]}
    assert set(outside) == {("DEL", "config:a"), ("SCAN MATCH", "session:*")}
    assert outside[("DEL", "config:a")]["write"] is True
    assert outside[("DEL", "config:a")]["real_keys"] == 1
    assert outside[("SCAN MATCH", "session:*")]["write"] is False
    assert outside[("SCAN MATCH", "session:*")]["real_keys"] == 1
    assert client.get("config:a") == b"1" and client.get("cache:old") == b"o"


def test_a_failing_verify_is_rolled_back_with_the_copy_backup(
    tmp_path: Path, redis_url: str
) -> None:
    root = workspace(tmp_path / "ws", redis_url, verify=False)
    client = seeded(root, redis_url)
    before = snapshot(client)
    code, doc = rehearsed(root)
    assert code == 1
    (step,) = doc["rehearsal"]["steps"]
    assert step["status"] == "failed"
    assert (step["run"], step["verify"]) == ("ok", "failed")
    assert "verify() returned False" in step["error"]
    # as apply would: the target's rollback restores the backup taken on the copy
    assert step["rollback"] == "exact"
    assert step["rollback_by"].startswith("automatic rollback: restored the backup")
    assert same_keyspace(before, snapshot(client)) == []


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        ({"max_keys": 2}, "the scope holds 3 keys, more than rehearsal.max_keys (2)"),
        ({"max_bytes": 10}, "the Redis scope is larger than rehearsal.max_bytes (10 bytes)"),
    ],
)
def test_a_scope_over_the_limits_is_not_rehearsed(
    tmp_path: Path, redis_url: str, limits: dict[str, int], reason: str
) -> None:
    root = workspace(tmp_path / "ws", redis_url, rehearsal=limits)
    client = seeded(root, redis_url)
    before = snapshot(client)
    code, doc = rehearsed(root)
    assert code == 0
    assert doc["rehearsal"]["verdict"] == "nothing"
    (step,) = doc["rehearsal"]["steps"]
    assert (step["status"], step["reason"]) == ("not-rehearsed", reason)
    assert doc["rehearsal"]["copies"][0]["made"] is False
    assert same_keyspace(before, snapshot(client)) == []
    comment = run_cli("plan", "--rehearse", "--format", "markdown", cwd=root)
    assert f"not rehearsed: {reason}" in comment.out


def test_an_unreachable_target_is_not_rehearsed_and_says_why(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", "redis://127.0.0.1:1/0")
    code, doc = rehearsed(root)
    assert code == 0
    (step,) = doc["rehearsal"]["steps"][:1]
    assert step["status"] == "not-rehearsed"
    assert step["reason"].startswith("the copy could not be made: ")
    assert "127.0.0.1:1" in step["reason"]


def test_monitor_lines_are_parsed_with_redis_escapes() -> None:
    line = b'1796164569.999597 [0 unix:/tmp/r.sock] "SET" "a\\"b\\n\\x01" "v v"'
    assert parse_monitor(line) == ("unix:/tmp/r.sock", [b"SET", b'a"b\n\x01', b"v v"])
    assert parse_monitor(b'1.2 [0 lua] "del" "zz"') == ("lua", [b"del", b"zz"])
    assert parse_monitor(b"OK") is None


def test_a_bad_limit_is_an_error_naming_its_place(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws", "redis://127.0.0.1:1/0", rehearsal={"max_keys": -1})
    result = run_cli("plan", "--rehearse", cwd=root)
    assert result.code == 1, result
    assert "releasectl.yaml:" in result.err
    assert "environments.local.rehearsal.max_keys" in result.err
    assert "greater than or equal to 0" in result.err
