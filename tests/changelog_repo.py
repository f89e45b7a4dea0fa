"""A git repository for changelog tests, driven by the real git CLI: commits with files and a
clock that moves a minute per commit (so date order is well defined), tags, branches, merges."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import Result, init_repo, run_cli


class Repo:
    def __init__(self, path: Path, *, start: int = 1_767_225_600) -> None:  # 2026-01-01
        self.path = init_repo(path)
        self.clock = start

    def git(self, *args: str, when: int | None = None) -> str:
        env = dict(os.environ)
        if when is not None:
            stamp = f"{when} +0000"
            env.update(GIT_AUTHOR_DATE=stamp, GIT_COMMITTER_DATE=stamp)
        proc = subprocess.run(
            ["git", *args], cwd=self.path, env=env, capture_output=True, text=True, check=True
        )
        return proc.stdout

    def tick(self) -> int:
        self.clock += 60
        return self.clock

    def commit(
        self,
        message: str,
        files: dict[str, str] | None = None,
        *,
        author: str | None = None,
    ) -> str:
        for name, text in (files or {}).items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            self.git("add", name)
        args = ["commit", "-q", "--allow-empty", "-m", message]
        if author is not None:
            args.append(f"--author={author}")
        self.git(*args, when=self.tick())
        return self.sha("HEAD")

    def tag(self, name: str, rev: str = "HEAD", *, annotated: bool = False) -> None:
        if annotated:
            self.git("tag", "-a", name, rev, "-m", f"release {name}", when=self.tick())
        else:
            self.git("tag", name, rev)

    def merge(self, branch: str, message: str) -> str:
        self.git("merge", "-q", "--no-ff", branch, "-m", message, when=self.tick())
        return self.sha("HEAD")

    def sha(self, rev: str) -> str:
        return self.git("rev-parse", f"{rev}^{{commit}}").strip()

    def date(self, rev: str) -> str:
        return self.git("log", "-1", "--format=%cs", rev).strip()

    def cli(self, *args: str | Path, cwd: Path | None = None) -> Result:
        return run_cli("changelog", *args, cwd=cwd or self.path)

    def json(self, *args: str | Path, cwd: Path | None = None) -> dict[str, Any]:
        result = self.cli(*args, "--format", "json", cwd=cwd)
        assert result.code == 0, result
        data: dict[str, Any] = json.loads(result.out)
        return data

    def markdown(self, *args: str | Path, cwd: Path | None = None) -> str:
        result = self.cli(*args, cwd=cwd)
        assert result.code == 0, result
        return result.out


def subjects(doc: dict[str, Any]) -> list[str]:
    """Every subject of a document's (or release's) sections, in order."""
    return [c["subject"] for s in doc["sections"] for c in s["commits"]]


def by_release(doc: dict[str, Any]) -> list[tuple[str | None, list[str]]]:
    return [(r["version"], subjects(r)) for r in doc["releases"]]
