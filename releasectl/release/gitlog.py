"""Reading history with the git CLI: a handful of subprocess calls, their output read as streams.

GitPython builds a Python object per commit, which a changelog over 50,000 commits cannot afford.
Here the commits of a range come from ONE `git log -z` whose NUL-separated fields are read from
the pipe in chunks and handed on in batches of plain strings; tags come from one
`git for-each-ref`; revisions are resolved together by one `git cat-file --batch-check`; the
nearest older tag from one `git describe`. The small calls can run while another one does
(`start` / `finish`). Every git error is turned into an `InputError` that says what was wrong in
words a person can act on.
"""

from __future__ import annotations

import codecs
import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

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
_SECTION = re.compile(r'^\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]')
_URL_ENTRY = re.compile(r"^url\s*=\s*(.*)$", re.IGNORECASE)
_UNKNOWN_REV = re.compile(r"ambiguous argument '([^']*)'|bad revision '([^']*)'")
# Quiet, predictable git: no pager, no signatures, no colours, English messages to match on.
_GIT = ("git", "-c", "log.showSignature=false", "-c", "color.ui=false", "--no-pager")
NOT_INSTALLED = "git is not installed (changelog reads the history with git)"


class Tag(NamedTuple):
    name: str
    commit: str
    date: str
    """The tagger date of an annotated tag, else the commit date (YYYY-MM-DD)."""


class Repository(NamedTuple):
    toplevel: Path
    prefix: str
    """Path from the top of the work tree to the directory git ran in ('' or 'sub/dir/')."""
    shallow: bool
    shallow_file: Path
    """Where git lists the cut-off commits of a shallow clone."""
    common_dir: Path
    """The repository's own directory (`.git`, shared by its worktrees)."""
    commits: dict[str, str]
    """The commit of each revision asked for, when git knew them all."""

    def remote_url(self, remote: str = "origin") -> str | None:
        """`remote.<remote>.url` from the repository's config file (what `git config --get`
        answers, without a process); None when it is not set there."""
        try:
            text = (self.common_dir / "config").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        found = None
        inside = False
        for raw in text.splitlines():
            line = raw.strip()
            section = _SECTION.match(line)
            if section is not None:
                name, sub = section.group(1).lower(), section.group(2)
                inside = (name == "remote" and sub == remote) or name == f"remote.{remote}"
                line = line[section.end() :].strip()
            if inside:
                entry = _URL_ENTRY.match(line)
                if entry is not None:
                    found = _config_value(entry.group(1))
        return found

    def cut_offs(self) -> frozenset[str]:
        """The commits whose parents a shallow clone does not have (empty: full history)."""
        if not self.shallow:
            return frozenset()
        try:
            return frozenset(self.shallow_file.read_text().split())
        except OSError:
            return frozenset()


def _env() -> dict[str, str]:
    return {**os.environ, "LC_ALL": "C", "LANGUAGE": "C", "GIT_TERMINAL_PROMPT": "0"}


class Call(NamedTuple):
    """A started git command and what it still has to read on stdin."""

    proc: subprocess.Popen[bytes]
    stdin: bytes | None = None


def start(cwd: Path, *args: str, stdin: bytes | None = None) -> Call:
    """Start one git command; `finish` collects it. Lets small calls overlap."""
    try:
        proc = subprocess.Popen(
            [*_GIT, *args],
            cwd=cwd,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
        )
    except FileNotFoundError:
        raise InputError(NOT_INSTALLED) from None
    except NotADirectoryError:
        raise InputError(f"{cwd} is not a directory") from None
    return Call(proc, stdin)


def finish(cwd: Path, call: Call, *, check: bool = True) -> bytes | None:
    """The stdout of a started command; on failure an InputError, or None when not `check`."""
    out, err = call.proc.communicate(call.stdin)
    if call.proc.returncode != 0:
        if not check:
            return None
        raise _error(cwd, err.decode("utf-8", "replace"))
    return out


