"""The Redis backup stream: a compact, length-prefixed binary format, written batch by batch
and read back in chunks, so memory stays flat whatever the number of keys.

Layout (big-endian):

    b"RCTLRDS1"                              magic, format 1
    u32 n, n bytes of JSON                   header: {"format": 1, "patterns": [...],
                                             "config": {param: value}, "server": "7.0.15"}
    per key: b"K" u32 klen u32 plen i64 pttl key payload
                                             payload = DUMP output, pttl = PTTL (-1: no expiry)
    b"E" u64 count u32 crc32                 end: number of keys, CRC-32 of the key records
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from releasectl.errors import TargetError

MAGIC = b"RCTLRDS1"
RECORD = struct.Struct(">BIIq")
END = struct.Struct(">BQI")
TAG_KEY = ord("K")
TAG_END = ord("E")
U32 = struct.Struct(">I")
READ_CHUNK = 1 << 20
BATCH_BYTES = 4 << 20  # restore batches stop at this many payload bytes
MAX_HEADER = 16 << 20


class BackupFormatError(TargetError):
    pass


@dataclass
class Header:
    patterns: list[str]
    config: dict[str, str] = field(default_factory=dict)
    server: str | None = None

    def to_bytes(self) -> bytes:
        body = json.dumps(
            {
                "format": 1,
                "patterns": self.patterns,
                "config": self.config,
                "server": self.server,
            },
            sort_keys=True,
        ).encode()
        return MAGIC + U32.pack(len(body)) + body


def encode_batch(reply: list[Any], skip: list[re.Pattern[bytes]]) -> tuple[bytes, int]:
    """Records for one batch reply [cursor, key, dump, pttl, ...]; keys that an earlier
    pattern of the scope already saved are left out (overlapping patterns)."""
    pack = RECORD.pack
    parts: list[bytes] = []
    append = parts.append
    written = 0
    for i in range(1, len(reply), 3):
        key = reply[i]
        if skip and any(r.match(key) for r in skip):
            continue
        payload = reply[i + 1]
        append(pack(TAG_KEY, len(key), len(payload), reply[i + 2]))
        append(key)
        append(payload)
        written += 1
    return b"".join(parts), written


class Reader:
    """Reads a backup stream: the header first, then the keys batch by batch."""

    def __init__(self, src: IO[bytes]) -> None:
        self.src = src
        magic = src.read(len(MAGIC))
        if magic != MAGIC:
            raise BackupFormatError("not a releasectl Redis backup (bad magic)")
        size_raw = src.read(U32.size)
        if len(size_raw) != U32.size:
            raise BackupFormatError("Redis backup is truncated in its header")
        (size,) = U32.unpack(size_raw)
        if size > MAX_HEADER:
            raise BackupFormatError("Redis backup header is too large")
        raw = src.read(size)
        try:
            data = json.loads(raw)
            self.header = Header(
                patterns=[str(p) for p in data["patterns"]],
                config={str(k): str(v) for k, v in data.get("config", {}).items()},
                server=data.get("server"),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackupFormatError(f"Redis backup header is unreadable: {exc}") from None
        self.start = len(MAGIC) + U32.size + size

    def batches(self, max_keys: int, max_bytes: int = BATCH_BYTES) -> Iterator[list[int | bytes]]:
        """[key, ttl, payload, ...] per batch, ready for the restore script. The end record's
        count and CRC are checked once the last batch is out."""
        src = self.src
        buf = b""
        blen = pos = crc = crc_from = seen = size = 0
        flat: list[int | bytes] = []
        append = flat.append
        unpack = RECORD.unpack_from
        rsize = RECORD.size
        limit = 3 * max_keys

        def fill(need: int) -> None:
            nonlocal buf, blen, pos, crc, crc_from
            crc = zlib.crc32(memoryview(buf)[crc_from:pos], crc)
            rest = buf[pos:]
            buf = rest + src.read(max(READ_CHUNK, need - len(rest)))
            blen = len(buf)
            pos = crc_from = 0

        while True:
            if blen - pos < rsize:
                fill(rsize)
                if pos >= blen:
                    raise BackupFormatError("Redis backup is truncated: no end record")
            if buf[pos] != TAG_KEY:
                break
            if blen - pos < rsize:
                raise BackupFormatError(f"Redis backup is truncated after {seen} keys")
            _, klen, plen, pttl = unpack(buf, pos)
            kstart = pos + rsize
            kend = kstart + klen
            end = kend + plen
            if end > blen:
                fill(rsize + klen + plen)
                if rsize + klen + plen > blen:
                    raise BackupFormatError(f"Redis backup is truncated after {seen} keys")
                kstart, kend, end = rsize, rsize + klen, rsize + klen + plen
            append(buf[kstart:kend])
            append(pttl if pttl > 0 else 0)
            append(buf[kend:end])
            size += end - pos
            pos = end
            seen += 1
            if len(flat) >= limit or size >= max_bytes:
                yield flat
                flat = []
                append = flat.append
                size = 0
        if buf[pos] != TAG_END:
            raise BackupFormatError(f"Redis backup is corrupt after {seen} keys")
        if blen - pos < END.size:
            fill(END.size)
            if blen < END.size:
                raise BackupFormatError("Redis backup is truncated in its end record")
        crc = zlib.crc32(memoryview(buf)[crc_from:pos], crc)
        _, count, expected = END.unpack_from(buf, pos)
        if count != seen:
            raise BackupFormatError(f"Redis backup holds {seen} keys, its end record says {count}")
        if crc != expected:
            raise BackupFormatError("Redis backup is corrupt (CRC mismatch)")
        if flat:
            yield flat

    def verify(self) -> int:
        """Check the rest of the stream against its end record (CRC-32 of the key records, at
        C speed) without decoding it; returns the number of keys the end record announces."""
        crc = 0
        tail = b""
        while True:
            block = self.src.read(READ_CHUNK)
            if not block:
                break
            data = tail + block
            crc = zlib.crc32(memoryview(data)[: len(data) - END.size], crc)
            tail = data[len(data) - END.size :]
        if len(tail) < END.size or tail[0] != TAG_END:
            raise BackupFormatError("Redis backup is truncated: no end record")
        _, count, expected = END.unpack(tail)
        if crc != expected:
            raise BackupFormatError("Redis backup is corrupt or truncated (CRC mismatch)")
        return int(count)


def read_header(src: IO[bytes]) -> Header:
    return Reader(src).header
