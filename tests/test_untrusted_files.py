"""What a pull request may make releasectl read: no link out of the workspace, no hard link,
device or FIFO, no file past its cap, and never more than a short excerpt of a file in an
error (tests against the example workspace, the real CLI, the embedded Redis and SQLite)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from releasectl.errors import InputError
from tests.conftest import run_cli

CANARY = "canary-7f3a9c-runner-private-file"
META = "migrations/redis/0001_initial_settings/migration.yaml"
UP = "migrations/redis/0002_monitoring_performance/up.yaml"
SQL = "migrations/database/0001_initial_schema/up.sql"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file of the runner, outside the workspace, that no plan comment may show."""
    path = tmp_path / "runner-secret.txt"
    path.write_text(f"root:x:0:0:{CANARY}:/root:/bin/bash\n" * 20)
    return path


def state(example: Path) -> dict[str, object] | None:
    path = example / ".releasectl/state/local.json"
    return json.loads(path.read_text()) if path.exists() else None


def refused(example: Path, *args: str) -> str:
    result = run_cli(*args, cwd=example)
    assert result.code == 1, result
    assert CANARY not in result.out + result.err
    assert "root:x:0:0" not in result.out + result.err
    return result.err


@pytest.mark.parametrize("name", [META, UP, SQL])
def test_a_link_out_of_the_workspace_is_refused_by_every_command(
    example: Path, outside: Path, name: str
) -> None:
    target = example / name
    target.unlink()
    target.symlink_to(outside)
    for args in (
        ("validate",),
        ("plan",),
        ("plan", "--format", "markdown"),
        ("apply", "--yes"),
        ("release", "validate", "1.1.0"),
    ):
        err = refused(example, *args)
        assert f"{name}: resolves outside the workspace (through a link)" in err
    assert state(example) is None  # apply ran nothing
    assert not (example / ".releasectl/local/platform.db").exists()


def test_the_link_of_the_issue_to_etc_passwd(example: Path) -> None:
    target = example / META
    target.unlink()
    target.symlink_to("/etc/passwd")
    err = refused(example, "validate")
    assert "resolves outside the workspace" in err
    assert "daemon:" not in err and "/bin/bash" not in err


def test_a_linked_directory_out_of_the_workspace_is_refused(
    example: Path, tmp_path: Path, outside: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "up.yaml").write_text(f"ops: []\n# {CANARY}\n")
    (example / "migrations/redis/0003_linked").symlink_to(elsewhere)
    err = refused(example, "validate")
    assert "migrations/redis/0003_linked: resolves outside the workspace" in err
    # the whole migrations directory of a component, through a link
    redis_dir = example / "migrations/redis"
    moved = tmp_path / "redis-migrations"
    redis_dir.rename(moved)
    redis_dir.symlink_to(moved)
    err = refused(example, "plan")
    assert "migrations/redis: migrations directory resolves outside the workspace" in err


def test_a_link_inside_the_workspace_is_fine(example: Path) -> None:
    shared = example / "migrations/redis/shared-verify.yaml"
    verify = example / "migrations/redis/0001_initial_settings/verify.yaml"
    shared.write_text(verify.read_text())
    verify.unlink()
    verify.symlink_to("../shared-verify.yaml")
    result = run_cli("validate", cwd=example)
    assert result.code == 0, result


def test_a_hard_link_is_refused(example: Path, tmp_path: Path) -> None:
    up = example / UP
    copy = tmp_path / "copy-of-up.yaml"
    copy.write_text(up.read_text())
    up.unlink()
    os.link(copy, up)  # the same file under a name outside the workspace
    err = refused(example, "validate")
    assert f"{UP}: has 2 hard links" in err


def test_a_fifo_is_refused_without_waiting_for_a_writer(example: Path) -> None:
    up = example / UP
    up.unlink()
    os.mkfifo(up)
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(refused(example, "plan")))
    worker.start()
    worker.join(20)
    if worker.is_alive():  # pragma: no cover - the defect: open() blocks on the FIFO
        with open(up, "wb"):  # let the reader go, then fail
            pass
        worker.join(20)
        pytest.fail("plan blocked on a FIFO in a migration")
    assert f"{UP}: is a FIFO, not a regular file: refused" in outcome[0]


def test_a_device_is_refused(example: Path) -> None:
    up = example / UP
    up.unlink()
    up.symlink_to("/dev/zero")  # a device behind a link: refused before it is read
    err = refused(example, "validate")
    assert UP in err


def test_a_huge_migration_file_is_refused_before_it_is_read(example: Path) -> None:
    up = example / SQL
    with up.open("ab") as fh:  # 200 MB, sparse: costs nothing to make
        fh.truncate(200 * 1024 * 1024)
    result = run_cli("validate", cwd=example)
    assert result.code == 1, result
    assert f"{SQL}: file is larger than the limit of 16,777,216 bytes" in result.err
    assert "RELEASECTL_MAX_FILE_BYTES raises it" in result.err


