"""The bad-input corpus: every file under tests/badinput/<slot>/ is planted in a copy of the
example workspace and the real CLI runs on it (a subprocess). Each must end in releasectl's
own error with the documented exit code, no traceback, within 2 s of CPU and 200 MB of memory,
and without showing a file of the runner. tests/badinput/README.md describes the slots, the
file kinds and tests/badinput/expected.toml, which says what each case must report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, copy_example

CORPUS = REPO / "tests" / "badinput"
CANARY = "canary-5d1e-of-the-runner"
CPU_SECONDS = 2.0
WALL_SECONDS = 20.0  # a loaded CI machine; the CPU bound is the real one
MAX_RSS_BYTES = 200 * 1024 * 1024
PLAN = "plan.json"

# slot -> (where the file goes in the workspace, the command, the exit code it must end with)
SLOTS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "workspace": ("releasectl.yaml", ("validate",), 1),
    "manifest": ("releases/1.1.0.yaml", ("plan",), 1),
    "meta": ("migrations/redis/0001_initial_settings/migration.yaml", ("validate",), 1),
    "redis-up": ("migrations/redis/0002_monitoring_performance/up.yaml", ("plan",), 1),
    "configmap": ("migrations/config/0002_security_monitoring/auth-service.yaml", ("plan",), 1),
    "sql": ("migrations/database/0001_initial_schema/up.sql", ("validate",), 1),
    "cedar": ("migrations/policies/0001_rbac_framework/guardrails.cedar", ("validate",), 1),
    "entities": ("authz/entities.yaml", ("validate",), 1),
    "plan": (PLAN, ("apply", PLAN), 1),
    "package": ("package.tar.gz", ("release", "verify", "package.tar.gz"), 1),
    "state": (".releasectl/state/local.json", ("status",), 1),
}
SPECIAL = (".link", ".hardlink", ".fifo", ".sparse", ".edit.json")


def expectations() -> dict[str, dict[str, Any]]:
    with (CORPUS / "expected.toml").open("rb") as fh:
        return tomllib.load(fh)


def cases() -> list[str]:
    return sorted(
        f"{path.parent.name}/{path.name}"
        for path in CORPUS.glob("*/*")
        if path.is_file() and path.parent.name in SLOTS
    )


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    cpu: float
    wall: float
    rss: int


def run(root: Path, *args: str) -> Outcome:
    """Run the CLI in a child process; its own CPU time and peak memory from wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        env = {**os.environ, "RELEASECTL_JOBS": "1"}
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "releasectl", *args],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
        )
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - started > WALL_SECONDS * 3:
                os.kill(proc.pid, signal.SIGKILL)
                os.wait4(proc.pid, 0)
                pytest.fail(f"releasectl {' '.join(args)} ran for more than {WALL_SECONDS * 3} s")
            time.sleep(0.01)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return Outcome(
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            usage.ru_utime + usage.ru_stime,
            wall,
            usage.ru_maxrss * 1024,  # KiB on Linux
        )


def workspace(tmp: Path) -> Path:
    return copy_example(tmp / "ws")


def plant(root: Path, case: str, tmp: Path) -> Path:
    slot, name = case.split("/", 1)
    source = CORPUS / case
    target = root / SLOTS[slot][0]
    target.parent.mkdir(parents=True, exist_ok=True)
    outside = tmp / "runner-file.txt"
    outside.write_text(f"root:x:0:0:{CANARY}:/root:/bin/bash\n" * 50)
    if target.exists():
        target.unlink()
    if name.endswith(".edit.json"):
        made = run(root, "plan", "--out", PLAN)
        assert made.code == 0, made
        doc = json.loads(target.read_text())
        _merge(doc, json.loads(source.read_text()))
        target.write_text(json.dumps(doc))
    elif name.endswith(".link"):
        target.symlink_to(source.read_text().strip().replace("{outside}", str(outside)))
    elif name.endswith(".hardlink"):
        copy = tmp / "outside-copy"
        shutil.copy2(REPO / SLOTS[slot][0], copy)
        os.link(copy, target)
    elif name.endswith(".fifo"):
        os.mkfifo(target)
    elif name.endswith(".sparse"):
        with target.open("wb") as fh:
            fh.truncate(int(source.read_text()))
    else:
        shutil.copyfile(source, target)
    return target


def _merge(doc: Any, patch: Any) -> None:
    """Apply a patch: a mapping sets keys (digits index lists), anything else replaces."""
    for key, value in patch.items():
        index: Any = int(key) if isinstance(doc, list) else key
        if isinstance(value, dict) and isinstance(doc[index], dict | list):
            _merge(doc[index], value)
        else:
            doc[index] = value


@pytest.mark.parametrize("case", cases())
def test_bad_input(case: str, tmp_path: Path) -> None:
    expected = expectations().get(case)
    assert expected is not None, f"{case}: add what it must report to tests/badinput/expected.toml"
    slot = case.split("/", 1)[0]
    root = workspace(tmp_path)
    plant(root, case, tmp_path)
    command = tuple(expected.get("command", SLOTS[slot][1]))
    outcome = run(root, *command)
    shown = outcome.out + outcome.err
    assert outcome.code == expected.get("exit", SLOTS[slot][2]), (case, outcome)
    assert "Traceback" not in shown and "internal error" not in shown, (case, outcome)
    assert outcome.err.startswith("error: "), (case, outcome)
    assert expected["message"] in outcome.err, (case, outcome.err)
    assert CANARY not in shown and "root:x:0:0" not in shown, (case, outcome)
    assert len(outcome.err) < 20_000, (case, len(outcome.err))
    assert outcome.cpu < CPU_SECONDS, (case, outcome.cpu)
    assert outcome.wall < WALL_SECONDS, (case, outcome.wall)
    assert outcome.rss < MAX_RSS_BYTES, (case, outcome.rss)
    if slot == "workspace" and "python-tag" in case:
        assert not Path("/tmp/pwned-releasectl").exists()


def test_the_corpus_is_large_and_complete() -> None:
    found = cases()
    assert len(found) >= 60
    assert set(expectations()) == set(found)
    kinds = {next((k for k in SPECIAL if c.endswith(k)), Path(c).suffix) for c in found}
    assert {".link", ".hardlink", ".fifo", ".sparse", ".edit.json", ".yaml", ".gz"} <= kinds
