"""Reading a release package as `release verify` must: exactly what `tar` would extract, in
bounded memory.

A package is one gzip member holding one tar archive. Anything else an extractor could be
made to see is refused:

- data after the gzip member (a second member, which `gzip -d` and `tar --ignore-zeros`
  extract and could substitute a migration with, or trailing bytes);
- anything but zero blocks after the tar archive's end-of-archive marker (a second archive
  behind a "lone zero block");
- a header that claims more than `MAX_HEADER_BYTES` (a pax header, or a GNU long name, that
  claims a gigabyte makes Python's `tarfile` read it all into memory): tarfile reads through
  `Inflater`, which hands out, between two members, only the previous member's data plus
  `MAX_HEADER_BYTES`;
- an entry larger than the file cap of `releasectl.util.safefiles` (a package holds only
  workspace files, which are never larger).

Decompression is bounded too: zlib is asked for at most what tarfile asked for, so a chunk of
a compression bomb never expands in memory all at once.
"""

from __future__ import annotations

import tarfile
import zlib
from typing import BinaryIO

BLOCK = 512
MAX_HEADER_BYTES = 1024 * 1024  # a pax header or GNU long name of a package is a few hundred
READ_CHUNK = 64 * 1024
PADDING_LIMIT = 1024 * 1024  # zeros a writer may leave after the end-of-archive marker
_KEEP = 256 * 1024  # the tail of what was handed out, to check tarfile's read-ahead


class ArchiveError(tarfile.TarError):
    """The archive holds something an extraction could be tricked by."""


class Inflater:
    """The package's one gzip member, decompressed on demand, with an allowance of bytes that
    `allow` renews at every member."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)  # one gzip member
        self._input = b""  # compressed bytes read but not yet given to zlib
        self._ended = False  # the gzip member's end was reached
        self.delivered = 0  # decompressed bytes handed out so far
        self._tail = bytearray()  # the last `_KEEP` of them
        self._allowance = MAX_HEADER_BYTES
        self._over = (
            f"a tar header claims more than {MAX_HEADER_BYTES:,} bytes (a pax header or GNU "
            "long name this large is an attack on the reader): refused"
        )

    def allow(self, data_size: int) -> None:
        """A member was read: its data (whole blocks) and the next headers may follow."""
        blocks = -(-data_size // BLOCK) * BLOCK
        self._allowance = blocks + MAX_HEADER_BYTES

    # the rest of the file interface tarfile's stream mode expects; it only reads
    def write(self, data: bytes, /) -> int:
        raise OSError("a package is read, never written, here")

    def tell(self) -> int:
        return self.delivered

    def seek(self, pos: int, /) -> int:
        raise OSError("a package is read as a stream")

    def close(self) -> None:
        pass

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            size = READ_CHUNK
        if self._allowance <= 0 and not self._ended:
            raise ArchiveError(self._over)
        out = self._inflate(min(size, self._allowance))
        self._allowance -= len(out)
        self.delivered += len(out)
        self._tail += out
        if len(self._tail) > _KEEP:
            del self._tail[: len(self._tail) - _KEEP]
        return out

    def _inflate(self, size: int) -> bytes:
        chunks: list[bytes] = []
        wanted = size
        while wanted > 0 and not self._ended:
            if self._zlib.unconsumed_tail:
                data = self._zlib.unconsumed_tail
            else:
                if not self._input:
                    self._input = self._raw.read(READ_CHUNK)
                    if not self._input:
                        raise ArchiveError("the gzip stream ends before its end marker")
                data, self._input = self._input, b""
            chunk = self._zlib.decompress(data, wanted)
            chunks.append(chunk)
            wanted -= len(chunk)
            if self._zlib.eof:
                self._ended = True
                self._input = self._zlib.unused_data + self._input
        return b"".join(chunks)

    def check_end(self, archive_end: int) -> None:
        """After tarfile met the end-of-archive marker at `archive_end`: only zeros may follow
        in the tar stream, and nothing at all after the gzip member."""
        ahead = self.delivered - archive_end  # what tarfile read beyond the marker
        if ahead > len(self._tail):
            raise ArchiveError("cannot check the end of the archive")  # pragma: no cover
        if ahead > 0 and any(self._tail[len(self._tail) - ahead :]):
            raise ArchiveError(_AFTER_END)
        self._allowance = PADDING_LIMIT
        self._over = f"more than {PADDING_LIMIT:,} bytes after the end-of-archive marker: refused"
        while not self._ended:
            if any(self.read(READ_CHUNK)):
                raise ArchiveError(_AFTER_END)
        rest = self._input or self._raw.read(READ_CHUNK)
        if rest:
            what = "a second gzip member" if rest[:2] == b"\x1f\x8b" else "trailing bytes"
            raise ArchiveError(
                f"data after the gzip stream ({what}, which `gzip -d` or `tar` may still "
                "read): refused"
            )


_AFTER_END = (
    "data after the tar end-of-archive marker (a second archive, which `tar --ignore-zeros` "
    "would extract): refused"
)
