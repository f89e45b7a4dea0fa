"""Backups of files and directories (the `scope` of a script migration), as a tar stream.

The stream starts with a manifest that lists every scope path and what it was: a file, a
directory, a symlink, or absent. Then come the entries (regular files, directories and
symlinks; symlinks are stored as links, never followed; sockets, fifos and devices are left
out). Restore extracts into a staging directory beside the workspace's state first, checks
every entry (no absolute paths, no `..`, nothing outside the scope, no writing through a
link), and only when the whole stream was read swaps each scope path for its saved version:
files created since the backup disappear, an absent path is removed, the rest comes back
with its content, mode and modification time.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import IO, Any

from releasectl.errors import TargetError
from releasectl.targets.base import BackupInfo

MANIFEST = ".releasectl-files-backup.json"
TRAILER = ".releasectl-files-backup.end"  # last entry: a stream without it is truncated
FORMAT = "releasectl/files-backup"
FORBIDDEN = frozenset({".git", ".releasectl"})
STAGING = ".releasectl/tmp"


def scope_problem(entry: str) -> str | None:
    """Why `entry` cannot be a scope path (None: it can)."""
    if not entry or entry.strip() != entry:
        return "a scope path must be a non-empty path without surrounding spaces"
    path = PurePosixPath(entry)
    if path.is_absolute() or "\\" in entry:
        return f"scope path {entry!r} must be relative to the workspace (POSIX separators)"
    parts = path.parts
    if not parts or any(p in ("..", ".") for p in entry.split("/")):
        return f"scope path {entry!r} must not contain '.' or '..' parts"
    if parts[0] in FORBIDDEN:
        return f"scope path {entry!r} is inside {parts[0]}/, which releasectl never restores"
    return None


def check_scope(paths: list[str]) -> list[str]:
    for entry in paths:
        problem = scope_problem(entry)
        if problem:
            raise TargetError(problem)
    return sorted(set(paths))


def _kind(path: Path) -> str:
    if path.is_symlink():
        return "symlink"
    if path.is_dir():
        return "dir"
    if path.is_file():
        return "file"
    return "absent" if not os.path.lexists(path) else "other"


def backup(root: Path, paths: list[str], out: IO[bytes]) -> BackupInfo:
    paths = check_scope(paths)
    kinds = {p: _kind(root / p) for p in paths}
    items = 0

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        nonlocal items
        if not (info.isreg() or info.isdir() or info.issym()):
            return None  # sockets, fifos, devices: not content
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        items += 1
        return info

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        manifest = json.dumps({"format": FORMAT, "version": 1, "paths": kinds}).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for rel, kind in kinds.items():
            if kind in ("file", "dir", "symlink"):
                tar.add(root / rel, arcname=rel, recursive=True, filter=keep)
        trailer = json.dumps({"items": items}).encode()
        info = tarfile.TarInfo(TRAILER)
        info.size = len(trailer)
        tar.addfile(info, io.BytesIO(trailer))
    absent = [p for p, k in kinds.items() if k == "absent"]
    return BackupInfo(items=items, scope=paths, detail={"absent": absent})


def restore(root: Path, src: IO[bytes]) -> BackupInfo:
    staging_parent = root / STAGING
    staging_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="restore-", dir=staging_parent) as tmp:
        stage = Path(tmp)
        kinds, items = _extract(src, stage)
        for rel, kind in kinds.items():
            target = root / rel
            _remove(target)
            if kind == "absent":
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            staged = stage / rel
            if not os.path.lexists(staged):
                continue
            if _same_device(stage, target.parent):
                os.replace(staged, target)
            else:
                shutil.move(str(staged), str(target))
    return BackupInfo(
        items=items,
        scope=sorted(kinds),
        detail={"absent": [p for p, k in kinds.items() if k == "absent"]},
    )


def _same_device(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _extract(src: IO[bytes], stage: Path) -> tuple[dict[str, str], int]:
    kinds: dict[str, str] | None = None
    items = 0
    complete = False
    dirs: list[tuple[Path, tarfile.TarInfo]] = []
    real_stage = os.path.realpath(stage)
    try:
        with tarfile.open(fileobj=src, mode="r|") as tar:
            for member in tar:
                if kinds is None:
                    kinds = _manifest(tar, member)
                    continue
                if complete:
                    raise TargetError(f"files backup: entry {member.name!r} after its end")
                if member.name == TRAILER and member.isreg() and member.size < 4096:
                    fh = tar.extractfile(member)
                    assert fh is not None
                    complete = json.loads(fh.read()).get("items") == items
                    if not complete:
                        raise TargetError("files backup is damaged: wrong number of entries")
                    continue
                target = _checked_target(member, kinds, stage, real_stage)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    dirs.append((target, member))
                elif member.isreg():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    fh = tar.extractfile(member)
                    assert fh is not None
                    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                    with fh, os.fdopen(os.open(target, flags, 0o600), "wb") as out:
                        shutil.copyfileobj(fh, out)
                    os.chmod(target, member.mode & 0o7777)
                    os.utime(target, (member.mtime, member.mtime))
                elif member.issym():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(member.linkname, target)
                else:
                    raise TargetError(f"files backup: unsupported entry {member.name!r}")
                items += 1
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise TargetError(f"files backup is damaged or truncated: {exc}") from exc
    if kinds is None:
        raise TargetError("files backup is empty (no manifest)")
    if not complete:
        raise TargetError("files backup is damaged or truncated: its end is missing")
    for target, member in reversed(dirs):  # after their content, so mtimes stay
        os.chmod(target, member.mode & 0o7777)
        os.utime(target, (member.mtime, member.mtime))
    return kinds, items


def _manifest(tar: tarfile.TarFile, member: tarfile.TarInfo) -> dict[str, str]:
    if member.name != MANIFEST or not member.isreg() or member.size > 1 << 20:
        raise TargetError("not a releasectl files backup (no manifest first)")
    fh = tar.extractfile(member)
    assert fh is not None
    data: Any = json.loads(fh.read())
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TargetError("not a releasectl files backup (unknown manifest)")
    kinds = data.get("paths")
    if not isinstance(kinds, dict):
        raise TargetError("files backup: the manifest lists no paths")
    for rel in kinds:
        problem = scope_problem(str(rel))
        if problem:
            raise TargetError(f"files backup: {problem}")
    return {str(k): str(v) for k, v in kinds.items()}


def _checked_target(
    member: tarfile.TarInfo, kinds: dict[str, str], stage: Path, real_stage: str
) -> Path:
    name = member.name
    problem = scope_problem(name.rstrip("/"))
    if problem:
        raise TargetError(f"files backup: unsafe entry: {problem}")
    if not any(name == p or name.startswith(p.rstrip("/") + "/") for p in kinds):
        raise TargetError(f"files backup: entry {name!r} is outside the backup's scope")
    target = stage / name
    # refuse to write through a symlink that an earlier entry created
    parent = os.path.realpath(target.parent)
    if parent != real_stage and not parent.startswith(real_stage + os.sep):
        raise TargetError(f"files backup: entry {name!r} would be written outside the workspace")
    if os.path.lexists(target) and not member.isdir():
        raise TargetError(f"files backup: entry {name!r} appears twice")
    return target
