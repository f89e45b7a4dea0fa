"""Reading history with the git CLI: a handful of subprocess calls, their output read as streams.

GitPython builds a Python object per commit, which a changelog over 50,000 commits cannot afford.
Here the commits of a range come from ONE `git log -z` whose NUL-separated fields are read from
the pipe in chunks and handed on in batches of plain strings; tags come from one
`git for-each-ref`; the nearest older tag from one `git describe`. Every git error is turned
into an `InputError` that says what was wrong in words a person can act on.
"""

from __future__ import annotations

import codecs
import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from releasectl.errors import InputError

CHUNK = 1 << 20
# Linux lets a reader enlarge its pipe: git then runs ahead of the parser by a megabyte instead
# of 64 KiB, so on two cores the two overlap instead of taking turns.
_F_SETPIPE_SZ = 1031
# Separator of for-each-ref fields; a tag name cannot contain a control character.
_SEP = "\x1f"
_TAG_FORMAT = _SEP.join(
    (
        "%(refname:strip=2)",
        "%(objecttype)",
        "%(objectname)",
        "%(*objecttype)",
        "%(*objectname)",
        "%(creatordate:short)",
    )
)
_UNKNOWN_REV = re.compile(r"ambiguous argument '([^']*)'|bad revision '([^']*)'")
# Quiet, predictable git: no pager, no signatures, no colours, English messages to match on.
_GIT = ("git", "-c", "log.showSignature=false", "-c", "color.ui=false", "--no-pager")


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    commit: str
    date: str
    """The tagger date of an annotated tag, else the commit date (YYYY-MM-DD)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    toplevel: Path
    prefix: str
    """Path from the top of the work tree to the directory git ran in ('' or 'sub/dir/')."""
    commits: tuple[str, ...]
    """The full commit id of each ref, in the order asked."""


def _env() -> dict[str, str]:
    return {**os.environ, "LC_ALL": "C", "LANGUAGE": "C", "GIT_TERMINAL_PROMPT": "0"}


def run(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Run one git command in `cwd`; its stdout, or an InputError with git's own words."""
    try:
        proc = subprocess.run(
            [*_GIT, *args], cwd=cwd, input=stdin, capture_output=True, env=_env(), check=False
        )
    except FileNotFoundError:
        raise InputError("git is not installed (changelog reads the history with git)") from None
    except NotADirectoryError:
        raise InputError(f"{cwd} is not a directory") from None
    if proc.returncode != 0:
        raise _error(cwd, proc.stderr.decode("utf-8", "replace"))
    return proc.stdout


def _error(cwd: Path, stderr: str) -> InputError:
    if "not a git repository" in stderr:
        return InputError(f"{cwd} is not in a git repository (changelog reads the git history)")
    match = _UNKNOWN_REV.search(stderr)
    name = (match.group(1) or match.group(2) or "").removesuffix("^{commit}") if match else None
    if name == "HEAD" or "does not have any commits" in stderr:
        return InputError(f"the git repository at {cwd} has no commits yet")
    if name is not None:
        return InputError(f"unknown git revision {name!r}: no branch, tag or commit of that name")
    lines = [line.removeprefix("fatal: ") for line in stderr.strip().splitlines()]
    return InputError("git failed: " + ("\n".join(lines) or "no message"))


def check_ref(ref: str) -> str:
    # A ref that starts with '-' would be read as an option by git.
    if not ref or ref.startswith("-") or "\n" in ref or "\x00" in ref:
        raise InputError(f"invalid git revision {ref!r}")
    return ref


def resolve(cwd: Path, refs: Sequence[str]) -> Resolved:
    """The work tree's top, the directory's prefix in it and the commit each ref names."""
    out = run(
        cwd,
        "rev-parse",
        "--show-toplevel",
        "--show-prefix",
        *(f"{check_ref(r)}^{{commit}}" for r in refs),
    )
    lines = out.decode("utf-8", "surrogateescape").split("\n")
    if len(lines) < 2 + len(refs):  # pragma: no cover - git always prints every line
        raise InputError("git rev-parse gave an unexpected answer")
    return Resolved(Path(lines[0]), lines[1], tuple(lines[2 : 2 + len(refs)]))


