"""The backup store: `.releasectl/backups/<env>/<component>/<id>.bak` + `<id>.json`.

A target streams its backup into a writer; the store checksums what it stores (SHA-256 of the
file's bytes, checked before any restore) and, where the environment says so (always for a
protected one), encrypts it at rest with AES-256-GCM using the key in the environment variable
named by `backups.key_env` (base64 of 32 bytes).

Encrypted files use a chunked construction (the STREAM construction of Hoang, Reyhanitabar,
Rogaway and Vizár): the plaintext is cut into 1 MiB chunks, each sealed with its own nonce =
7 random bytes || 4-byte chunk counter || 1 byte "last chunk" flag. Reordering, dropping or
truncating chunks fails authentication, and memory stays flat however large the backup is.
Every chunk is bound (as AES-GCM associated data) to the backup's environment, component,
type and id, so a sealed backup copied under another name or component does not open.

An encrypted store (every protected environment's) restores only such authenticated backups:
a plain backup, or one sealed before the binding existed, copied into its directory is
refused, and every chunk is authenticated before the first byte reaches a target.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import io
import json
import os
import secrets
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from releasectl.errors import InputError, ReleasectlError
from releasectl.util import failpoints, timeutil
from releasectl.util.fsutil import atomic_write, fsync_dir

MAGIC_PLAIN = b"RCTLBAK1\x00"
MAGIC_SEALED = b"RCTLBAK1\x01"  # sealed, chunks not bound to the backup: read where unprotected
MAGIC_BOUND = b"RCTLBAK2\x01"  # sealed, every chunk bound to env, component, type and id
CHUNK = 1024 * 1024
TAG = 16


class BackupError(ReleasectlError):
    pass


@dataclass
class BackupMeta:
    id: str
    env: str
    component: str
    type: str
    created: str
    actor: str
    kind: Literal["step", "manual"]
    size: int = 0
    sha256: str = ""
    encrypted: bool = False
    items: int = 0
    scope: list[str] = field(default_factory=list)
    plan: str | None = None
    step: dict[str, Any] | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    created_ns: int = 0  # orders backups made within the same millisecond

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def binding(self) -> bytes:
        """The associated data that ties each sealed chunk to this backup."""
        fields = ("releasectl-backup-v2", self.env, self.component, self.type, self.id)
        return "\0".join(fields).encode()


def load_key(key_env: str, environ: dict[str, str] | os._Environ[str]) -> bytes:
    raw = environ.get(key_env)
    if not raw:
        raise InputError(
            f"backups of this environment are encrypted: set {key_env} to a base64 256-bit key "
            '(for example: python -c "import os,base64;print(base64.b64encode(os.urandom(32))'
            '.decode())")'
        )
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{key_env} is not valid base64") from None
    if len(key) != 32:
        raise InputError(f"{key_env} must hold 32 bytes (AES-256), it holds {len(key)}")
    return key


class _HashingFile:
    """Counts and hashes the bytes written to the underlying file."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        failpoints.hit("backup-write")  # the fault suite's ENOSPC where no tmpfs can be had
        self.fh.write(data)
        self.sha.update(data)
        self.size += len(data)
        return len(data)