def run(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Run one git command in `cwd`; its stdout, or an InputError with git's own words."""
    out = finish(cwd, start(cwd, *args, stdin=stdin))
    assert out is not None
    return out


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
    if not ref or ref.startswith("-") or any(c in ref for c in "\n\r\x00"):
        raise InputError(f"invalid git revision {ref!r}")
    return ref


def _config_value(text: str) -> str:
    """A git config value: quotes removed, a comment (# or ;) outside quotes cut off."""
    out = []
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append({"n": "\n", "t": "\t"}.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch in "#;" and not quoted:
            break
        else:
            out.append(ch)
        i += 1
    return "".join(out).strip()


def repository(cwd: Path, refs: Sequence[str] = ()) -> Repository:
    """The work tree's top, the directory's prefix in it, whether the clone is shallow, and
    the commits `refs` name, from one `git rev-parse` (without them if one is unknown)."""
    base = (
        "rev-parse",
        "--show-toplevel",
        "--show-prefix",
        "--is-shallow-repository",
        "--git-path",
        "shallow",
        "--git-common-dir",
    )
    wanted = [check_ref(r) for r in refs]
    out = finish(cwd, start(cwd, *base, *(f"{r}^{{commit}}" for r in wanted)), check=not wanted)
    if out is None:  # an unknown revision: let the caller look further (tags, manifests)
        out = run(cwd, *base)
        wanted = []
    lines = out.decode("utf-8", "surrogateescape").split("\n")
    if len(lines) < 5 + len(wanted):  # pragma: no cover - git always prints every line
        raise InputError("git rev-parse gave an unexpected answer")
    commits = dict(zip(wanted, lines[5 : 5 + len(wanted)], strict=True))
    return Repository(
        Path(lines[0]), lines[1], lines[2] == "true", cwd / lines[3], cwd / lines[4], commits
    )


def start_tags(cwd: Path) -> Call:
    return start(cwd, "for-each-ref", f"--format={_TAG_FORMAT}", "refs/tags")


def read_tags(out: bytes) -> list[Tag]:
    """Every tag that names a commit (annotated tags peeled), in git's order."""
    tags = []
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        name, otype, oid, ptype, poid, date = line.split(_SEP)
        if otype == "commit":
            tags.append(Tag(name, oid, date))
        elif ptype == "commit":  # an annotated tag of a commit
            tags.append(Tag(name, poid, date))
    return tags


def list_tags(cwd: Path) -> list[Tag]:
    out = finish(cwd, start_tags(cwd))
    assert out is not None
    return read_tags(out)


def commits_of(cwd: Path, refs: Sequence[str]) -> dict[str, str | None]:
    """The commit each revision names (None: no such revision), from one `git cat-file`."""
    if not refs:
        return {}
    stdin = "".join(f"{check_ref(r)}^{{commit}}\n" for r in refs).encode("utf-8", "surrogateescape")
    out = run(cwd, "cat-file", "--batch-check=%(objectname) %(objecttype)", stdin=stdin)
    found: dict[str, str | None] = {}
    for ref, line in zip(refs, out.decode("utf-8", "surrogateescape").splitlines(), strict=False):
        oid, _, kind = line.rpartition(" ")
        found[ref] = oid if kind == "commit" and re.fullmatch(r"[0-9a-f]{40,64}", oid) else None
    return found


def nearest_tag(
    cwd: Path, commit: str, exclude: Sequence[str] = (), match: str | None = None
) -> str | None:
    """The tag `git describe --tags` finds from `commit` (none: None), ignoring `exclude` and,
    with `match`, every tag whose name does not match that glob."""
    args = ["describe", "--tags", "--abbrev=0"]
    if match is not None:
        args.append(f"--match={match}")
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


def merge_base(cwd: Path, a: str, b: str) -> str | None:
    out = finish(cwd, start(cwd, "merge-base", a, b), check=False)
    if out is None:
        return None
    return out.decode().strip() or None


def is_ancestor(cwd: Path, ancestor: str, descendant: str) -> bool:
    call = start(cwd, "merge-base", "--is-ancestor", ancestor, descendant)
    call.proc.communicate()
    return call.proc.returncode == 0


def added_by(cwd: Path, rev: str, path: str) -> tuple[str, str] | None:
    """(commit, YYYY-MM-DD) of the newest commit up to `rev` that added `path` (from the top of
    the work tree); None when no commit did."""
    out = run(
        cwd,
        "log",
        "-1",
        "--no-renames",
        "--diff-filter=A",
        "--format=%H%x00%cs",
        check_ref(rev),
        "--",
        f":(top,literal){path}",
    )
    sha, _, date = out.decode("utf-8", "surrogateescape").strip().partition("\x00")
    return (sha, date) if sha else None


def log_args(
    include: str,
    exclude: str | None,
    *,
    pathspec: str | None = None,
    author: bool = False,
) -> list[str]:
    """The `git log` of a changelog: sha, parents, raw message (and author), merges included."""
    fmt = "--format=%H%x00%P%x00%B" + ("%x00%an <%ae>" if author else "")
    args = [*_GIT, "log", "-z", "--encoding=UTF-8", fmt]
    if pathspec is not None:
        args.append("--parents")  # rewrite parents to the commits that touch the path
    args.append(check_ref(include))
    if exclude is not None:
        args.append("^" + check_ref(exclude))
    args.append("--")
    if pathspec is not None:
        args.append(pathspec)
    return args


def parents(cwd: Path, include: str, exclude: str | None) -> tuple[list[str], list[str]]:
    """Every commit of `exclude..include` (newest first) and its parents (space-separated),
    from one `git rev-list --parents`: no messages, so it is cheap."""
    args = ["rev-list", "--parents", check_ref(include)]
    if exclude is not None:
        args.append("^" + check_ref(exclude))
    out = run(cwd, *args, "--")
    shas, lists = [], []
    for line in out.decode("ascii", "replace").splitlines():
        sha, _, rest = line.partition(" ")
        shas.append(sha)
        lists.append(rest)
    return shas, lists


def stream(cwd: Path, args: Sequence[str], width: int) -> Iterator[list[str]]:
    """Stream a `-z` output of `width` NUL-separated fields per record, in flat batches.

    Yields [f1, f2, ..., f1, f2, ...]: git cannot put a NUL in a commit message, so the
    NUL-separated fields are unambiguous. Nothing is kept beyond one chunk of the pipe and one
    batch of records.
    """
    try:
        proc = subprocess.Popen(
            args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
        )
    except FileNotFoundError:
        raise InputError(NOT_INSTALLED) from None
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
            cut = len(fields) - len(fields) % width
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


def iter_log(cwd: Path, include: str, exclude: str | None) -> Iterator[list[str]]:
    """The commits of `exclude..include` (newest first) as [sha, parents, message, ...]."""
    return stream(cwd, log_args(include, exclude), 3)


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
