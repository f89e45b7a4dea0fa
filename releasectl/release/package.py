"""`release package` and `release verify`: a reproducible, checksummed tar.gz of a release.

The package ``<workspace>-<version>.tar.gz`` holds, under one top directory of the same name,
`releasectl.yaml`, the release manifest, every migration the release needs (each migrated
component's migrations 1..pinned version, exactly the files their checksums cover), the
`schemas/` directory and `SHA256SUMS` (``sha256sum`` format, sorted by path).

The same inputs give the same bytes: entries sorted by path; every mtime the
``SOURCE_DATE_EPOCH`` of reproducible-builds.org, else the time of the last commit of the
release manifest, else 0;
uid/gid 0 with empty owner names; modes 0644, or 0755 for files executable in the work tree;
POSIX pax format; gzip header with mtime 0, no file name, level 9. Bytes are packaged as they
are in the work tree (no line-ending conversion).

Verification streams the archive (nothing is written to disk) and refuses anything an
extraction could be tricked by: absolute paths, ``..``, links, devices, fifos, duplicates.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from releasectl.errors import InputError, Location
from releasectl.release.validation import needed_migrations
from releasectl.util.fsutil import fsync_dir
from releasectl.workspace import WORKSPACE_FILE, Workspace

SUMS = "SHA256SUMS"
CHUNK = 1024 * 1024
MAX_SUMS_BYTES = 16 * 1024 * 1024
_SUM_RE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


@dataclass(frozen=True, slots=True)
class PackageResult:
    path: Path
    sha256: str  # of the tarball
    sums: dict[str, str]  # path inside the package directory -> sha256 (SHA256SUMS itself excluded)
    mtime: int


@dataclass(slots=True)
class VerifyReport:
    path: Path
    sha256: str = ""
    files: dict[str, str] = field(default_factory=dict)  # entry name -> sha256
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- build -----------------------------------------------------------------------------------


def package_name(workspace: Workspace, version: str) -> str:
    return f"{workspace.name}-{version}"


def source_date_epoch(root: Path, manifest: str | None = None) -> int:
    """SOURCE_DATE_EPOCH, else the committer time of the last commit that changed the release's
    manifest (`manifest`, relative to the root), else 0. Not the repository's last commit:
    the package of one release must not change because unrelated work was committed since,
    so staging and prod build the same bytes from the same release."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if raw:
        if not raw.isdigit():
            raise InputError(
                f"SOURCE_DATE_EPOCH must be a whole number of seconds since 1970, not {raw!r}"
            )
        return int(raw)
    try:
        proc = subprocess.run(
            ["git", "log", "-1", "--format=%ct", *(["--", manifest] if manifest else [])],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return 0
    text = proc.stdout.strip()
    return int(text) if proc.returncode == 0 and text.isdigit() else 0


def package_files(workspace: Workspace, version: str) -> dict[str, Path]:
    """Path inside the package -> file in the work tree, for release `version`."""
    loaded = workspace.release(version)
    workspace.check_release(loaded)
    files: dict[str, Path] = {
        WORKSPACE_FILE: workspace.root / WORKSPACE_FILE,
        _inside(loaded.rel): loaded.path,
    }
    for migration in needed_migrations(workspace, loaded.manifest):
        for name in migration.files:
            files[_inside(f"{migration.rel}/{name}")] = migration.path / name
    schemas = workspace.root / "schemas"
    if schemas.is_dir():
        for path in sorted(schemas.rglob("*")):
            rel = path.relative_to(workspace.root).as_posix()
            if any(part.startswith(".") for part in PurePosixPath(rel).parts):
                continue
            if path.is_symlink() or path.is_file():
                files[rel] = path
    for rel, path in files.items():
        if path.is_symlink():
            raise InputError(
                "is a symbolic link; a package holds regular files only", location=Location(rel)
            )
    return files


def _inside(rel: str) -> str:
    """A workspace-relative path that stays inside the package (no `..`, not absolute)."""
    path = PurePosixPath(os.path.normpath(rel).replace(os.sep, "/"))
    if path.is_absolute() or ".." in path.parts:
        raise InputError(
            "lies outside the workspace; it cannot be packaged", location=Location(rel)
        )
    return path.as_posix()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sums_text(sums: dict[str, str]) -> bytes:
    return "".join(f"{sums[name]}  {name}\n" for name in sorted(sums)).encode()


def build_package(workspace: Workspace, version: str, out_dir: Path | None = None) -> PackageResult:
    """Write ``<out_dir>/<workspace>-<version>.tar.gz`` (default out_dir: dist/)."""
    files = package_files(workspace, version)
    sums = {rel: _sha256_file(path) for rel, path in files.items()}
    mtime = source_date_epoch(workspace.root, workspace.release(version).rel)
    top = package_name(workspace, version)
    out = out_dir if out_dir is not None else workspace.root / "dist"
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{top}.tar.gz"
    entries: dict[str, Path | None] = {**files, SUMS: None}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{top}.", suffix=".tmp", dir=out)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as raw:
            # filename="" keeps the temp file's name out of the gzip header.
            with (
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz,
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
            ):
                for rel in sorted(entries):
                    source = entries[rel]
                    if source is None:
                        data = sums_text(sums)
                        _add(tar, f"{top}/{rel}", len(data), 0o644, mtime, _BytesReader(data))
                        continue
                    mode = 0o755 if source.stat().st_mode & 0o111 else 0o644
                    with _HashingReader(source) as reader:
                        _add(tar, f"{top}/{rel}", reader.size, mode, mtime, reader)
                        if reader.hexdigest() != sums[rel]:
                            raise InputError(
                                "changed while it was being packaged; try again",
                                location=Location(rel),
                            )
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(out)
    return PackageResult(path=target, sha256=_sha256_file(target), sums=sums, mtime=mtime)


def _add(
    tar: tarfile.TarFile, name: str, size: int, mode: int, mtime: int, fileobj: _Reader
) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = mtime
    info.type = tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, fileobj)