def list_tags(cwd: Path) -> list[Tag]:
    """Every tag that names a commit (annotated tags peeled), in git's order."""
    out = run(cwd, "for-each-ref", f"--format={_TAG_FORMAT}", "refs/tags")
    tags = []
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        name, otype, oid, ptype, poid, date = line.split(_SEP)
        if otype == "commit":
            tags.append(Tag(name, oid, date))
        elif ptype == "commit":  # an annotated tag of a commit
            tags.append(Tag(name, poid, date))
    return tags


def nearest_tag(cwd: Path, commit: str, exclude: Sequence[str] = ()) -> str | None:
    """The tag `git describe --tags` finds from `commit` (none: None), ignoring `exclude`."""
    args = ["describe", "--tags", "--abbrev=0"]
    for name in exclude:
        args.append(f"--exclude={_glob_escape(name)}")
    try:
        out = run(cwd, *args, commit)
    except InputError as exc:
        if "No names found" in str(exc) or "No tags can describe" in str(exc):
            return None
        raise
    return out.decode("utf-8", "surrogateescape").strip() or None


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", name)


def iter_log(cwd: Path, include: str, exclude: str | None) -> Iterator[list[str]]:
    """Stream the non-merge commits of `exclude..include` (newest first) from one `git log -z`.

    Yields flat batches [sha, subject, body, sha, subject, body, ...]: git cannot put a NUL in
    a commit message, so the NUL-separated fields are unambiguous. Nothing is kept beyond one
    chunk of the pipe and one batch of records.
    """
    args = [*_GIT, "log", "-z", "--no-merges", "--encoding=UTF-8", "--format=%H%x00%s%x00%b"]
    args.append(check_ref(include))
    if exclude is not None:
        args.append("^" + check_ref(exclude))
    args.append("--")
    try:
        proc = subprocess.Popen(
            args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
        )
    except FileNotFoundError:
        raise InputError("git is not installed (changelog reads the history with git)") from None
    assert proc.stdout is not None and proc.stderr is not None
    _widen_pipe(proc.stdout.fileno())
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    read = proc.stdout.read
    tail = ""
    pending: list[str] = []
    try:
        while chunk := read(CHUNK):
            fields = (tail + decoder.decode(chunk)).split("\x00")
            tail = fields.pop()
            if pending:
                fields = pending + fields
            cut = len(fields) - len(fields) % 3
            pending = fields[cut:]
            if cut:
                yield fields[:cut] if pending else fields
        stderr = proc.stderr.read()
        if proc.wait() != 0:
            raise _error(cwd, stderr.decode("utf-8", "replace"))
    finally:
        if proc.poll() is None:  # the consumer stopped early
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _widen_pipe(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, CHUNK)
    except (ImportError, OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size
        pass


def read_blobs(cwd: Path, specs: Sequence[str]) -> list[bytes | None]:
    """The contents of `rev:path` objects (None where missing), from one `git cat-file`."""
    if not specs:
        return []
    out = run(cwd, "cat-file", "--batch", stdin="".join(f"{s}\n" for s in specs).encode())
    blobs: list[bytes | None] = []
    pos = 0
    for _ in specs:
        end = out.index(b"\n", pos)
        header = out[pos:end].split(b" ")
        pos = end + 1
        if len(header) != 3 or header[1] != b"blob":  # "<spec> missing", or not a file
            blobs.append(None)
            continue
        size = int(header[2])
        blobs.append(out[pos : pos + size])
        pos += size + 1
    return blobs


def list_dir(cwd: Path, commit: str, path: str) -> list[str]:
    """Names in the directory `path` (from the top of the work tree) at `commit`."""
    try:
        out = run(cwd, "ls-tree", "--full-tree", "-z", "--name-only", f"{check_ref(commit)}:{path}")
    except InputError:
        return []  # no such directory at that commit
    return [n for n in out.decode("utf-8", "surrogateescape").split("\x00") if n]
