"""Shared fixtures: real git repos, the example workspace copied to tmp, real Redis servers,
real PostgreSQL databases, and a CLI runner that goes through `main()` (exit codes included)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.k8semu import KubeEmulator

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PARTS = ("releasectl.yaml", "releases", "migrations", "authz", "schemas", ".gitignore")
POSTGRES_ENV = "RELEASECTL_TEST_POSTGRES_URL"

# Nothing a test does may touch the developer's $HOME or git identity.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture(autouse=True)
def _isolated_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    for key in (
        "RELEASECTL_ENV",
        "RELEASECTL_WORKSPACE",
        "RELEASECTL_ACTOR",
        "GITHUB_ACTOR",
        "GITLAB_USER_LOGIN",
        "CI",
        "RELEASECTL_BACKUP_KEY",
        "RELEASECTL_APPROVALS",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RELEASECTL_ACTOR", "tester")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def run_cli(*args: str | os.PathLike[str], cwd: Path | None = None) -> Result:
    """Run releasectl in-process through `main()`, as the console script does."""
    from releasectl.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        os.chdir(old)
    return Result(code, out.getvalue(), err.getvalue())


def run_proc(
    *args: str | os.PathLike[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Result:
    """Run releasectl as a separate process (for crash and concurrency tests)."""
    proc = subprocess.run(
        [sys.executable, "-m", "releasectl", *[str(a) for a in args]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def init_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "commit.gpgsign", "false")
    return path


def copy_example(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for part in EXAMPLE_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part)
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """The repository's example workspace as shipped (its .gitignore too), copied into a fresh
    git repo."""
    ws = copy_example(init_repo(tmp_path / "ws"))
    git(ws, "add", "-A")
    git(ws, "commit", "-q", "-m", "chore: example workspace")
    return ws


# --- Redis -----------------------------------------------------------------------------


def wait_for(
    what: str,
    check: Callable[[], object],
    timeout: float = 30.0,
    *,
    poll: float = 0.05,
    details: Callable[[], object] | None = None,
) -> None:
    """Poll `check` until it is true; fail after `timeout` s naming `what` (and `details()`,
    such as a child's output)."""
    until = time.monotonic() + timeout
    while not check():
        if time.monotonic() >= until:
            shown = f": {details()}" if details is not None else ""
            raise AssertionError(f"timed out waiting for {what}{shown}")
        time.sleep(poll)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class RedisServer:
    url: str
    port: int
    proc: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server from the machine, on a free port, for this test session."""
    exe = shutil.which("redis-server")
    if exe is None:  # pragma: no cover - .ci/run installs it
        pytest.fail("redis-server is not on PATH")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
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
    yield RedisServer(f"redis://127.0.0.1:{port}/0", port, proc)
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A clean database on the private server (flushed before and after the test)."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.flushall()
    client.close()


# --- PostgreSQL ------------------------------------------------------------------------


def postgres_base() -> str:
    """The server URL from RELEASECTL_TEST_POSTGRES_URL; the test skips without it (on a laptop;
    `.ci/run` sets it and fails on any skip)."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set (.ci/run sets it; CI fails on any skip)")
    return base


def create_postgres_database(prefix: str = "rtest") -> str:
    """A new, empty database on that server; its URL. `drop_postgres_database` ends it."""
    import psycopg

    base = postgres_base()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}"


def drop_postgres_database(url: str) -> None:
    import psycopg

    name = url.rpartition("/")[2]
    with psycopg.connect(postgres_base(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the server named by RELEASECTL_TEST_POSTGRES_URL, dropped after."""
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


# --- Kubernetes ------------------------------------------------------------------------


@pytest.fixture
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeEmulator]:
    """A loopback Kubernetes API server (tests/k8semu) and a kubeconfig pointing at it:
    `kube.kubeconfig`, `kube.context`, `kube.get(kind, name)`, `kube.cluster.fail(...)`."""
    from tests.k8semu import KubeEmulator

    with KubeEmulator.running(tmp_path_factory.mktemp("kube")) as emulator:
        yield emulator


# --- CI: a skipped test is a missing test ------------------------------------------------


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not os.environ.get("RELEASECTL_FAIL_ON_SKIP"):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if skipped:
        if reporter is not None:
            reporter.write_line(
                f"RELEASECTL_FAIL_ON_SKIP: {skipped} test(s) skipped; in CI every test must run",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- the fault suite's count (tests/faults) ---------------------------------------------


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many faults tests/faults injected, and how many ended consistent (passed)."""
    injected = survived = 0
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", None) != "call":
                continue
            if any(name == "fault" for name, _ in getattr(report, "user_properties", ())):
                injected += 1
                survived += outcome == "passed"
    if injected:
        terminalreporter.write_line(
            f"fault suite: {injected} faults injected, {survived} survived "
            f"(consistent data and state, recovered, next apply done, history verified)",
            green=injected == survived,
            red=injected != survived,
        )