def test_the_file_cap_is_configurable(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size = (example / SQL).stat().st_size
    monkeypatch.setenv("RELEASECTL_MAX_FILE_BYTES", str(size - 1))
    result = run_cli("validate", cwd=example)
    assert result.code == 1 and f": file is larger than the limit of {size - 1:,}" in result.err
    monkeypatch.setenv("RELEASECTL_MAX_FILE_BYTES", "1M")
    assert run_cli("validate", cwd=example).code == 0
    monkeypatch.setenv("RELEASECTL_MAX_YAML_BYTES", "100")
    result = run_cli("validate", cwd=example)
    assert result.code == 1
    assert "releasectl.yaml: file is larger than the limit of 100 bytes" in result.err
    assert "RELEASECTL_MAX_YAML_BYTES raises it" in result.err
    monkeypatch.setenv("RELEASECTL_MAX_YAML_BYTES", "lots")
    result = run_cli("validate", cwd=example)
    assert result.code == 1 and "RELEASECTL_MAX_YAML_BYTES must be a positive number" in result.err


def test_a_file_that_is_not_yaml_of_the_right_shape_is_never_quoted(example: Path) -> None:
    # text that parses as one YAML string: the error says what it found, not what it says
    (example / META).write_text(f"{CANARY} " * 2000 + "\n")
    err = refused(example, "validate")
    assert f"{META}:1: expected a mapping at the top of the file, found text" in err
    (example / META).write_text(f"description: [{CANARY}]\n")
    err = refused(example, "validate")
    assert "description" in err


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("redis: {version: 2}", "redis: {version: VALUE}"),  # a value of the wrong type
        ("date: ", "date: [VALUE]\ndate: "),  # a duplicate key, which the YAML error quotes
    ],
)
def test_a_long_value_in_an_error_is_an_excerpt(example: Path, old: str, new: str) -> None:
    release = example / "releases/1.1.0.yaml"
    text = release.read_text()
    assert old in text
    release.write_text(text.replace(old, new.replace("VALUE", "x" * 5000), 1))
    result = run_cli("validate", cwd=example)
    assert result.code == 1
    assert "releases/1.1.0.yaml:" in result.err
    assert "x" * 100 not in result.err
    assert len(result.err) < 1000


def test_safefiles_checks_the_opened_file(tmp_path: Path) -> None:
    from releasectl.util import safefiles

    root = tmp_path / "ws"
    root.mkdir()
    safefiles.confine(root)
    (root / "a.txt").write_text("hello")
    data, st = safefiles.read(root / "a.txt")
    assert data == b"hello" and st.st_size == 5
    with pytest.raises(InputError, match=r"a\.txt: file is larger than the limit of 4 bytes"):
        safefiles.read(root / "a.txt", limit=4)
    with pytest.raises(InputError, match="file not found"):
        safefiles.read(root / "missing.txt")
    (root / "dir").mkdir()
    with pytest.raises(safefiles.UnsafeFileError, match="is a directory"):
        safefiles.read(root / "dir")
    (tmp_path / "out.txt").write_text("outside")
    (root / "link.txt").symlink_to(tmp_path / "out.txt")
    outside = r"link\.txt: resolves outside the workspace"
    with pytest.raises(safefiles.UnsafeFileError, match=outside):
        safefiles.read(root / "link.txt")
    assert safefiles.display_of(str(root / "dir" / "x")) == "dir/x"


def test_the_history_is_never_appended_through_a_link(example: Path, outside: Path) -> None:
    before = outside.read_text()
    history = example / ".releasectl/history/local.jsonl"
    history.parent.mkdir(parents=True)
    history.symlink_to(outside)  # committed by a pull request: `.releasectl/` may be committed
    result = run_cli("apply", "--yes", cwd=example)
    assert result.code == 1, result
    assert ".releasectl/history/local.jsonl: resolves outside the workspace" in result.err
    assert outside.read_text() == before
    assert state(example) is None  # refused before anything ran
    state_path = example / ".releasectl/state/local.json"
    history.unlink()
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.symlink_to(outside)
    err = refused(example, "status")
    assert ".releasectl/state/local.json: resolves outside the workspace" in err


def test_a_nul_byte_does_not_hide_a_secret(example: Path) -> None:
    notes = example / "migrations/redis/0002_monitoring_performance/notes.txt"
    notes.write_bytes(b"\x00binary?\npassword: hunter2-long-random-xyz\n")
    result = run_cli("validate", cwd=example)
    assert result.code == 1, result
    assert "notes.txt:2: literal secret" in result.err
