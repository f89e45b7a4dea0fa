"""Declarative Redis ops and checks: validation with file:line:field, static problems, scopes
and the glob matcher. No server needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasectl.errors import InputError, MultipleErrors, ReleasectlError
from releasectl.targets.redis import checks as redis_checks
from releasectl.targets.redis import ops
from tests.conftest import REPO
from tests.redis_helpers import make_target, write_migrations

URL = "redis://127.0.0.1:1/0"  # never contacted: static checks need no connection


def load(tmp_path: Path, text: str, name: str = "up.yaml") -> ops.Part:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    loader = ops.load_checks if name == "verify.yaml" else ops.load_ops
    return loader(path, f"m/{name}")


def messages(exc: ReleasectlError) -> list[str]:
    if isinstance(exc, MultipleErrors):
        return [str(e) for e in exc.errors]
    return [str(exc)]


def test_every_op_parses(tmp_path: Path) -> None:
    part = load(
        tmp_path,
        """\
ops:
  - set: {key: "a", value: 3600, ttl: 10, nx: true}
  - hset: {key: "h", fields: {x: "1", y: 2.5}}
  - hdel: {key: "h", fields: [x]}
  - sadd: {key: "s", members: [a, b]}
  - srem: {key: "s", members: [a]}
  - zadd: {key: "z", members: {a: 1, b: 2.5}}
  - rpush: {key: "l", values: [a, b]}
  - del: {keys: ["x", "y"]}
  - del: {pattern: "old:*"}
  - rename: {pattern: "s:v1:*", from: "s:v1:", to: "s:v2:"}
  - expire: {pattern: "cache:*", seconds: 60}
  - expire: {key: "a", seconds: 60}
  - persist: {key: "a"}
  - config_set: {parameter: maxmemory-policy, value: allkeys-lru}
