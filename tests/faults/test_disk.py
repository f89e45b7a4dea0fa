"""Writes that fail: the backup directory runs out of space (ENOSPC, on a 1 MiB tmpfs where
this machine lets the tests mount one, else injected at the backup write seam), and a state
write fails after the target changed (injected EIO: the record of a step that ran, or any
state write at a seeded random position)."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from releasectl.util import failpoints
from tests.faults.conftest import MakeFault
from tests.faults.harness import Fault
from tests.faults.kinds import KINDS, TOP

BACKED_UP = [name for name, kind in KINDS.items() if kind.backup]


@pytest.fixture(scope="session")
def tiny_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """A 1 MiB tmpfs, or None where mounting is not allowed (then ENOSPC is injected)."""
    mount = tmp_path_factory.mktemp("tiny")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True, check=False)


def fill(directory: Path) -> Path:
    """Fill the file system of `directory` to the last byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


@pytest.mark.parametrize("how", ["tmpfs", "injected"])
@pytest.mark.parametrize("kind", BACKED_UP)
def test_the_backup_directory_is_full(
    make_fault: MakeFault,
    injected: Callable[[str], None],
    tiny_disk: Path | None,
    kind: str,
    how: str,
) -> None:
    if how == "tmpfs" and tiny_disk is not None:
        backups = tiny_disk / f"{kind}-{random.getrandbits(32):08x}"
        backups.mkdir()
        fault = make_fault(kind, backups={"path": str(backups)})
        filler = fill(tiny_disk)
        try:
            code = run_and_fail(fault, None)
        finally:
            filler.unlink()
        label = "a full 1 MiB tmpfs"
    else:
        backups = None
        fault = make_fault(kind)
        code = run_and_fail(fault, "backup-write=enospc")
        label = "ENOSPC injected at the backup write"
    assert code == 1
    err = fault.notes[-1]
    assert "No space left on device" in err, err
    injected(f"{kind}: backup directory full ({label})")
    shown = fault.status()
    assert not shown["dirty"] and fault.version(shown) == 0, shown
    where = backups if backups is not None else fault.root
    leftovers = [p.name for p in where.rglob("*.partial")]
    assert leftovers == [], leftovers
    fault.settle()
    if backups is not None:
        shutil.rmtree(backups)  # the tmpfs is shared by this process's faults


def run_and_fail(fault: Fault, failpoint: str | None) -> int:
    """apply with `failpoint` (or none): its exit code; its stderr goes to `fault.notes`."""
    child = fault.apply(failpoint=failpoint)
    code = child.wait()
    fault.notes.append(child.err.read_text())
    return code


STATE_CASES = [
    pytest.param(kind, "record@1=error", id=f"{kind}-record-of-step2") for kind in KINDS
] + [
    pytest.param(kind, f"state-write@{k}=error", id=f"{kind}-state-write-{k}")
    for kind in KINDS
    for k in random.Random(f"{kind}:state").sample(range(3 * TOP + 1), 2)
]


@pytest.mark.parametrize(("kind", "rule"), STATE_CASES)
def test_a_state_write_fails(
    make_fault: MakeFault,
    injected: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    rule: str,
) -> None:
    fault = make_fault(kind)
    monkeypatch.setenv(failpoints.ENV, rule)
    result = fault.cli("apply", "--yes")
    monkeypatch.delenv(failpoints.ENV)
    assert result.code == 1, result
    assert errno.errorcode[errno.EIO] in result.err or "Input/output error" in result.err, result
    assert "internal error" not in result.err, result
    if rule.startswith("record"):
        assert "ran and verified, but recording it failed" in result.err
        assert fault.status()["journal"]["phase"] == "record"  # recover rolls it forward
    injected(f"{kind}: state write fails ({rule})")
    fault.settle()
