"""The SQL target's backup stream: a magic line, then frames `kind (1 byte) | length (4 bytes,
big-endian) | payload`, so a backup is written and read in one pass without holding a table in
memory. Kinds:

    H  header (JSON): format, dialect, mode, scope, schema version, table definitions
    T  start of a table's rows (JSON: {"table": name, "columns": [...]})
    R  a batch of rows: SQLite JSON rows; PostgreSQL a chunk of COPY BINARY output
    E  end of a table's rows (JSON: {"table": name, "rows": n})
    F  a chunk of a whole SQLite database file
    Z  trailer (JSON: totals): a backup without it is truncated and is never restored
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from typing import IO, Any

from releasectl.errors import TargetError

MAGIC = b"releasectl-sql-backup 1\n"
FORMAT = "releasectl/sql-backup"
CHUNK = 1 << 20  # target payload size of R and F frames
MAX_FRAME = 64 << 20  # anything larger is a corrupt stream, not a frame
ROWS_PER_FRAME = 2000
_LEN = struct.Struct(">I")


class BackupFormatError(TargetError):
    pass


def write_all(out: IO[bytes], data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = out.write(view)
        if written is None or written >= len(view):
            return
        view = view[written:]


class FrameWriter:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        write_all(out, MAGIC)

    def frame(self, kind: bytes, payload: bytes | memoryview) -> None:
        write_all(self.out, kind + _LEN.pack(len(payload)))
        if payload:
            write_all(self.out, payload)

    def json(self, kind: bytes, value: Any) -> None:
        self.frame(kind, json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def _read_exact(src: IO[bytes], size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left:
        chunk = src.read(left)
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


class FrameReader:
    def __init__(self, src: IO[bytes]) -> None:
        self.src = src
        magic = _read_exact(src, len(MAGIC))
        if magic != MAGIC:
            raise BackupFormatError("not a releasectl SQL backup (wrong magic bytes)")

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        while True:
            head = _read_exact(self.src, 5)
            if not head:
                return
            if len(head) < 5:
                raise BackupFormatError("the backup is truncated (partial frame header)")
            kind, size = head[:1], _LEN.unpack(head[1:])[0]
            if size > MAX_FRAME:
                raise BackupFormatError(f"corrupt backup: a {size}-byte frame")
            payload = _read_exact(self.src, size)
            if len(payload) < size:
                raise BackupFormatError("the backup is truncated (partial frame)")
            yield kind, payload

    def header(self) -> dict[str, Any]:
        _, payload = self.expect(b"H")
        header = load_json(payload)
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise BackupFormatError("not a releasectl SQL backup (unknown header)")
        return header

    def expect(self, kind: bytes) -> tuple[bytes, bytes]:
        for got, payload in self:
            if got != kind:
                raise BackupFormatError(f"corrupt backup: frame {got!r} where {kind!r} belongs")
            return got, payload
        raise BackupFormatError("the backup is truncated (no trailer)")


def load_json(payload: bytes) -> Any:
    try:
        return json.loads(payload, object_hook=_unhook)
    except ValueError as exc:
        raise BackupFormatError(f"corrupt backup frame: {exc}") from exc


# SQLite values are None, int, float, str or bytes; JSON carries all but bytes natively, so
# bytes travel as {"$b": base64}. The hooks run only for bytes, keeping the rest at C speed.
def _hook(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"cannot back up a value of type {type(value).__name__}")


def _unhook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$b" in obj:
        return base64.b64decode(obj["$b"])
    return obj


def encode_rows(rows: list[Any]) -> bytes:
    return json.dumps(rows, separators=(",", ":"), default=_hook).encode()


def decode_rows(payload: bytes) -> list[list[Any]]:
    rows = load_json(payload)
    if not isinstance(rows, list):
        raise BackupFormatError("corrupt backup: a row frame is not a list")
    return rows


def select_tables(patterns: list[str], tables: list[str], exclude: set[str]) -> list[str]:
    """The tables (names as the catalogue spells them) that scope `patterns` name: exact names
    or globs (`*`, `?`, `[..]`), matched case-sensitively, `exclude` left out."""
    from fnmatch import fnmatchcase

    chosen = [t for t in tables if t not in exclude and any(fnmatchcase(t, p) for p in patterns)]
    return sorted(chosen)
