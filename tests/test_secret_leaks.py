"""Secrets never appear: literal `password: ...`-like assignments are refused before plan,
wherever they are written; and every message that names a URL masks its credentials, well
formed or not (the real CLI, the embedded Redis, SQLite, and a private redis-server with a
password)."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from releasectl.secrets import redact, scan_text
from tests.builders import add_migration
from tests.conftest import free_port, run_cli, run_proc

SECRET = "hunter2-long-random-xyz"


def plant_up_yaml(ws: Path) -> str:
    path = "migrations/redis/0002_monitoring_performance/up.yaml"
    text = (ws / path).read_text()
    (ws / path).write_text(
        text.replace('        p99_token_latency_ms: "250"', f"        password: {SECRET}")
    )
    return path


def plant_configmap(ws: Path) -> str:
    path = "migrations/config/0002_security_monitoring/auth-service.yaml"
    text = (ws / path).read_text()
    (ws / path).write_text(text.replace('  AUTH_LOG_FORMAT: "json"', f'  DB_PASSWORD: "{SECRET}"'))
    return path


def plant_sql(ws: Path) -> str:
    path = "migrations/database/0001_initial_schema/up.sql"
    with (ws / path).open("a") as fh:
        fh.write(f"INSERT INTO settings (name, value) VALUES ('smtp', 'password: {SECRET}');\n")
    return path


def plant_sql_role(ws: Path) -> str:
    path = "migrations/database/0001_initial_schema/up.sql"
    with (ws / path).open("a") as fh:
        fh.write(f"CREATE ROLE reporting LOGIN PASSWORD '{SECRET}';\n")
    return path


def plant_migration_py(ws: Path) -> str:
    add_migration(
        ws,
        "redis",
        "0003_python",
        {
            "migration.py": f"""
            SETTINGS = {{"password": "{SECRET}"}}

            def up(r):
                r.hset("config:smtp", mapping=SETTINGS)

            def down(r):
                r.delete("config:smtp")
            """,
            "migration.yaml": "scope: ['config:smtp']\n",
        },
    )
    release = ws / "releases/1.1.0.yaml"
    release.write_text(release.read_text().replace("redis: {version: 2}", "redis: {version: 3}"))
    return "migrations/redis/0003_python/migration.py"


def plant_manifest(ws: Path) -> str:
    path = "releases/1.1.0.yaml"
    text = (ws / path).read_text()
    (ws / path).write_text(
        text.replace(
            "description: Enhanced security and monitoring",
            f'description: "rotate it with password: {SECRET}"',
        )
    )
    return path


PLANTS = [
    plant_up_yaml,
    plant_configmap,
    plant_sql,
    plant_sql_role,
    plant_migration_py,
    plant_manifest,
]


@pytest.mark.parametrize("plant", PLANTS, ids=lambda f: f.__name__[6:])
def test_a_literal_password_is_refused_before_plan(example: Path, plant: object) -> None:
    assert callable(plant)
    where = plant(example)
    for args in (("validate",), ("plan",), ("plan", "--format", "json"), ("apply", "--yes")):
        result = run_cli(*args, cwd=example)
        assert result.code == 1, (args, result)
        assert f"{where}:" in result.err and "literal secret" in result.err, result
        assert SECRET not in result.out + result.err
    assert not (example / ".releasectl/state/local.json").exists()  # nothing ran
    assert not (example / ".releasectl/local/platform.db").exists()


@pytest.mark.parametrize(
    "text",
    [
        "password: ${DB_PASSWORD}",
        "password: $DB_PASSWORD",
        "password: '{{ .Values.password }}'",
        "secretKey: JWT_SIGNING_KEY",  # an ExternalSecret names a key, not a value
        "remoteRef: {key: rust-security/redis, property: password}",
        "password_hash VARCHAR(255),",
        "AUTH_TOKEN_AUDIENCE: rust-security-platform",
        "token_issuer: https://auth.example.org",
        "AUTH_PASSWORD_MIN_LENGTH: '12'",
        "password: changeme123",
        "password: <your-password-here>",
        "api_key = get_api_key()",
        "password = settings.db_password",
        "password=db_password",
        "token: 550e8400-e29b-41d4-a716-446655440000",
        "auth_token: disabled",
        "secret: {name: auth-service-secrets}",
        "private_key: /etc/ssl/private/tls.key",
        "client_secret: abcdefghijklmnop",
        "password: aaaaaaaaaaaa",
        "if password == 'x':",
    ],
)
def test_what_is_not_a_literal_secret(text: str) -> None:
    assert scan_text(text) == [], text


@pytest.mark.parametrize(
    "text",
    [
        f"password: {SECRET}",
        f'  "api_key": "{SECRET}"',
        "export AUTH_TOKEN=ab12Cd34Ef56gh",
        "DATABASE_PASSWORD='s3cr3tP4ss-word'",
        'client_secret := "Zz9-abcdefgh-12345"',
        "password => 'Password1'",
        f"ALTER USER app WITH ENCRYPTED PASSWORD '{SECRET}';",
        f"GRANT ALL ON db.* TO 'app' IDENTIFIED BY '{SECRET}';",
    ],
)
def test_generic_assignments_are_found(text: str) -> None:
    found = scan_text(text)
    assert len(found) == 1, text
    assert text[found[0].column - 1 :].startswith(("hunter2", "ab12", "s3cr", "Zz9", "Pass"))


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("redis//:PASS@127.0.0.1:6481/0", "redis//:***@127.0.0.1:6481/0"),
        ("redis://:PASS@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://user:PASS@h", "redis://user:***@h"),
        ("redis://PASS@h:6379", "redis://***@h:6379"),
        ("redis:PASS@h:6379", "redis:***@h:6379"),
        ("redis:/:PASS@h", "redis:***@h"),
        (":PASS@127.0.0.1:6379", ":***@127.0.0.1:6379"),
        ("PASS@127.0.0.1:6379/0", "***@127.0.0.1:6379/0"),
        ("redis://:p@ss:w@h/0", "redis://:***@h/0"),
        ("redis://:ab/cd@host", "redis://:***@host"),
        (
            "postgresql://u:PASS@h/db?sslpassword=PASS&x=1",
            "postgresql://u:***@h/db?sslpassword=***&x=1",
        ),
        (
            "in 'rediss://u:PASS@h' and (redis://:PASS@h2)",
            "in 'rediss://u:***@h' and (redis://:***@h2)",
        ),
        ("by alice@example.com", "by alice@example.com"),
        ("see https://mastodon.social/@alice", "see https://mastodon.social/@alice"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
    ],
)
def test_credentials_in_any_url_like_string_are_masked(text: str, masked: str) -> None:
    assert redact(text) == masked


def test_a_malformed_state_url_never_shows_its_password(example: Path) -> None:
    # the case: `redis//` for `redis://`
    for url in (
        "redis//:PASS-7c1e@127.0.0.1:6481/0",
        "redis:/:PASS-7c1e@127.0.0.1:6481/0",
        "PASS-7c1e@127.0.0.1:6481/0",
        "redis://:PASS-7c1e@127.0.0.1:1/0",  # well formed, nothing listening
    ):
        for args in (("status", "--env", "staging"), ("plan", "--env", "staging")):
            result = run_proc(*args, cwd=example, env={"RELEASECTL_STATE_URL": url})
            assert result.code == 1, result
            assert "PASS-7c1e" not in result.out + result.err, (url, result)
            assert "***" in result.err, result
            assert "Traceback" not in result.err


def test_a_malformed_database_url_never_shows_its_password(example: Path) -> None:
    env = {
        "RELEASECTL_STATE_URL": "redis+embedded://.releasectl/staging-state.db",
        "REDIS_URL": "redis+embedded://.releasectl/staging-redis.db",
    }
    for url in ("sqlite:/:PASS-7c1e@x/db", "mysql://app:PASS-7c1e@db/x", "PASS-7c1e@db:5432/x"):
        result = run_proc(
            "--traceback",
            "migrate",
            "database",
            "--env",
            "staging",
            "--yes",
            cwd=example,
            env={**env, "DATABASE_URL": url},
        )
        assert result.code == 1, result
        assert "PASS-7c1e" not in result.out + result.err, (url, result)


@pytest.fixture
def locked_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """A private redis-server that wants a password, on a free port, stopped by its pid."""
    exe = shutil.which("redis-server")
    if exe is None:  # pragma: no cover - .ci/run makes sure it is there
        pytest.fail("redis-server is not on PATH")
    port, password = free_port(), "s3cret-Pw-4f9d2a"
    workdir = tmp_path_factory.mktemp("redis-pw")
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--requirepass",
            password,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        time.sleep(0.05)
    try:
        yield port, password
    finally:
        proc.terminate()
        proc.wait(10)


def test_state_urls_against_a_redis_with_a_password(
    example: Path, locked_redis: tuple[int, str]
) -> None:
    port, password = locked_redis
    good = f"redis://:{password}@127.0.0.1:{port}/0"
    ok = run_proc(
        "status",
        "--env",
        "staging",
        "--format",
        "json",
        cwd=example,
        env={"RELEASECTL_STATE_URL": good},
    )
    assert ok.code == 0, ok
    assert json.loads(ok.out)["env"] == "staging"
    for url in (
        f"redis://:wrong-{password}@127.0.0.1:{port}/0",  # refused by the server
        f"redis://default:{password}x@127.0.0.1:{port}/0",
        f"redis//:{password}@127.0.0.1:{port}/0",  # malformed
        f"redis://{password}@127.0.0.1:{port}/0",  # a lone userinfo is a password to redis-py
    ):
        result = run_proc(
            "--traceback",
            "status",
            "--env",
            "staging",
            cwd=example,
            env={"RELEASECTL_STATE_URL": url},
        )
        assert result.code == 1, (url, result)
        assert password not in result.out + result.err, (url, result)
        assert "***" in result.err
