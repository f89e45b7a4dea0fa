"""The script target with real shells and real files: environment, captured output, timeouts
that kill the process group, exit codes, scoped file backups and rollback."""

from __future__ import annotations

import io
import os
import signal
import tarfile
import time
from pathlib import Path
from typing import Any, Literal

import pytest

from releasectl.errors import TargetError
from releasectl.models.plan import Step
from releasectl.models.workspace import ScriptTarget as ScriptSettings
from releasectl.targets.base import Failure, TargetContext
from releasectl.targets.script import checks as script_checks
from releasectl.targets.script.target import ScriptFailed, ScriptTarget
from releasectl.util.deadline import Deadline, StepTimeout
from releasectl.workspace.catalogue import Migration, scan_component
from tests.builders import add_migration

COMPONENT = "hooks"


def write_migration(root: Path, number: int, slug: str, files: dict[str, str]) -> Path:
    return add_migration(root, COMPONENT, f"{number:04d}_{slug}", files)


def open_target(root: Path, **settings: Any) -> ScriptTarget:
    found, errors = scan_component(root, COMPONENT, "script", f"migrations/{COMPONENT}")
    assert not errors, errors
    ctx = TargetContext(
        root=root,
        env="staging",
        component=COMPONENT,
        type="script",
        settings=ScriptSettings(**settings),
        migrations=found,
        environ={"PATH": os.environ["PATH"], "HOME": str(root)},
    )
    return ScriptTarget(ctx)


def migration(target: ScriptTarget, number: int) -> Migration:
    assert target.ctx.migrations is not None
    found = target.ctx.migrations.get(number)
    assert found is not None
    return found


def step(target: ScriptTarget, action: Literal["up", "down"], number: int) -> Step:
    m = migration(target, number)
    from_, to = (number - 1, number) if action == "up" else (number, number - 1)
    return Step(
        component=COMPONENT, type="script", action=action, **{"from": from_}, to=to, migration=m.id
    )


def tree(path: Path) -> dict[str, tuple[str, int, float | str]]:
    """Every entry under `path`: kind, mode and content (files) or target (links)."""
    out: dict[str, tuple[str, int, float | str]] = {}
    if not os.path.lexists(path):
        return out
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = str(full.relative_to(path))
            st = full.lstat()
            if full.is_symlink():
                out[rel] = ("link", 0, os.readlink(full))
            elif full.is_dir():
                out[rel] = ("dir", st.st_mode & 0o7777, st.st_mtime)
            else:
                out[rel] = ("file", st.st_mode & 0o7777, full.read_text() + f"@{st.st_mtime}")
    return out


