"""What the CLI does with terminals, on real pseudo-terminals: confirmation fails closed
(`releasectl apply | cat` without --yes is refused; a saved plan applies without a question),
and colour follows --no-color (before or after the subcommand) and any non-empty NO_COLOR."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_cli, run_proc

STATE = ".releasectl/state/local.json"


@dataclass
class TtyResult:
    code: int
    screen: str  # what the terminal showed (stderr, and stdout when it is the terminal)
    piped: str  # stdout when it is a pipe

    def __str__(self) -> str:
        return f"exit {self.code}\n--- terminal\n{self.screen}\n--- pipe\n{self.piped}"


def run_tty(
    *args: str,
    cwd: Path,
    stdout_tty: bool = True,
    answer: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> TtyResult:
    """Run releasectl with stdin and stderr on a pseudo-terminal (stdout too, or a pipe, as
    in `releasectl apply | cat`); type `answer` when it asks [y/N]."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "releasectl", *args],
        cwd=cwd,
        stdin=slave,
        stdout=slave if stdout_tty else subprocess.PIPE,
        stderr=slave,
        env={**os.environ, **(env or {})},
    )
    os.close(slave)
    screen, piped = b"", b""
    answered = False
    deadline = time.monotonic() + timeout
    streams = [master] + ([proc.stdout.fileno()] if proc.stdout else [])
    while streams and time.monotonic() < deadline:
        ready, _, _ = select.select(streams, [], [], 0.2)
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal closed with the process
                chunk = b""
            if not chunk:
                streams.remove(fd)
            elif fd == master:
                screen += chunk
            else:
                piped += chunk
        if answer is not None and not answered and b"[y/N]" in screen:
            os.write(master, answer.encode() + b"\n")
            answered = True
        if proc.poll() is not None and not ready:
            break
    code = proc.wait(timeout=10)
    os.close(master)
    if proc.stdout:
        piped += proc.stdout.read()
        proc.stdout.close()
    return TtyResult(code, screen.decode(errors="replace"), piped.decode(errors="replace"))


def test_apply_piped_without_yes_is_refused(example: Path) -> None:
    result = run_tty("apply", cwd=example, stdout_tty=False)
    assert result.code == 1, result
    assert "no terminal to ask on" in result.screen and "--yes" in result.screen
    assert "releasectl apply plan.json" in result.screen  # the other way: a saved plan
    assert "[y/N]" not in result.screen
    assert not (example / STATE).exists()


def test_apply_in_ci_without_yes_is_refused(example: Path) -> None:
    result = run_proc("apply", cwd=example)  # no terminal at all
    assert result.code == 1
    assert "no terminal to ask on" in result.err
    assert not (example / STATE).exists()


def test_apply_on_a_terminal_asks_and_no_means_nothing_changes(example: Path) -> None:
    refused = run_tty("apply", cwd=example, answer="n")
    assert refused.code == 1, refused
    assert "Apply 8 step(s) to environment 'local'? [y/N]" in refused.screen
    assert "apply cancelled; nothing changed" in refused.screen
    assert not (example / STATE).exists()
    accepted = run_tty("apply", cwd=example, answer="y")
    assert accepted.code == 0, accepted
    assert "Apply complete: 8 step(s) on local" in accepted.screen
    assert (example / STATE).exists()


def test_a_saved_plan_applies_without_a_question(example: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert run_cli("plan", "--out", plan, cwd=example).code == 0
    result = run_tty("apply", str(plan), cwd=example, stdout_tty=False)
    assert result.code == 0, result
    assert "[y/N]" not in result.screen
    assert "Apply complete: 8 step(s) on local" in result.piped


@pytest.mark.parametrize(
    ("args", "verb"),
    [(("migrate", "redis", "1"), "migrate"), (("restore", "redis", "BACKUP"), "restore")],
)
def test_migrate_rollback_and_restore_fail_closed_too(
    example: Path, args: tuple[str, ...], verb: str
) -> None:
    if verb == "restore":
        assert run_cli("apply", "--yes", cwd=example).code == 0
        backup = run_cli("backup", "redis", "--format", "json", cwd=example)
        args = ("restore", "redis", json.loads(backup.out)["id"])
    before = (example / STATE).read_text() if (example / STATE).exists() else None
    result = run_tty(*args, cwd=example, stdout_tty=False)
    assert result.code == 1, result
    assert f"{verb} needs a confirmation and there is no terminal to ask on" in result.screen
    after = (example / STATE).read_text() if (example / STATE).exists() else None
    assert after == before
    if verb == "migrate":
        assert run_cli("apply", "--yes", cwd=example).code == 0
        down = run_tty("rollback", "config", "1", cwd=example, stdout_tty=False)
        assert down.code == 1 and "rollback needs a confirmation" in down.screen
        confirmed = run_tty("rollback", "config", "1", cwd=example, answer="y")
        assert confirmed.code == 0, confirmed
        assert "Rollback 1 step(s) to environment 'local'? [y/N]" in confirmed.screen


def test_colour_on_a_terminal_and_every_way_to_turn_it_off(example: Path) -> None:
    coloured = run_tty("plan", cwd=example)
    assert coloured.code == 0 and "\x1b[" in coloured.screen
    for args, env in (
        (("plan",), {"NO_COLOR": "anything"}),
        (("plan",), {"NO_COLOR": "1"}),
        (("--no-color", "plan"), {}),
        (("plan", "--no-color"), {}),
    ):
        plain = run_tty(*args, cwd=example, env=env)
        assert plain.code == 0, (args, env, plain)
        assert "\x1b[" not in plain.screen and "config" in plain.screen
    empty = run_tty("plan", cwd=example, env={"NO_COLOR": ""})  # empty: colour stays on
    assert "\x1b[" in empty.screen


def test_no_color_with_any_value_works_everywhere(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "anything")
    assert run_cli("status", cwd=example).code == 0
    assert run_cli("release", "show", "1.1.0", "--no-color", cwd=example).code == 0
    assert run_cli("version", "list", "--no-color", cwd=example).code == 0