class _SealingWriter(io.RawIOBase):
    """Writable stream that seals 1 MiB chunks with AES-GCM into `sink`."""

    def __init__(self, sink: _HashingFile, key: bytes, binding: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        super().__init__()
        self._aead = AESGCM(key)
        self._sink = sink
        self._binding = binding
        self._prefix = secrets.token_bytes(7)
        self._counter = 0
        self._buf = bytearray()
        self._sealed = False
        sink.write(MAGIC_BOUND + self._prefix)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buf += data
        while len(self._buf) > CHUNK:
            self._seal(bytes(self._buf[:CHUNK]), last=False)
            del self._buf[:CHUNK]
        return len(data)

    def _seal(self, chunk: bytes, *, last: bool) -> None:
        nonce = self._prefix + struct.pack(">IB", self._counter, 1 if last else 0)
        sealed = self._aead.encrypt(nonce, chunk, self._binding)
        self._sink.write(struct.pack(">I", len(sealed)) + sealed)
        self._counter += 1

    def finish(self) -> None:
        if not self._sealed:
            self._seal(bytes(self._buf), last=True)
            self._buf.clear()
            self._sealed = True


class _PlainWriter(io.RawIOBase):
    def __init__(self, sink: _HashingFile) -> None:
        super().__init__()
        self._sink = sink
        sink.write(MAGIC_PLAIN)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self._sink.write(data)

    def finish(self) -> None:
        return None


class _OpeningReader(io.RawIOBase):
    """Readable stream over a sealed file; authenticates each chunk before handing it out."""

    def __init__(self, fh: IO[bytes], key: bytes, name: str, binding: bytes | None) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        super().__init__()
        self._aead = AESGCM(key)
        self._binding = binding
        self._fh = fh
        self._name = name
        self._prefix = fh.read(7)
        self._counter = 0
        self._buf = b""
        self._pos = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def _next(self) -> None:
        from cryptography.exceptions import InvalidTag

        header = self._fh.read(4)
        if len(header) < 4:
            raise BackupError(f"backup {self._name} is truncated")
        (length,) = struct.unpack(">I", header)
        sealed = self._fh.read(length)
        if len(sealed) < length:
            raise BackupError(f"backup {self._name} is truncated")
        for last in (0, 1):
            nonce = self._prefix + struct.pack(">IB", self._counter, last)
            try:
                self._buf = self._aead.decrypt(nonce, sealed, self._binding)
            except InvalidTag:
                continue
            self._pos = 0
            self._counter += 1
            self._done = bool(last)
            return
        raise BackupError(
            f"backup {self._name} cannot be decrypted: wrong key or the file was altered"
        )

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while self._pos >= len(self._buf):
            if self._done:
                return 0
            self._next()
        count = min(len(view), len(self._buf) - self._pos)
        view[:count] = self._buf[self._pos : self._pos + count]
        self._pos += count
        return count


class BackupStore:
    def __init__(
        self,
        root: Path,
        env: str,
        *,
        encrypt: bool,
        key_env: str,
        retention: int,
        environ: dict[str, str] | os._Environ[str] | None = None,
    ) -> None:
        self.root = root
        self.env = env
        self.encrypt = encrypt
        self.key_env = key_env
        self.retention = retention
        self.environ = os.environ if environ is None else environ

    def directory(self, component: str) -> Path:
        return self.root / self.env / component

    def key(self) -> bytes:
        return load_key(self.key_env, self.environ)

    def check_ready(self) -> None:
        """Fail before anything runs if encrypted backups are required and no key is set."""
        if self.encrypt:
            self.key()

    @contextlib.contextmanager
    def writer(self, meta: BackupMeta) -> Iterator[IO[bytes]]:
        """Yield a stream for the target; on success the backup and its metadata are stored."""
        directory = self.directory(meta.component)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"{meta.id}.bak"
        partial = directory / f".{meta.id}.bak.partial"
        key = self.key() if self.encrypt else None
        with partial.open("wb") as fh:
            hashing = _HashingFile(fh)
            try:
                raw: _SealingWriter | _PlainWriter = (
                    _SealingWriter(hashing, key, meta.binding()) if key else _PlainWriter(hashing)
                )
                stream = io.BufferedWriter(raw, buffer_size=CHUNK)
                yield stream
                stream.flush()
                raw.finish()
                fh.flush()
                os.fsync(fh.fileno())
            except BaseException:
                with contextlib.suppress(OSError):  # a full disk fails the close's flush too
                    fh.close()
                partial.unlink(missing_ok=True)
                raise
        os.replace(partial, final)
        fsync_dir(directory)
        meta.size = hashing.size
        meta.sha256 = hashing.sha.hexdigest()
        meta.encrypted = key is not None
        atomic_write(directory / f"{meta.id}.json", json.dumps(meta.as_dict(), indent=2) + "\n")

    def store(self, meta: BackupMeta, fill: Callable[[IO[bytes]], None]) -> BackupMeta:
        """Run `fill(stream)` and keep what it wrote as backup `meta.id`."""
        with self.writer(meta) as out:
            fill(out)
        return meta

    def new_meta(
        self,
        *,
        component: str,
        type_: str,
        actor: str,
        kind: Literal["step", "manual"],
        plan: str | None = None,
        step: dict[str, Any] | None = None,
    ) -> BackupMeta:
        stamp = timeutil.now().strftime("%Y%m%dT%H%M%SZ")
        backup_id = f"{stamp}-{component}-{secrets.token_hex(3)}"
        return BackupMeta(
            created_ns=time.time_ns(),
            id=backup_id,
            env=self.env,
            component=component,
            type=type_,
            created=timeutil.iso(),
            actor=actor,
            kind=kind,
            plan=plan,
            step=step,
        )

    def get(self, backup_id: str, component: str | None = None) -> BackupMeta:
        if "/" in backup_id or backup_id.startswith("."):
            raise InputError(f"invalid backup id {backup_id!r}")
        candidates = (
            [self.directory(component)]
            if component
            else sorted(p for p in (self.root / self.env).glob("*") if p.is_dir())
        )
        for directory in candidates:
            meta_path = directory / f"{backup_id}.json"
            if meta_path.is_file():
                try:
                    meta = BackupMeta(**json.loads(meta_path.read_text(encoding="utf-8")))
                except (ValueError, TypeError, OSError):
                    raise BackupError(f"backup {backup_id}: its metadata cannot be read") from None
                if meta.id != backup_id:
                    raise BackupError(f"backup {backup_id}: its metadata names {meta.id!r}")
                return meta
        where = f" of {component!r}" if component else ""
        raise InputError(
            f"no backup {backup_id!r}{where} in environment {self.env!r} "
            "(list them with `releasectl backup --list`)"
        )

    @contextlib.contextmanager
    def reader(self, meta: BackupMeta) -> Iterator[IO[bytes]]:
        """Verify the checksum, then yield a stream of the backup's plaintext."""
        path = self.directory(meta.component) / f"{meta.id}.bak"
        sha = hashlib.sha256()
        try:
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(CHUNK), b""):
                    sha.update(block)
        except FileNotFoundError:
            raise BackupError(f"backup file of {meta.id} is missing: {path}") from None
        if sha.hexdigest() != meta.sha256:
            raise BackupError(
                f"backup {meta.id} is corrupt: checksum {sha.hexdigest()[:16]} "
                f"does not match the recorded {meta.sha256[:16]}"
            )
        with path.open("rb") as fh:
            magic = fh.read(len(MAGIC_PLAIN))
        if magic not in (MAGIC_PLAIN, MAGIC_SEALED, MAGIC_BOUND):
            raise BackupError(f"backup {meta.id} is not a releasectl backup")
        if self.encrypt and magic != MAGIC_BOUND:
            what = "not encrypted" if magic == MAGIC_PLAIN else "sealed without its binding"
            raise BackupError(
                f"backup {meta.id} is {what}: environment {self.env!r} keeps encrypted backups "
                "and restores only authenticated ones (a backup copied into its directory "
                "is refused)"
            )
        if magic == MAGIC_PLAIN:
            with path.open("rb") as fh:
                fh.read(len(MAGIC_PLAIN))
                yield fh
            return
        key = self.key()
        binding = meta.binding() if magic == MAGIC_BOUND else None
        with path.open("rb") as fh:  # authenticate every chunk before anything is restored
            fh.read(len(MAGIC_PLAIN))
            opened = _OpeningReader(fh, key, meta.id, binding)
            while opened.read(CHUNK):
                pass
        with path.open("rb") as fh:
            fh.read(len(MAGIC_PLAIN))
            yield io.BufferedReader(_OpeningReader(fh, key, meta.id, binding), CHUNK)

    def all(self, component: str | None = None) -> list[BackupMeta]:
        base = self.root / self.env
        dirs = (
            [self.directory(component)]
            if component
            else sorted(p for p in base.glob("*") if p.is_dir())
        )
        found = []
        for directory in dirs:
            for meta_path in directory.glob("*.json"):
                with contextlib.suppress(ValueError, TypeError, OSError):
                    found.append(BackupMeta(**json.loads(meta_path.read_text(encoding="utf-8"))))
        found.sort(key=lambda m: (m.created, m.created_ns, m.id))
        return found

    def prune(self, component: str, *, keep_ids: frozenset[str] = frozenset()) -> list[str]:
        """Delete the oldest backups of `component` beyond the retention; returns their ids."""
        backups = self.all(component)
        excess = len(backups) - self.retention
        removed = []
        for meta in backups:
            if excess <= 0:
                break
            if meta.id in keep_ids:
                continue
            directory = self.directory(component)
            (directory / f"{meta.id}.bak").unlink(missing_ok=True)
            (directory / f"{meta.id}.json").unlink(missing_ok=True)
            removed.append(meta.id)
            excess -= 1
        return removed