def test_environment_workdir_and_output(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    write_migration(
        tmp_path,
        1,
        "env",
        {
            "up.sh": """
                echo "env=$RELEASECTL_ENV component=$RELEASECTL_COMPONENT action=$RELEASECTL_ACTION"
                echo "from=$RELEASECTL_FROM to=$RELEASECTL_TO migration=$RELEASECTL_MIGRATION"
                echo "dir=$RELEASECTL_MIGRATION_DIR ws=$RELEASECTL_WORKSPACE"
                echo "greeting=$GREETING rollback=$RELEASECTL_ROLLBACK pwd=$(pwd)"
                echo "to stderr" >&2
                echo "token=$API_TOKEN"
            """,
        },
    )
    target = open_target(
        tmp_path, workdir="work", env={"GREETING": "hello world", "API_TOKEN": "tok-12345678"}
    )
    m = migration(target, 1)
    out = target.run(step(target, "up", 1), m, Deadline.after(10))
    lines = out.splitlines()
    assert lines[0].startswith("$ up.sh (exited with code 0, ")
    # stdout and stderr are two pipes: their lines interleave as they arrive
    assert sorted(lines[1:]) == sorted(
        [
            "env=staging component=hooks action=up",
            "from=0 to=1 migration=0001_env",
            f"dir={m.path} ws={tmp_path}",
            f"greeting=hello world rollback=0 pwd={tmp_path / 'work'}",
            "to stderr",
            "token=***",
        ]
    )


def test_non_zero_exit_names_the_code_and_last_lines(tmp_path: Path) -> None:
    write_migration(
        tmp_path,
        1,
        "fails",
        {
            "up.sh": """
                echo "starting"
                for i in $(seq 1 30); do echo "noise $i" >&2; done
                echo "fatal: cannot reach the API" >&2
                exit 3
            """,
        },
    )
    target = open_target(tmp_path)
    with pytest.raises(ScriptFailed) as caught:
        target.run(step(target, "up", 1), migration(target, 1), Deadline.after(10))
    text = str(caught.value)
    assert text.startswith("migrations/hooks/0001_fails/up.sh: exited with code 3; last output:")
    assert text.endswith("noise 30\nfatal: cannot reach the API")
    assert "noise 10\n" not in text  # only the last lines
    assert "starting" in caught.value.output


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("ignore_term", [False, True])
def test_timeout_kills_the_process_group(tmp_path: Path, ignore_term: bool) -> None:
    trap = "trap '' TERM\n" if ignore_term else ""
    write_migration(
        tmp_path,
        1,
        "slow",
        {"up.sh": trap + "sleep 60 &\necho $! > child.pid\necho started\nsleep 60\n"},
    )
    target = open_target(tmp_path)
    started = time.monotonic()
    with pytest.raises(StepTimeout) as caught:
        target.run(step(target, "up", 1), migration(target, 1), Deadline.after(0.5))
    elapsed = time.monotonic() - started
    assert elapsed < (5 if ignore_term else 2.5)
    assert "timed out after" in str(caught.value)
    assert "its process group was killed; last output:\nstarted" in str(caught.value)
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 2
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_background_process_holding_output_does_not_hang(tmp_path: Path) -> None:
    write_migration(tmp_path, 1, "daemon", {"up.sh": "sleep 30 &\necho $! > bg.pid\necho done\n"})
    target = open_target(tmp_path)
    started = time.monotonic()
    out = target.run(step(target, "up", 1), migration(target, 1), Deadline.after(20))
    pid = int((tmp_path / "bg.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    assert time.monotonic() - started < 4
    assert "done" in out
    assert "a background process kept the output open" in out


def test_output_is_bounded(tmp_path: Path) -> None:
    write_migration(
        tmp_path,
        1,
        "chatty",
        {"up.sh": 'for i in $(seq 1 40000); do echo "line $i of chatter"; done\n'},
    )
    target = open_target(tmp_path)
    out = target.run(step(target, "up", 1), migration(target, 1), Deadline.after(30))
    assert len(out.encode()) < 70 * 1024
    assert "earlier bytes not kept" in out
    assert out.endswith("line 40000 of chatter")


def _scoped_workspace(tmp_path: Path, up: str, down: str | None) -> ScriptTarget:
    (tmp_path / "config" / "sub").mkdir(parents=True)
    (tmp_path / "config" / "a.txt").write_text("a v1\n")
    (tmp_path / "config" / "sub" / "b.txt").write_text("b v1\n")
    (tmp_path / "config" / "sub" / "b.txt").chmod(0o600)
    (tmp_path / "config" / "link").symlink_to("a.txt")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "state.json").write_text('{"version": 0}\n')
    files = {
        "migration.yaml": "scope: [config, data/state.json, newdir]\n",
        "up.sh": up,
    }
    if down is not None:
        files["down.sh"] = down
    write_migration(tmp_path, 1, "files", files)
    return open_target(tmp_path)


UP_HALF_WAY = """
    echo "a v2" > config/a.txt
    echo "new" > config/c.txt
    rm config/sub/b.txt
    echo '{"version": 1, "created": "resource-42"}' > data/state.json
    mkdir newdir && echo x > newdir/file
    echo "step 5 failed" >&2
    exit 4
"""
DOWN_RECORDS = """
    # runs before the files are restored: it sees what up.sh left
    cat data/state.json >> rollback.log
    echo "down ran rollback=$RELEASECTL_ROLLBACK from=$RELEASECTL_FROM to=$RELEASECTL_TO" \\
        >> rollback.log
"""


def test_failing_script_half_way_runs_down_then_restores_scope(tmp_path: Path) -> None:
    target = _scoped_workspace(tmp_path, UP_HALF_WAY, DOWN_RECORDS)
    before = {p: tree(tmp_path / p) for p in ("config", "data")}
    before_files = (tmp_path / "data" / "state.json").read_text()
    s, m = step(target, "up", 1), migration(target, 1)
    target.check(s, m)
    buf = io.BytesIO()
    info = target.backup(s, m, buf)
    assert info.scope == ["config", "data/state.json", "newdir"]
    assert info.detail["absent"] == ["newdir"]
    with pytest.raises(ScriptFailed, match="exited with code 4; last output:\nstep 5 failed") as e:
        target.run(s, m, Deadline.after(10))
    buf.seek(0)
    said = target.rollback(s, m, buf, Failure("run", e.value))
    assert said == f"ran down.sh; restored config, data/state.json, newdir ({info.items} entries)"
    assert {p: tree(tmp_path / p) for p in ("config", "data")} == before
    assert (tmp_path / "data" / "state.json").read_text() == before_files
    assert not (tmp_path / "newdir").exists()
    assert (tmp_path / "rollback.log").read_text() == (
        '{"version": 1, "created": "resource-42"}\ndown ran rollback=1 from=1 to=0\n'
    )


def test_failing_verify_rolls_back(tmp_path: Path) -> None:
    up = 'echo "a v2" > config/a.txt\n'
    target = _scoped_workspace(tmp_path, up, None)
    (migration(target, 1).path / "verify.sh").write_text('grep -q "v3" config/a.txt\n')
    target = open_target(tmp_path)
    s, m = step(target, "up", 1), migration(target, 1)
    buf = io.BytesIO()
    target.backup(s, m, buf)
    target.run(s, m, Deadline.after(10))
    with pytest.raises(ScriptFailed, match=r"verify.sh: exited with code 1") as e:
        target.verify(s, m, Deadline.after(10))
    buf.seek(0)
    assert target.rollback(s, m, buf, Failure("verify", e.value)).startswith("restored config")
    assert (tmp_path / "config" / "a.txt").read_text() == "a v1\n"


def test_rollback_when_down_fails_still_restores_and_says_so(tmp_path: Path) -> None:
    target = _scoped_workspace(tmp_path, UP_HALF_WAY, "echo 'cannot undo' >&2\nexit 9\n")
    s, m = step(target, "up", 1), migration(target, 1)
    buf = io.BytesIO()
    target.backup(s, m, buf)
    with pytest.raises(ScriptFailed) as e:
        target.run(s, m, Deadline.after(10))
    buf.seek(0)
    with pytest.raises(TargetError) as caught:
        target.rollback(s, m, buf, Failure("run", e.value))
    text = str(caught.value)
    assert text.startswith("down.sh failed during the rollback: ")
    assert "exited with code 9; last output:\ncannot undo" in text
    assert text.endswith("; restored config, data/state.json, newdir (6 entries)")
    assert (tmp_path / "config" / "a.txt").read_text() == "a v1\n"


def test_rollback_without_down_or_scope_is_an_error(tmp_path: Path) -> None:
    write_migration(tmp_path, 1, "oneway", {"up.sh": "exit 1\n"})
    target = open_target(tmp_path)
    s, m = step(target, "up", 1), migration(target, 1)
    assert target.rollback(s, m, None, Failure("check", TargetError("x"))) == "nothing had run"
    with pytest.raises(TargetError, match=r"there is no down\.sh and no scope to restore"):
        target.rollback(s, m, None, Failure("run", TargetError("x")))


def test_whole_component_backup_covers_every_scope(tmp_path: Path) -> None:
    target = _scoped_workspace(tmp_path, "true\n", "true\n")
    write_migration(tmp_path, 2, "more", {"up.sh": "true\n", "migration.yaml": "scope: [extra]\n"})
    (tmp_path / "extra").write_text("extra v1\n")
    target = open_target(tmp_path)
    buf = io.BytesIO()
    info = target.backup(None, None, buf)
    assert info.scope == ["config", "data/state.json", "extra", "newdir"]
    (tmp_path / "extra").write_text("changed\n")
    (tmp_path / "newdir").mkdir()
    buf.seek(0)
    target.restore(buf)
    assert (tmp_path / "extra").read_text() == "extra v1\n"
    assert not (tmp_path / "newdir").exists()


def _evil_backup(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        manifest = (
            b'{"format": "releasectl/files-backup", "version": 1, "paths": {"config": "dir"}}'
        )
        info = tarfile.TarInfo(".releasectl-files-backup.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        entry = tarfile.TarInfo(name)
        entry.type = kind
        entry.linkname = link
        tar.addfile(entry, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "kind", "link", "words"),
    [
        ("../evil", tarfile.REGTYPE, "", "must not contain"),
        ("/etc/evil", tarfile.REGTYPE, "", "must be relative"),
        ("other/file", tarfile.REGTYPE, "", "outside the backup's scope"),
        ("config/dev", tarfile.CHRTYPE, "", "unsupported entry"),
        ("config/hard", tarfile.LNKTYPE, "config/x", "unsupported entry"),
    ],
)
def test_restore_refuses_unsafe_entries(
    tmp_path: Path, name: str, kind: bytes, link: str, words: str
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "keep.txt").write_text("keep\n")
    target = open_target(tmp_path)
    with pytest.raises(TargetError, match=words):
        target.restore(io.BytesIO(_evil_backup(name, kind, link)))
    assert (tmp_path / "config" / "keep.txt").read_text() == "keep\n"  # nothing was touched


def test_restore_refuses_writing_through_a_link(tmp_path: Path) -> None:
    buf = io.BytesIO()
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    with tarfile.open(fileobj=buf, mode="w") as tar:
        manifest = (
            b'{"format": "releasectl/files-backup", "version": 1, "paths": {"config": "dir"}}'
        )
        info = tarfile.TarInfo(".releasectl-files-backup.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        link = tarfile.TarInfo("config")
        link.type = tarfile.SYMTYPE
        link.linkname = str(outside)
        tar.addfile(link)
        evil = tarfile.TarInfo("config/payload")
        tar.addfile(evil, io.BytesIO(b""))
    target = open_target(tmp_path)
    with pytest.raises(TargetError, match="outside the workspace"):
        target.restore(io.BytesIO(buf.getvalue()))
    assert not (outside / "payload").exists()


def test_truncated_backup_changes_nothing(tmp_path: Path) -> None:
    target = _scoped_workspace(tmp_path, "true\n", None)
    buf = io.BytesIO()
    target.backup(step(target, "up", 1), migration(target, 1), buf)
    (tmp_path / "config" / "a.txt").write_text("edited\n")
    with pytest.raises(TargetError, match="damaged or truncated"):
        target.restore(io.BytesIO(buf.getvalue()[:1500]))
    assert (tmp_path / "config" / "a.txt").read_text() == "edited\n"


def test_problems(tmp_path: Path) -> None:
    write_migration(
        tmp_path,
        1,
        "broken",
        {
            "up.sh": "echo ok\nif true; then\n  echo missing fi\n",
            "down.sh": "  \n",
            "migration.yaml": "scope: [../outside, .git/config, ok/path]\n",
        },
    )
    write_migration(tmp_path, 2, "fine", {"up.sh": "#!/bin/bash\nset -eu\necho fine\n"})
    target = open_target(tmp_path)
    found = [str(p) for p in script_checks.problems(migration(target, 1))]
    assert found[0] == (
        "migrations/hooks/0001_broken/migration.yaml: scope: scope path '../outside' must not "
        "contain '.' or '..' parts"
    )
    assert "is inside .git/" in found[1]
    assert found[2].startswith("migrations/hooks/0001_broken/up.sh:4: bash -n: syntax error")
    assert len(found) == 3
    assert script_checks.problems(migration(target, 2)) == []
    (migration(target, 2).path / "up.sh").write_text("\n\n")
    target = open_target(tmp_path)
    assert [str(p) for p in script_checks.problems(migration(target, 2))] == [
        "migrations/hooks/0002_fine/up.sh: up.sh is empty"
    ]


def test_check_reports_missing_parts_and_workdir(tmp_path: Path) -> None:
    write_migration(tmp_path, 1, "upper", {"up.sh": "true\n"})
    target = open_target(tmp_path, workdir="nowhere")
    with pytest.raises(TargetError, match=r"workdir .*nowhere is not a directory"):
        target.check(step(target, "up", 1), migration(target, 1))
    target = open_target(tmp_path, shell="no-such-shell-xyz")
    with pytest.raises(TargetError, match="shell 'no-such-shell-xyz' not found"):
        target.check(None, None)
    target = open_target(tmp_path)
    with pytest.raises(TargetError, match=r"no down\.sh"):
        target.check(step(target, "down", 1), migration(target, 1))
