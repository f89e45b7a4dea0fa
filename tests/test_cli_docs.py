"""docs/cli.md is the CLI's own --help (regenerate: `python -m releasectl.cli.clidocs --write`);
every command's help has examples; shell completion names what the workspace holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

from releasectl.cli import clidocs
from releasectl.cli.app import cli
from tests.conftest import REPO, run_cli


def test_docs_cli_md_is_generated_from_the_cli() -> None:
    assert (REPO / "docs" / "cli.md").read_text() == clidocs.render(), (
        "docs/cli.md is out of date: run `python -m releasectl.cli.clidocs --write`"
    )


def test_every_command_has_examples_of_itself() -> None:
    root = click.Context(cli, info_name="releasectl", terminal_width=100)
    seen = []
    for command, ctx in clidocs._commands(cli, root):
        text = command.get_help(ctx)
        assert "Examples:" in text, f"{ctx.command_path} --help has no examples"
        examples = text.split("Examples:", 1)[1]
        lines = [line.strip() for line in examples.splitlines() if line.strip()]
        path = ctx.command_path
        assert any(line.startswith(path) or line.startswith("releasectl ") for line in lines)
        if path != "releasectl":
            own = path.split(" ", 1)[1]
            assert any(f" {own}" in line for line in lines), f"{path}: examples of other commands"
        seen.append(path)
    assert len(seen) >= 30 and "releasectl release create" in seen


def complete(words: str, cwd: Path, env: dict[str, str] | None = None) -> list[str]:
    """What bash completion offers for the last word of `words` (a real process)."""
    parts = words.split(" ")
    proc = subprocess.run(
        [sys.executable, "-c", "from releasectl.cli.app import main; main()"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            **(env or {}),
            "_RELEASECTL_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(parts) - 1),
        },
    )
    assert proc.returncode == 0, proc.stderr
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines() if line]


def test_completion_of_environments_components_releases_and_backups(example: Path) -> None:
    assert complete("releasectl plan --env ", example) == ["local", "staging", "prod"]
    assert complete("releasectl --env st", example) == ["staging"]
    assert complete("releasectl migrate po", example) == ["policies", "policy-service"]
    assert "platform" in complete("releasectl version bump ", example)
    assert complete("releasectl release show ", example) == ["1.1.0", "1.0.0"]
    assert complete("releasectl plan --release 1.0", example) == ["1.0.0"]
    assert complete("releasectl restore redis ", example) == []  # no backups yet
    assert run_cli("apply", "--yes", cwd=example).code == 0
    made = json.loads(run_cli("backup", "redis", "--format", "json", cwd=example).out)["id"]
    offered = complete("releasectl restore redis ", example)
    assert offered[0] == made and all("-redis-" in i for i in offered)
    assert complete("releasectl status --no-c", example) == ["--no-color"]


def test_completion_survives_a_broken_workspace(tmp_path: Path) -> None:
    (tmp_path / "releasectl.yaml").write_text("components: [\n")
    assert complete("releasectl plan --env ", tmp_path) == []
    assert complete("releasectl plan --env ", tmp_path / "..") == []