""",
    )
    assert [i.name for i in part.items] == [
        "set", "hset", "hdel", "sadd", "srem", "zadd", "rpush", "del", "del", "rename",
        "expire", "expire", "persist", "config_set",
    ]  # fmt: skip
    first = part.items[0].args
    assert isinstance(first, ops.SetOp)
    assert first.value == "3600"  # YAML ints become the string Redis stores
    assert part.items[1].args.fields == {"x": "1", "y": "2.5"}
    assert str(part.items[2].where) == "m/up.yaml:4: ops[2].hdel"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ops:\n  - sett: {key: a, value: b}\n", "m/up.yaml:2: ops[0].sett: unknown operation"),
        (
            "ops:\n  - set: {key: a}\n",
            "m/up.yaml:2: ops[0].set.value: required field is missing",
        ),
        (
            "ops:\n  - set:\n      key: a\n      value: b\n      tll: 3\n",
            "m/up.yaml:5: ops[0].set.tll: unknown field",
        ),
        ("ops:\n  - set: {key: a, value: true}\n", "is a YAML boolean: quote it"),
        ("ops:\n  - del: {keys: [a], pattern: 'b*'}\n", "give either `keys` or `pattern`"),
        (
            "ops:\n  - rename: {from: 'a:', to: 'a:b:'}\n",
            "prefixes 'a:' and 'a:b:' overlap",
        ),
        (
            "ops:\n  - rename: {pattern: 'x:*', from: 'a:', to: 'b:'}\n",
            "must start with the prefix 'a:'",
        ),
        ("ops:\n  - {set: {key: a, value: b}, del: {keys: [a]}}\n", "one-key mapping"),
        ("ops:\n  - expire: {key: a, seconds: 0}\n", "ops[0].expire.seconds"),
        ("opz: []\n", "m/up.yaml:1: opz: unknown field"),
        ("- set: {key: a, value: b}\n", "expected a mapping with `ops:`"),
    ],
)
def test_bad_ops_name_file_line_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(InputError) as info:
        load(tmp_path, text)
    assert any(expected in m for m in messages(info.value)), messages(info.value)


def test_all_bad_entries_reported_together(tmp_path: Path) -> None:
    with pytest.raises(MultipleErrors) as info:
        load(tmp_path, "ops:\n  - set: {key: a}\n  - nope: {}\n  - hset: {key: h, fields: {}}\n")
    found = messages(info.value)
    assert [m.split(":")[1] for m in found] == ["2", "3", "4"], found


def test_bad_checks(tmp_path: Path) -> None:
    with pytest.raises(MultipleErrors) as info:
        load(
            tmp_path,
            "checks:\n  - exists: {key: a}\n  - count: {pattern: 'a*'}\n"
            "  - count: {pattern: 'a*', min: 3, max: 1}\n  - hget: {key: h, equals: '1'}\n",
            "verify.yaml",
        )
    found = messages(info.value)
    assert "m/verify.yaml:2: checks[0].exists: expected a key" in found
    assert "m/verify.yaml:3: checks[1].count: give `min`, `max` or both" in found
    assert "m/verify.yaml:4: checks[2].count: `min` is greater than `max`" in found
    assert "m/verify.yaml:5: checks[3].hget.field: required field is missing" in found


def test_scope_from_ops(tmp_path: Path) -> None:
    found = write_migrations(
        tmp_path,
        {
            "0001_a": {
                "up.yaml": """
                    ops:
                      - set: {key: "cfg[1]", value: "x"}
                      - rename: {pattern: "s:v1:u:*", from: "s:v1:", to: "s:v2:"}
                      - config_set: {parameter: maxmemory-policy, value: allkeys-lru}
                """,
                "down.yaml": "ops:\n  - del: {pattern: 'tmp:*'}\n",
            }
        },
    )
    target = make_target(tmp_path, URL, found)
    patterns, params = target.scope(found.migrations[0])
    assert patterns == [r"cfg\[1\]", "s:v1:u:*", "s:v2:u:*", "tmp:*"]
    assert params == ["maxmemory-policy"]
    assert ops.literal(patterns[0]) == "cfg[1]"
    assert ops.literal("tmp:*") is None


def test_declared_scope_wins_and_covers_keys(tmp_path: Path) -> None:
    found = write_migrations(
        tmp_path,
        {
            "0001_a": {
                "migration.yaml": "scope: ['app:*']\n",
                "up.yaml": "ops:\n  - set: {key: 'app:x', value: '1'}\n"
                "  - set: {key: 'other', value: '1'}\n",
            }
        },
    )
    target = make_target(tmp_path, URL, found)
    migration = found.migrations[0]
    assert target.scope(migration) == (["app:*"], [])
    problems = [str(p) for p in redis_checks.problems(migration)]
    assert problems == [
        "migrations/redis/0001_a/up.yaml:3: ops[1].set: key 'other' is outside the migration's "
        "scope ['app:*']: its backup would not cover it"
    ]


def test_python_migration_problems(tmp_path: Path) -> None:
    found = write_migrations(
        tmp_path,
        {
            "0001_noscope": {"migration.py": "def up(r):\n    r.set('a', 1)\n"},
            "0002_syntax": {
                "migration.yaml": "scope: ['a']\n",
                "migration.py": "def up(r):\n    r.set('a', 1\n",
            },
            "0003_both": {
                "migration.yaml": "scope: ['a']\n",
                "migration.py": "def up(r, extra):\n    pass\n",
                "up.yaml": "ops:\n  - config_set: {parameter: requirepass, value: x}\n",
            },
        },
    )
    first, second, third = ([str(p) for p in redis_checks.problems(m)] for m in found.migrations)
    assert first == [
        "migrations/redis/0001_noscope/migration.yaml: a migration.py migration must declare "
        "`scope:` (the key patterns it touches) in migration.yaml, so that its backup covers them"
    ]
    assert len(second) == 1 and second[0].startswith(
        "migrations/redis/0002_syntax/migration.py:2: syntax error"
    )
    assert "migrations/redis/0003_both: has both up.yaml and migration.py: keep one" in third
    assert (
        "migrations/redis/0003_both/migration.py:1: up() takes exactly one argument, the Redis "
        "client" in third
    )
    assert any("config_set requirepass would put a credential in a file" in p for p in third)


def test_example_migrations_are_clean() -> None:
    from releasectl.workspace.catalogue import scan_component

    found, errors = scan_component(REPO, "redis", "redis", "migrations/redis")
    assert not errors and len(found.migrations) >= 2
    for migration in found.migrations:
        assert redis_checks.problems(migration) == []


def test_expected_gone(tmp_path: Path) -> None:
    part = load(
        tmp_path,
        """\
ops:
  - del: {keys: ["a", "b"]}
  - del: {pattern: "tmp:*"}
  - rename: {from: "s:v2:", to: "s:v1:"}
  - set: {key: "b", value: "again"}
  - hset: {key: "tmp:keep", fields: {x: "1"}}
""",
    )
    assert [p for p, _ in ops.expected_gone(part)] == ["a", "s:v2:*"]


@pytest.mark.parametrize(
    ("pattern", "key", "hit"),
    [
        ("a*", "abc", True),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("h[ae]llo", "hallo", True),
        ("h[^e]llo", "hello", False),
        ("h[a-b]llo", "hbllo", True),
        (r"a\*b", "a*b", True),
        (r"a\*b", "axb", False),
        ("x:*", "x:\nnew", True),
    ],
)
def test_glob(pattern: str, key: str, hit: bool) -> None:
    assert ops.matches(pattern, key) is hit
