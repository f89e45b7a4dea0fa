"""The scan cache: what reading a migration yielded (its `releasectl.workspace.digests.Digest`: file
list, checksum, `down` part, `migration.yaml` metadata, literal secrets), kept between runs,
with the problems its target type's static checks found (`Target.problems` reads only the
migration's own files, so its result holds while they are unchanged). The cache
(`.releasectl/cache/migrations.json`) keeps each digest with the stat data of the migration's
directories and files (inode, size, mtime_ns, ctime_ns), like git's index; a later run that
finds the same stat data uses the digest instead of reading the files again.

Correctness rules, after git's:
- a file whose content changes gets a new mtime and ctime (ctime cannot be set back, so even
  an edit followed by `touch -d` to the old mtime is seen); a file or directory added,
  removed or renamed changes its directory's mtime, so the file list is reused only while
  every directory of the migration has the stat data it had;
- "racily clean" entries are not kept: an entry is stored only when all its stat times are
  older than the filesystem's clock at the start of the scan (read from a file created in the
  cache directory), so an edit made in the same clock tick as the read, which could leave
  mtime and size unchanged, is always read again next time;
- the cache is written atomically (temp file, fsync, rename) and a cache that cannot be read
  or parsed is ignored, as is any entry that does not have the expected shape;
- a cache written by other code (another releasectl, any edited module of the package, another
  Python) is ignored as a whole: its checksums, secret rules and checks may differ.

`RELEASECTL_CACHE=0` turns the cache off.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from releasectl.workspace.digests import META_FILE, Digest, Finding, Meta, stat_key

CACHE_DIR = ".releasectl/cache"
CACHE_FILE = "migrations.json"
FORMAT = 2


@functools.cache
def code_stamp() -> str:
    """Identifies the code that computed a cache: Python, and every module of the package."""
    import sys

    package = Path(__file__).resolve().parent
    sha = hashlib.sha256(f"{sys.version}\0{FORMAT}".encode())
    stack = [str(package)]
    found: list[tuple[str, int, int]] = []
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                    stack.append(entry.path)
                elif entry.name.endswith(".py"):
                    st = entry.stat()
                    found.append((entry.path, st.st_size, st.st_mtime_ns))
    for path, size, mtime in sorted(found):
        sha.update(f"{path}\0{size}\0{mtime}\0".encode())
    return sha.hexdigest()[:32]


# Errors a cache may hold: the plain ones, rebuilt from their message and location.
@functools.cache
def _error_classes() -> dict[str, type[Any]]:
    from releasectl import errors

    return {
        name: cls
        for name, cls in vars(errors).items()
        if isinstance(cls, type)
        and issubclass(cls, errors.ReleasectlError)
        and cls.__init__ is errors.ReleasectlError.__init__
    }


def encode_errors(found: Sequence[Any]) -> list[list[Any]] | None:
    """The errors as JSON data, or None when one of them cannot be rebuilt exactly."""
    classes = _error_classes()
    out: list[list[Any]] = []
    for error in found:
        name = type(error).__name__
        if classes.get(name) is not type(error) or error.__dict__.keys() != {"message", "location"}:
            return None
        where = error.location
        if where is None:
            out.append([name, error.message])
        else:
            out.append([name, error.message, where.path, where.line, where.field])
    return out


def decode_errors(data: Any) -> list[Any]:
    if not data:
        return []
    from releasectl.errors import Location

    classes = _error_classes()
    found = []
    for item in data:
        cls = classes[item[0]]
        location = Location(str(item[2]), item[3], item[4]) if len(item) == 5 else None
        found.append(cls(str(item[1]), location=location))
    return found


def enabled() -> bool:
    return os.environ.get("RELEASECTL_CACHE", "1").lower() not in {"0", "false", "no", "off"}


class ScanCache:
    """Digests by migration directory (relative to the workspace), checked against stat data.

    The file holds one string per migration, fields separated by NUL (which no file name can
    hold): type, checksum, has_down (0/1), stat key, number of subdirectories, subdirectories,
    files. Metadata and secret findings, which few migrations have, are kept beside them by
    directory. Strings keep the JSON small and quick to parse (100,000 entries: 0.15 s)."""

    def __init__(self, root: Path, *, active: bool | None = None) -> None:
        self.directory = root / CACHE_DIR
        self.path = self.directory / CACHE_FILE
        self.active = enabled() if active is None else active
        self.entries: dict[str, str] = {}
        self.metas: dict[str, Any] = {}
        self.findings: dict[str, Any] = {}
        self.problems: dict[str, Any] = {}
        if self.active:
            self._read()
        self.fresh: dict[str, str] = {}  # what this run saw: the next cache
        self.fresh_metas: dict[str, Any] = {}
        self.fresh_findings: dict[str, Any] = {}
        self.fresh_problems: dict[str, Any] = {}
        self.changed = False
        self.clock: int | None = None  # filesystem time at the start of reading

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                doc = json.loads(fh.read())
        except (OSError, ValueError):
            return  # absent or corrupt: start again
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            return
        if doc.get("code") != code_stamp():
            return  # other code: other checksums, rules or checks
        entries, metas = doc.get("entries"), doc.get("meta")
        findings, problems = doc.get("findings"), doc.get("problems")
        if (
            isinstance(entries, dict)
            and isinstance(metas, dict)
            and isinstance(findings, dict)
            and isinstance(problems, dict)
        ):
            self.entries, self.metas, self.findings, self.problems = (
                entries,
                metas,
                findings,
                problems,
            )

    def lookup(self, rel: str, path: str, type_: str) -> Digest | None:
        """The cached digest of `path` if its stat data is unchanged."""
        entry = self.entries.get(rel)
        if entry is None:
            return None
        try:
            etype, checksum, has_down, key, count, *names = entry.split("\0")
            if etype != type_:
                return None
            dirs = names[: int(count)]
            files = names[int(count) :]
            dstats = [os.stat(path)]
            dstats += [os.stat(f"{path}/{sub}") for sub in dirs]
            fstats = [os.stat(f"{path}/{name}") for name in files]
            if stat_key(dstats, fstats) != key:
                return None
            meta = self.metas.get(rel, False) if META_FILE in files else None
            findings = tuple(
                (str(f), str(r), str(n), int(li), int(co))
                for f, r, n, li, co in self.findings.get(rel, ())
            )
        except (OSError, TypeError, ValueError, AttributeError):
            return None  # gone, unreadable, or an entry of the wrong shape
        self._keep(rel, entry, meta, findings)
        if rel in self.problems:  # still valid: the migration's files are unchanged
            self.fresh_problems[rel] = self.problems[rel]
        return Digest(
            type=etype,
            files=tuple(files),
            dirs=tuple(dirs),
            key=key,
            newest=0,
            checksum=checksum,
            has_down=has_down == "1",
            meta=meta if meta is None or isinstance(meta, dict) else False,
            findings=findings,
        )

    def _keep(self, rel: str, entry: str, meta: Meta, findings: tuple[Finding, ...]) -> None:
        self.fresh[rel] = entry
        if isinstance(meta, dict):
            self.fresh_metas[rel] = meta
        if findings:
            self.fresh_findings[rel] = [list(f) for f in findings]

    def target_problems(self, rel: str) -> list[Any] | None:
        """The cached result of the target's static checks of a migration found unchanged."""
        data = self.fresh_problems.get(rel)
        if data is None:
            return None
        try:
            return decode_errors(data)
        except (KeyError, IndexError, TypeError, ValueError):
            return None

    def store_target_problems(self, rel: str, found: Sequence[Any]) -> None:
        """Keep the checks' result with the migration's entry (if it has a trusted one)."""
        if not self.active or rel not in self.fresh or rel in self.fresh_problems:
            return
        data = encode_errors(found)
        if data is not None:
            self.fresh_problems[rel] = data
            self.changed = True

    def start_clock(self) -> None:
        """Read the filesystem's clock before reading any file (see the module docstring)."""
        if not self.active or self.clock is not None:
            return
        try:
            self._make_directory()
            fd, tmp = tempfile.mkstemp(prefix=".clock-", dir=self.directory)
            try:
                self.clock = os.fstat(fd).st_mtime_ns
            finally:
                os.close(fd)
                os.unlink(tmp)
        except OSError:
            self.active = False  # a read-only workspace: no cache, nothing else changes

    def store(self, rel: str, found: Digest) -> None:
        if not self.active or self.clock is None or found.newest >= self.clock:
            return  # racily clean (or no clock): read it again next time
        fields = [
            found.type,
            found.checksum,
            "1" if found.has_down else "0",
            found.key,
            str(len(found.dirs)),
            *found.dirs,
            *found.files,
        ]
        self._keep(rel, "\0".join(fields), found.meta, found.findings)
        self.changed = True

    def save(self) -> None:
        """Write the entries seen by this run, if anything changed; never fails the command."""
        if not self.active or (not self.changed and self.fresh.keys() == self.entries.keys()):
            return
        doc = {
            "format": FORMAT,
            "code": code_stamp(),
            "entries": self.fresh,
            "meta": self.fresh_metas,
            "findings": self.fresh_findings,
            "problems": self.fresh_problems,
        }
        with contextlib.suppress(OSError):
            self._make_directory()
            from releasectl.util.fsutil import atomic_write

            atomic_write(self.path, json.dumps(doc, separators=(",", ":")))
        self.entries = self.fresh
        self.problems = self.fresh_problems
        self.changed = False

    def _make_directory(self) -> None:
        if (self.directory / ".gitignore").is_file():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        # like pytest's and mypy's caches: never committed, skipped by backup tools
        (self.directory / ".gitignore").write_text("# created by releasectl\n*\n")
        (self.directory / "CACHEDIR.TAG").write_text(
            "Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file is a cache directory tag created by releasectl.\n"
        )