class _Reader:
    def read(self, size: int = -1) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError


class _BytesReader(_Reader):
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk


class _HashingReader(_Reader):
    """Streams a file into the archive and hashes what was actually written."""

    def __init__(self, path: Path) -> None:
        self._fh = path.open("rb")
        self.size = os.fstat(self._fh.fileno()).st_size
        self._digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self._fh.read(size)
        self._digest.update(chunk)
        return chunk

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def __enter__(self) -> _HashingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


# --- verify ----------------------------------------------------------------------------------


def _entry_problem(member: tarfile.TarInfo) -> str | None:
    name = member.name
    if not name or "\x00" in name:
        return "empty or NUL in the name"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if "\\" in name:
        return "backslash in the path"
    if ".." in name.split("/"):
        return "'..' in the path"
    if member.issym():
        return f"symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "device file"
    if member.isfifo():
        return "fifo"
    if member.issparse():
        return "sparse file"
    if not (member.isreg() or member.isdir()):
        return f"unsupported entry type {member.type!r}"
    return None


def _normal(name: str) -> str:
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def verify_package(path: Path) -> VerifyReport:
    """Check every entry against SHA256SUMS, streaming in bounded memory (see
    `releasectl.release.archive`); problems are collected, not raised."""
    from releasectl.release.archive import ArchiveError, Inflater
    from releasectl.util.safefiles import max_file_bytes

    if not path.is_file():
        raise InputError("no such package file", location=Location(str(path)))
    report = VerifyReport(path=path, sha256=_sha256_file(path))
    sums_files: dict[str, bytes] = {}
    largest = max_file_bytes()
    try:
        with path.open("rb") as raw:
            stream = Inflater(raw)
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    stream.allow(member.size)
                    problem = _entry_problem(member)
                    if problem is None and member.size > largest:
                        report.problems.append(
                            f"{member.name}: entry of {member.size:,} bytes, larger than any "
                            f"workspace file may be ({largest:,}): refused"
                        )
                        return report
                    if problem is not None:
                        report.problems.append(f"{member.name}: {problem}")
                        continue
                    if member.isdir():
                        continue
                    _read_entry(report, tar, member, sums_files)
                stream.check_end(tar.offset)
    except ArchiveError as exc:
        report.problems.append(str(exc))
        return report
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        report.problems.append(f"not a readable tar.gz: {exc}")
        return report
    _check_sums(report, sums_files)
    return report


def _read_entry(
    report: VerifyReport,
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    sums_files: dict[str, bytes],
) -> None:
    name = _normal(member.name)
    if name in report.files:
        report.problems.append(f"{member.name}: duplicate entry")
        return
    fh = tar.extractfile(member)
    assert fh is not None  # a regular file always has data
    digest = hashlib.sha256()
    keep = PurePosixPath(name).name == SUMS and name.count("/") <= 1
    kept = bytearray()
    while block := fh.read(CHUNK):
        digest.update(block)
        if keep and len(kept) <= MAX_SUMS_BYTES:
            kept.extend(block)
    report.files[name] = digest.hexdigest()
    if keep:
        sums_files[name] = bytes(kept)


def _check_sums(report: VerifyReport, sums_files: dict[str, bytes]) -> None:
    if not sums_files:
        report.problems.append(f"{SUMS}: missing (expected at the top of the package)")
        return
    if len(sums_files) > 1:
        report.problems.append(f"{SUMS}: more than one ({', '.join(sorted(sums_files))})")
        return
    ((sums_name, data),) = sums_files.items()
    if len(data) > MAX_SUMS_BYTES:
        report.problems.append(f"{sums_name}: larger than {MAX_SUMS_BYTES} bytes")
        return
    base = sums_name[: -len(SUMS)]
    listed: dict[str, str] = {}
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        match = _SUM_RE.match(line)
        if match is None:
            report.problems.append(f"{sums_name}:{number}: not a '<sha256>  <path>' line")
            continue
        digest, rel = match.group(1).lower(), match.group(2)
        if rel.startswith("/") or ".." in rel.split("/"):
            report.problems.append(f"{sums_name}:{number}: unsafe path {rel!r}")
            continue
        name = _normal(base + rel)
        if name in listed:
            report.problems.append(f"{sums_name}:{number}: {rel} is listed twice")
            continue
        listed[name] = digest
    for name, digest in listed.items():
        actual = report.files.get(name)
        if actual is None:
            report.problems.append(f"{name}: listed in {SUMS} but not in the archive")
        elif actual != digest:
            report.problems.append(
                f"{name}: checksum mismatch ({SUMS} says {digest[:16]}, entry has {actual[:16]})"
            )
    for name in report.files:
        if name != sums_name and name not in listed:
            report.problems.append(f"{name}: not listed in {SUMS}")
