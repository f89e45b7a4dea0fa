"""Reading a migration once: its `Digest` (file list, checksum, `down` part, `migration.yaml`
metadata, literal secrets), and reading many in parallel for a cold scan.

Each file is opened, stat-ed (fstat) and read once; the checksum, the secret pre-check and the
metadata all come from those bytes. `releasectl.workspace.scancache` keeps digests between runs.
`RELEASECTL_JOBS=N` sets the number of processes a cold scan may use (default: the number of
CPUs, at most 4).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from releasectl.secrets import GENERIC_WORDS
from releasectl.util import safefiles

POOL_MIN = 2000  # fewer migrations to read than this: one process is faster than forking
META_FILE = "migration.yaml"
META_MAX_BYTES = 4 * 1024 * 1024

# Files that are not text: never scanned for secrets. Everything else in a migration is.
BINARY_SUFFIXES = frozenset({".gz", ".zip", ".png", ".jpg", ".jpeg", ".gif", ".pdf", ".db"})


# Files that are text whatever they hold: always scanned (a NUL byte cannot hide a secret).
TEXT_SUFFIXES = frozenset(
    {".yaml", ".yml", ".json", ".sql", ".sh", ".py", ".cedar", ".cedarschema", ".txt", ".md"}
)


def is_binary(name: str, data: bytes) -> bool:
    """Not text, so never scanned for secrets: a binary suffix, or (for a file whose suffix
    does not say it is text) a NUL byte in the first 8,000 bytes (git's test)."""
    suffix = os.path.splitext(name)[1]
    if suffix in BINARY_SUFFIXES:
        return True
    return suffix not in TEXT_SUFFIXES and b"\0" in data[:8000]


Finding = tuple[str, str, str, int, int]  # file, rule id, rule name, line, column
# meta: None when there is no migration.yaml, the validated fields, or False when it could
# not be read here (the `Migration.meta` property then reports the problem with its line).
Meta = dict[str, Any] | None | bool


@dataclass(slots=True)
class Digest:
    """What reading one migration directory yields."""

    type: str
    files: tuple[str, ...]  # relative POSIX paths, sorted; hidden files and caches excluded
    dirs: tuple[str, ...]  # subdirectories, sorted (the migration directory itself excluded)
    key: str  # `stat_key` of the directory, its subdirectories and its files
    newest: int  # newest mtime/ctime (ns) among them: how racy the entry is
    checksum: str
    has_down: bool
    meta: Meta
    findings: tuple[Finding, ...]


# --- reading one migration -------------------------------------------------------------------


@functools.cache
def _key_format(dirs: int, files: int) -> struct.Struct:
    # inode (unsigned), then times (signed: a file may predate 1970), then sizes
    return struct.Struct("<" + "Qqq" * dirs + "Qqqq" * files)


def stat_key(dirs: Sequence[os.stat_result], files: Sequence[os.stat_result]) -> str:
    """The stat data that vouches for a digest: inode, mtime_ns and ctime_ns of every
    directory; inode, size, mtime_ns and ctime_ns of every file (hex of the packed values)."""
    values: list[int] = []
    for st in dirs:
        values += (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
    for st in files:
        values += (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return _key_format(len(dirs), len(files)).pack(*values).hex()


def _newest(*stats: Sequence[os.stat_result]) -> int:
    return max(max(st.st_mtime_ns, st.st_ctime_ns) for group in stats for st in group)


def _list(path: str, prefix: str, files: list[str], dirs: dict[str, os.stat_result]) -> None:
    with os.scandir(path) as it:
        for entry in it:
            name = entry.name
            if name.startswith(".") or name == "__pycache__":
                continue
            rel = prefix + name
            if entry.is_dir(follow_symlinks=False):
                # stat before listing: an entry added after this changes the stat data
                dirs[rel] = os.stat(entry.path)
                _list(entry.path, rel + "/", files, dirs)
            else:
                files.append(rel)


def _read(path: str) -> tuple[bytes, os.stat_result]:
    # one open, fstat and read, after the checks of safefiles (no link out, no device)
    return safefiles.read(path)


def normalise(data: bytes) -> bytes:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\r\n" in data:
        data = data.replace(b"\r\n", b"\n")
    return data


def digest(path: str, type_: str, down: Sequence[str]) -> Digest:
    """Read one migration directory once: checksum, `down` part, metadata and secrets.

    `down` is the component type's list of parts that make a `down` possible (see
    `catalogue.Layout.down`)."""
    root_stat = os.stat(path)  # before listing, as for subdirectories
    files: list[str] = []
    dir_stats: dict[str, os.stat_result] = {}
    _list(path, "", files, dir_stats)
    files.sort()
    dirs = tuple(sorted(dir_stats))
    dstats = [root_stat, *(dir_stats[rel] for rel in dirs)]
    fstats: list[os.stat_result] = []
    sha = hashlib.sha256()
    findings: list[Finding] = []
    kept: dict[str, bytes] = {}
    wanted = {part.partition(":")[0] for part in down if ":" in part} | {META_FILE}
    for rel in files:
        data, st = _read(f"{path}/{rel}")
        fstats.append(st)
        body = normalise(data)
        sha.update(f"{rel}\0{len(body)}\0".encode())
        sha.update(body)
        if not is_binary(rel, data):
            findings.extend(secret_findings(rel, data))
        if rel in wanted:
            kept[rel] = data
    return Digest(
        type=type_,
        files=tuple(files),
        dirs=dirs,
        key=stat_key(dstats, fstats),
        newest=_newest(dstats, fstats),
        checksum=sha.hexdigest(),
        has_down=_has_down(down, files, kept),
        meta=_meta(kept.get(META_FILE)) if META_FILE in files else None,
        findings=tuple(findings),
    )


def _has_down(down: Sequence[str], files: Sequence[str], kept: dict[str, bytes]) -> bool:
    if not down:
        return True  # snapshots: version N-1 is the way down
    for part in down:
        name, _, func = part.partition(":")
        if name not in files:
            continue
        if not func:
            return True
        text = kept.get(name, b"").decode("utf-8", errors="replace")
        if re.search(rf"^def {func}\(", text, re.MULTILINE):
            return True
    return False


def _meta(data: bytes | None) -> Meta:
    """The validated fields of migration.yaml, or False to leave the error to the loader."""
    from pydantic import ValidationError

    from releasectl.models.migration import MigrationMeta
    from releasectl.workspace.yamlio import UNSUITED, fast_data

    if data is None or len(data) > META_MAX_BYTES:
        return False
    try:
        parsed = fast_data(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return False
    if parsed is None:
        parsed = {}
    if parsed is UNSUITED or not isinstance(parsed, dict):
        return False
    try:
        meta = MigrationMeta.model_validate(parsed)
    except ValidationError:
        return False
    return meta.model_dump(mode="json")


# --- secrets: a literal pre-check first, the rules only where it passes -------------------------

# For each rule of `secrets.RULES`, text that every match of it contains (`casefold` compares
# without case, as the rule's pattern does). A file that holds none of a rule's words cannot
# match that rule; only a file that might match some rule is scanned by the rules themselves.
# A rule missing here is always run, so a new rule is never skipped (only slower).
KEYWORDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "aws-access-key": (("AKIA", "ASIA", "ABIA", "ACCA"), False),
    "aws-secret-key": (("aws",), True),
    "private-key": (("-----BEGIN",), False),
    "github-token": (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), False),
    "github-pat": (("github_pat_",), False),
    "gitlab-token": (("glpat-",), False),
    "slack-token": (("xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-"), False),
    "google-api-key": (("AIza",), False),
    "stripe-key": (("sk_live_", "rk_live_"), False),
    "jwt": (("eyJ",), False),
    "url-password": (("://",), False),
    "generic-assignment": (GENERIC_WORDS, True),
    "sql-password": (("password", "identified"), True),
}


@functools.cache
def _words() -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The words to look for (as written, and case-folded), or None: a rule has none."""
    from releasectl.secrets import RULES

    plain: list[str] = []
    folded: list[str] = []
    for rule, _, _ in RULES:
        if rule not in KEYWORDS:
            return None
        words, fold = KEYWORDS[rule]
        (folded if fold else plain).extend(words)
    return tuple(plain), tuple(folded)


def may_hold_secret(text: str) -> bool:
    """False when no rule of `secrets.RULES` can match `text` (a cheap, exact pre-check)."""
    words = _words()
    if words is None:
        return True
    plain, folded = words
    for word in plain:
        if word in text:
            return True
    if folded:
        text = text.casefold()
        for word in folded:
            if word in text:
                return True
    return False


def secret_findings(rel: str, data: bytes) -> list[Finding]:
    """Literal secrets in one file's bytes (as `secrets.scan_text` finds them in its text)."""
    text = data.decode("utf-8", errors="replace")
    if not may_hold_secret(text):
        return []
    from releasectl.secrets import scan_text

    return [(rel, f.rule, f.name, f.line, f.column) for f in scan_text(text)]


# --- many migrations: one process, or a pool of forked ones -----------------------------------

Task = tuple[str, str, tuple[str, ...]]  # directory, type, down parts


def _digest_all(tasks: Sequence[Task]) -> list[Digest]:
    return [digest(path, type_, down) for path, type_, down in tasks]


def jobs() -> int:
    """Processes a cold scan or check may use: RELEASECTL_JOBS, else the CPUs (at most 4).
    One while other threads run: a forked child would inherit their locks, held."""
    import threading

    if not hasattr(os, "fork") or threading.active_count() > 1:
        return 1
    configured = os.environ.get("RELEASECTL_JOBS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, min(os.cpu_count() or 1, 4))


def digest_many(
    tasks: Sequence[Task], processes: int | None = None, *, min_tasks: int = POOL_MIN
) -> list[Digest]:
    """Digests of `tasks`, in order. Large cold scans fork helpers (Linux): reading files is
    system-call bound and each process makes its own calls."""
    processes = jobs() if processes is None else processes
    if processes < 2 or len(tasks) < max(min_tasks, 2):
        return _digest_all(tasks)
    from releasectl.util import forkpool

    # contiguous slices keep each process in its own directories; this process takes the first
    size = -(-len(tasks) // processes)
    slices = [list(tasks[i : i + size]) for i in range(0, len(tasks), size)]
    with forkpool.pool(len(slices) - 1) as pool:
        pending = pool.map_async(_digest_all, slices[1:], chunksize=1)
        mine = _digest_all(slices[0])
        rest = pending.get()
    return [d for part in (mine, *rest) for d in part]
