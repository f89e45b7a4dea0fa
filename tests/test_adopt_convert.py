"""The pieces of `import-legacy` one at a time: a script's description and logical lines, the
conversion of plain redis-cli / sqlite3 / psql scripts (and why others are not plain), and the
history CSV without a header."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasectl.adopt import shell
from releasectl.adopt.convert import Converted, NotPlain, convert, guess
from releasectl.adopt.csvmap import read_history
from releasectl.errors import InputError
from releasectl.targets.redis.ops import load_ops
from tests.conftest import run_cli


def converted(kind: str, text: str, part: str = "up") -> Converted:
    found = convert(kind, text, part)
    assert isinstance(found, Converted), found
    return found


def test_description_prefers_the_variable_then_the_header() -> None:
    assert shell.description("# Purpose: Add users\nMIGRATION_DESCRIPTION='Users'\n") == "Users"
    assert shell.description("#!/bin/bash\n# Description: Add users\n") == "Add users"
    assert shell.description("#!/bin/bash\necho hi\n") is None


def test_redis_commands_become_operations_that_load(tmp_path: Path) -> None:
    found = converted(
        "redis",
        "#!/bin/bash\nset -e\n"
        'redis-cli -u "$REDIS_URL" SET greeting hello EX 60\n'
        'redis-cli -u "$REDIS_URL" \\\n  ZADD tiers 10 free 100 pro\n'
        'redis-cli -u "$REDIS_URL" CONFIG SET maxmemory-policy allkeys-lru\n'
        'redis-cli -u "$REDIS_URL" EXPIRE tiers 3600\n',
    )
    assert found.connection == "${REDIS_URL}"
    path = tmp_path / "up.yaml"
    path.write_text(found.files["up.yaml"])
    part = load_ops(path, "up.yaml")
    assert [item.name for item in part.items] == ["set", "zadd", "config_set", "expire"]
    assert part.items[0].args.ttl == 60
    assert part.items[1].args.members == {"free": 10.0, "pro": 100.0}


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("redis-cli KEYS 'session:*' | xargs redis-cli DEL\n", 1, "`|` makes it more than"),
        ('echo start\nredis-cli SET a "$VALUE"\n', 2, "an argument uses a shell variable"),
        ("redis-cli EVAL 'return 1' 0\n", 1, "redis-cli EVAL has no native operation"),
        ("redis-cli -x SET a\n", 1, "redis-cli option -x has no native equivalent"),
        ("redis-cli SET a 1\ncurl -X POST http://hook\n", 2, "is not a redis-cli command"),
        ("redis-cli -n 1 SET a 1\nredis-cli -n 2 SET b 1\n", 2, "more than one Redis"),
        ("# nothing but comments\n", 1, "no command in the script"),
    ],
)
def test_what_is_not_plainly_redis(text: str, line: int, reason: str) -> None:
    found = convert("redis", text, "up")
    assert isinstance(found, NotPlain)
    assert found.line == line and reason in found.reason


def test_sql_from_sqlite_and_psql() -> None:
    sqlite = converted("sql", "sqlite3 /var/lib/app.db <<EOF\nCREATE TABLE t (id INTEGER);\nEOF\n")
    assert sqlite.connection == "sqlite:////var/lib/app.db"
    assert sqlite.files["up.sql"].splitlines()[1:] == ["CREATE TABLE t (id INTEGER);"]
    psql = converted(
        "sql",
        'psql -v ON_ERROR_STOP=1 "${DATABASE_URL}" -c "DROP TABLE t;"\n',
        "down",
    )
    assert psql.connection == "${DATABASE_URL}"
    assert psql.files["down.sql"].splitlines()[1:] == ["DROP TABLE t;"]
    hosts = converted("sql", "psql -h db -U app -d platform -c 'SELECT 1'\n")
    assert hosts.connection == "postgresql://app@db:5432/platform"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("sqlite3 app.db <<EOF\nDELETE FROM t WHERE id = $ID;\nEOF\n", "uses a shell variable"),
        ("psql \"$URL\" <<'EOF'\n\\set x 1\nEOF\n", "is a psql command, not SQL"),
        ('psql "$URL" -f schema.sql\n', "psql -f reads another file"),
        ("mysql app < schema.sql\n", "`<` makes it more than one plain command"),
    ],
)
def test_what_is_not_plainly_sql(text: str, reason: str) -> None:
    found = convert("sql", text, "up")
    assert isinstance(found, NotPlain) and reason in found.reason, found


def test_guess_names_the_native_type() -> None:
    assert guess("redis-cli SET a 1\n") == "redis"
    assert guess("sqlite3 a.db 'SELECT 1'\n") == "sql"
    assert guess("kubectl apply -f a.yaml\nkubectl delete -f b.yaml\n") == "kubernetes"
    assert guess("redis-cli SET a 1\npsql -c 'SELECT 1'\n") is None


def test_unset_variables_leave_out_what_the_script_sets() -> None:
    text = 'DIR=/tmp\nfor f in a b; do cp "$SRC/$f" "$DIR"; done\necho "$HOME $RELEASECTL_ENV"\n'
    assert shell.unset_variables(text) == ["SRC"]


def test_the_old_headerless_history_and_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "migration_history.csv"
    path.write_text(
        "2025-01-01 10:00:00,redis,1,migration_started\n"
        "2025-01-01 10:00:01,redis,1,migration_completed\n"
        "\n"
        "1735725600,redis,2,migration_started\n"
    )
    rows = read_history(path, "h.csv")
    assert [(r.line, r.time, r.action, r.result, r.from_, r.to, r.actor) for r in rows] == [
        (1, "2025-01-01T10:00:00.000Z", "up", "started", 0, 1, "unknown"),
        (2, "2025-01-01T10:00:01.000Z", "up", "success", 0, 1, "unknown"),
        (4, "2025-01-01T10:00:00.000Z", "up", "started", 1, 2, "unknown"),
    ]
    path.write_text("when,what\n2025-01-01,x\n")
    with pytest.raises(InputError, match=r"h.csv:1: no header row naming the columns"):
        read_history(path, "h.csv")
    path.write_text("time,component,status\n2025-01-01 10:00:00,redis,exploded\n")
    with pytest.raises(InputError, match=r"h.csv:2: status: unknown status 'exploded'"):
        read_history(path, "h.csv")


def test_a_bad_type_option_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "old" / "scripts" / "migrations" / "state").mkdir(parents=True)
    result = run_cli("import-legacy", "old", "--type", "redis=kubernetes", cwd=tmp_path)
    assert result.code == 64, result
    assert "expected COMPONENT=script|redis|sql" in result.err
    missing = run_cli("import-legacy", "nowhere", cwd=tmp_path)
    assert missing.code == 1 and "nowhere: not a directory" in missing.err
