"""The shell parses a script part without running it (`bash -n`), for many parts in one process.

One `bash -n` per part costs a fork and an exec (about 1 ms): 20,000 parts took 20 s. Bash
parses quickly, so the parts are checked in batches instead: each part becomes the body of a
function in one generated file, which one `bash --pretty-print` parses (like `-n`, nothing
runs; it prints each command it parsed in bash's canonical form). A clean batch proves every
part of it parses on its own, as `bash -n part` would, because:

- part i is fenced as `_rc_<nonce>_<i>()  {` ... `}` followed by the command `:  '<nonce>:<i>'`,
  written with doubled spaces that bash's printer normalises. The nonce is random per run, so
  no part holds it. Bash prints, at the start of a line, the function `_rc_<nonce>_<i> () `
  and then the command `: '<nonce>:<i>'` only when it parsed them as top-level commands; text a
  part swallowed (a quote, here-document or `$((` left open in one part and closed in the next)
  is printed as written, in the un-normalised form. So: every line holding the nonce is the
  canonical function or command, 2n of them in order, means each part is exactly the body of
  its own function;
- a part that holds a `{` or `}` word (the brace-group words, which could close its function
  early and reopen a group, `}; {`) is never batched: it gets its own `bash -n`. Without them
  the body ends at the fence's `}`; an `if`, `(` or `case` a part leaves open meets that `}`,
  which is a syntax error, and so does a trailing `|`, `&&` or `\\` that would join the fence to
  the part;
- anything else (an exit status other than 0, any output on stderr, such as bash's warning
  about a here-document ended by end of file, a bash without `--pretty-print`, before 5.2)
  sends every part of the batch to its own `bash -n`, whose verdict and message are the
  exact ones.

So a batch only ever says "clean" for parts that are clean one by one; errors are reported
from the one-by-one check, with bash's own message and line. tests/test_script_syntax.py
holds the hostile cases, and compares the two ways on every pair of them.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

BATCH_BYTES = 1 << 20  # a generated file of about this size per bash process
TIMEOUT = 10.0  # seconds, for one part or one batch

# `{` or `}` as a word of its own: between the start, the end or a shell metacharacter
_BRACE_WORD = re.compile(rb"(?:^|(?<=[\s;&|()<>]))[{}](?=[\s;&|()<>]|$)", re.MULTILINE)


@dataclass(frozen=True)
class Verdict:
    """What the shell said of one part: clean, or its first error line (and line number)."""

    ok: bool
    message: str = ""
    line: int | None = None


def batchable(data: bytes) -> bool:
    """Whether a part may be parsed inside a fenced batch (see the module docstring)."""
    return b"\0" not in data and _BRACE_WORD.search(data) is None


def check_one(exe: str, path: Path) -> Verdict | None:
    """`exe -n path`; None when the shell could not be run (no verdict, as before)."""
    try:
        proc = subprocess.run(
            [exe, "-n", str(path)], capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode == 0:
        return Verdict(True)
    message = proc.stderr.strip().splitlines()[0] if proc.stderr.strip() else "syntax error"
    found = re.search(r"line (\d+):\s*(.*)", message)
    if found:
        return Verdict(False, found.group(2), int(found.group(1)))
    return Verdict(False, message)


def _fenced(nonce: str, parts: Sequence[bytes]) -> bytes:
    out: list[bytes] = []
    tag = nonce.encode()
    for index, data in enumerate(parts):
        out.append(b"_rc_%s_%d()  {\n" % (tag, index))
        out.append(data)
        out.append(b"\n}\n:  '%s:%d'\n" % (tag, index))
    return b"".join(out)


def _canonical(nonce: str, count: int) -> list[bytes]:
    """The lines bash prints for the fences when it parsed them as top-level commands."""
    tag = nonce.encode()
    lines: list[bytes] = []
    for index in range(count):
        lines += [b"_rc_%s_%d ()" % (tag, index), b": '%s:%d'" % (tag, index)]
    return lines


def batch_clean(bash: str, parts: Sequence[bytes]) -> bool:
    """True when one `bash --pretty-print` of the fenced parts proves each of them parses on
    its own (see the module docstring)."""
    nonce = secrets.token_hex(16)
    # a file, not a pipe: bash reads a script from a pipe one byte at a time
    with tempfile.NamedTemporaryFile(prefix="releasectl-syntax-", suffix=".sh") as script:
        script.write(_fenced(nonce, parts))
        script.flush()
        try:
            proc = subprocess.run(
                [bash, "--pretty-print", script.name],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
    if proc.returncode != 0 or proc.stderr:
        return False
    tag = nonce.encode()
    seen = [line.rstrip() for line in proc.stdout.splitlines() if tag in line]
    return seen == _canonical(nonce, len(parts))


def check_many(
    exe: str, items: Iterable[tuple[Path, bytes | None]], *, workers: int = 2
) -> dict[Path, Verdict]:
    """The verdict of `exe -n` on each path (with its bytes, None where they could not be
    read); a path the shell could not judge is left out.

    With bash, parts are parsed in batches (one process per ~1 MiB), each started as soon as
    it is full, while `items` is still being read, and dropped once parsed; other shells,
    parts that cannot be batched and the parts of a batch that was not clean get one process
    each."""
    verdicts: dict[Path, Verdict] = {}
    alone: list[Path] = []
    batchable_shell = Path(exe).name == "bash"

    def run_batch(batch: list[tuple[Path, bytes]]) -> list[Path]:
        if batch_clean(exe, [data for _, data in batch]):
            verdicts.update((path, Verdict(True)) for path, _ in batch)
            return []
        return [path for path, _ in batch]

    def run_alone(path: Path) -> None:
        verdict = check_one(exe, path)
        if verdict is not None:
            verdicts[path] = verdict

    with ThreadPoolExecutor(max(1, workers)) as pool:
        pending = []
        current: list[tuple[Path, bytes]] = []
        size = 0
        for path, data in items:
            if data is None or not batchable_shell or not batchable(data):
                alone.append(path)
                continue
            current.append((path, data))
            size += len(data) + 64
            if size >= BATCH_BYTES:
                pending.append(pool.submit(run_batch, current))
                current, size = [], 0
        if current:
            pending.append(pool.submit(run_batch, current))
        for future in pending:
            alone.extend(future.result())
        list(pool.map(run_alone, alone))
    return verdicts
