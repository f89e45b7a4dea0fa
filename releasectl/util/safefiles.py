"""Reading the files of a workspace as a CI runner must: what a pull request may make it read.

A workspace arrives in a pull request, and the runner that plans it holds files (credentials,
`/etc/shadow`, other checkouts) whose contents would end up in a plan comment if a migration
could point at them. `read` is the one way releasectl reads a workspace file. It reads a file
only when, on the opened descriptor:

- it is a regular file: never a directory, FIFO (which would block), socket or device;
- its real path lies inside the workspace (`confine` registers the workspace's root): a
  symbolic link, or a directory link on the way, may point elsewhere in the workspace but
  never out of it;
- it has one name (`st_nlink == 1`): a hard link cannot be told apart from the file it shares
  with, which may lie outside the workspace (git never checks out hard links);
- it is not larger than the cap: `RELEASECTL_MAX_FILE_BYTES` (default 16 MiB; YAML documents
  have their own, smaller cap, see `releasectl.workspace.yamlio`).

The checks are made on the descriptor (`fstat`, and `/proc/self/fd` for the real path), so a
file swapped for a link between the check and the read is still caught; nothing is read before
they pass, and no error names where a link points.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from releasectl.errors import InputError, Location

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_FILE_ENV = "RELEASECTL_MAX_FILE_BYTES"
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
_FLAGS |= getattr(os, "O_CLOEXEC", 0)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}

# (lexical root, real root), each with a trailing separator
_roots: list[tuple[str, str]] = []
_proc_fd: list[bool] = []  # [whether /proc/self/fd names an open file], once known


class UnsafeFileError(InputError):
    """A workspace file that releasectl refuses to read (a link out, a device, too large)."""


def confine(root: Path | str) -> None:
    """Make `root` a workspace: files under it are read only if they resolve inside it."""
    lexical = os.path.join(os.path.abspath(root), "")
    real = os.path.join(os.path.realpath(root), "")
    if (lexical, real) not in _roots:
        _roots.append((lexical, real))


def byte_limit(env: str, default: int) -> int:
    """A size cap from the environment variable `env` (bytes, or with a K, M or G suffix)."""
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    unit = raw[-1:].upper() if raw[-1:].isalpha() else ""
    number = raw[: len(raw) - len(unit)] if unit else raw
    if unit not in _UNITS or not number.isdigit() or int(number) == 0:
        raise InputError(f"{env} must be a positive number of bytes (e.g. 16M), not {raw[:20]!r}")
    return int(number) * _UNITS[unit]


def max_file_bytes() -> int:
    return byte_limit(MAX_FILE_ENV, MAX_FILE_BYTES)


def _root_of(path: str) -> tuple[str, str] | None:
    for lexical, real in _roots:
        if path.startswith(lexical) or path.startswith(real):
            return lexical, real
    return None


def resolves_inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """Whether `path`, links followed, lies inside `root` (for directories: before listing)."""
    real_root = os.path.join(os.path.realpath(root), "")
    return os.path.join(os.path.realpath(path), "").startswith(real_root)


def display_of(path: str) -> str:
    """`path` relative to its workspace, as errors name files."""
    absolute = path if os.path.isabs(path) else os.path.abspath(path)
    root = _root_of(absolute)
    if root is None:
        return path
    for prefix in root:
        if absolute.startswith(prefix):
            return absolute[len(prefix) :].replace(os.sep, "/")
    return path  # pragma: no cover - _root_of matched one of the two


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory (or a link to one), expected a file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO, not a regular file: refused"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file: refused"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file: refused"
    return "is not a regular file: refused"  # pragma: no cover - doors, ports


def _real_path(fd: int, path: str) -> str:
    """Where the open descriptor `fd` really is (Linux: race-free through /proc)."""
    if not _proc_fd or _proc_fd[0]:
        try:
            found = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            found = ""
        if not _proc_fd:
            _proc_fd.append(found.startswith("/"))
        if found.startswith("/"):
            return found
    return os.path.realpath(path)


OUTSIDE = "resolves outside the workspace (through a link): refused"


def _checked(fd: int, name: str, where: Location, before: os.stat_result | None) -> os.stat_result:
    """The checks on an open descriptor: the file `before` described (if known), regular,
    inside its workspace, one name."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFileError(_kind(st.st_mode), location=where)
    if before is not None and (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
        raise UnsafeFileError("changed while it was being opened: refused", location=where)
    absolute = name if os.path.isabs(name) else os.path.abspath(name)
    root = _root_of(absolute)
    if root is not None and not _real_path(fd, name).startswith(root[1]):
        raise UnsafeFileError(OUTSIDE, location=where)
    if st.st_nlink > 1:
        raise UnsafeFileError(
            f"has {st.st_nlink} hard links: a hard link may share its contents with a file "
            "outside the workspace, so it is refused (copy the file instead)",
            location=where,
        )
    return st


def _open(name: str, where: Location) -> tuple[int, os.stat_result]:
    try:
        before = os.stat(name)
    except FileNotFoundError:
        raise InputError("file not found", location=where) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", location=where) from None
    if not stat.S_ISREG(before.st_mode):  # refused before it is opened: a FIFO would block
        raise UnsafeFileError(_kind(before.st_mode), location=where)
    try:
        fd = os.open(name, _FLAGS)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", location=where) from None
    try:
        return fd, _checked(fd, name, where, before)
    except BaseException:
        os.close(fd)
        raise


def read(
    path: str | os.PathLike[str],
    display: str | None = None,
    *,
    limit: int | None = None,
    setting: str | None = None,
) -> tuple[bytes, os.stat_result]:
    """The bytes of a workspace file and its `fstat`, after the checks of this module.
    `limit` replaces the default cap; `setting` names the variable that raises it."""
    name = os.fspath(path)
    where = Location(display or display_of(name))
    fd, st = _open(name, where)
    try:
        cap = limit
        if cap is None:
            cap, setting = max_file_bytes(), MAX_FILE_ENV
        if st.st_size > cap:
            raise UnsafeFileError(_too_large(st.st_size, cap, setting), location=where)
        data = os.read(fd, st.st_size + 1)
        if len(data) > st.st_size:  # grew since fstat: read on, up to the cap
            chunks = [data]
            total = len(data)
            while total <= cap and (chunk := os.read(fd, 1 << 16)):
                chunks.append(chunk)
                total += len(chunk)
            if total > cap:
                raise UnsafeFileError(_too_large(total, cap, setting), location=where)
            data = b"".join(chunks)
        return data, st
    finally:
        os.close(fd)


def open_stream(path: str | os.PathLike[str], display: str | None = None) -> BinaryIO:
    """A workspace file opened for reading as a stream (no cap: a history grows), after the
    checks of this module."""
    name = os.fspath(path)
    fd, _ = _open(name, Location(display or display_of(name)))
    return os.fdopen(fd, "rb")


def open_append(path: str | os.PathLike[str], display: str | None = None) -> int:
    """A descriptor to append to a workspace file, created if missing; never through a link
    out of the workspace (a committed `history/prod.jsonl -> ~/.bashrc` must not be written)."""
    name = os.fspath(path)
    where = Location(display or display_of(name))
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(
            name, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0), 0o644
        )
    except OSError as exc:
        raise UnsafeFileError(f"cannot append: {exc.strerror}", location=where) from None
    try:
        _checked(fd, name, where, None)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _too_large(size: int, cap: int, setting: str | None) -> str:
    hint = f"; {setting} raises it" if setting else ""
    return f"file is larger than the limit of {cap:,} bytes ({size:,} bytes{hint})"


def read_bytes(
    path: str | os.PathLike[str],
    display: str | None = None,
    *,
    limit: int | None = None,
    setting: str | None = None,
) -> bytes:
    return read(path, display, limit=limit, setting=setting)[0]


def read_text(
    path: str | os.PathLike[str], display: str | None = None, *, limit: int | None = None
) -> str:
    """The file as text (UTF-8, a byte-order mark dropped); an error names the first bad byte."""
    data = read_bytes(path, display, limit=limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        shown = display or display_of(os.fspath(path))
        raise InputError(
            f"not UTF-8 ({exc.reason} at byte {exc.start})", location=Location(shown)
        ) from None
