"""The backup store: checksums, AES-GCM encryption at rest, tampering, retention."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from releasectl.errors import InputError
from releasectl.state.backups import BackupError, BackupStore

KEY = base64.b64encode(bytes(range(32))).decode()


def store(
    tmp_path: Path, *, encrypt: bool, retention: int = 3, key: str | None = KEY
) -> BackupStore:
    environ = {"RELEASECTL_BACKUP_KEY": key} if key else {}
    return BackupStore(
        tmp_path / "backups",
        "prod",
        encrypt=encrypt,
        key_env="RELEASECTL_BACKUP_KEY",
        retention=retention,
        environ=environ,
    )


def write(s: BackupStore, payload: bytes, component: str = "redis") -> str:
    meta = s.new_meta(component=component, type_="redis", actor="t", kind="manual")

    def fill(out: object) -> None:
        for i in range(0, len(payload), 70_000):
            out.write(payload[i : i + 70_000])  # type: ignore[attr-defined]

    s.store(meta, fill)
    return meta.id


def read(s: BackupStore, backup_id: str) -> bytes:
    with s.reader(s.get(backup_id)) as src:
        return src.read()


@pytest.mark.parametrize("encrypt", [False, True])
def test_round_trip(tmp_path: Path, encrypt: bool) -> None:
    s = store(tmp_path, encrypt=encrypt)
    payload = os.urandom(3 * 1024 * 1024 + 123)  # several 1 MiB chunks and a partial one
    backup_id = write(s, payload)
    meta = s.get(backup_id)
    assert meta.encrypted is encrypt and meta.size > len(payload)
    assert read(s, backup_id) == payload
    raw = (s.directory("redis") / f"{backup_id}.bak").read_bytes()
    assert (payload[:4096] in raw) is not encrypt


def test_empty_backup(tmp_path: Path) -> None:
    s = store(tmp_path, encrypt=True)
    assert read(s, write(s, b"")) == b""


def test_corrupt_file_is_refused_before_restore(tmp_path: Path) -> None:
    s = store(tmp_path, encrypt=False)
    backup_id = write(s, b"x" * 5000)
    path = s.directory("redis") / f"{backup_id}.bak"
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="is corrupt: checksum"):
        read(s, backup_id)


def test_wrong_key_cannot_decrypt(tmp_path: Path) -> None:
    backup_id = write(store(tmp_path, encrypt=True), b"secret data" * 100)
    other = store(tmp_path, encrypt=True, key=base64.b64encode(b"k" * 32).decode())
    with pytest.raises(BackupError, match="wrong key or the file was altered"):
        read(other, backup_id)


def test_truncated_encrypted_backup_fails(tmp_path: Path) -> None:
    s = store(tmp_path, encrypt=True)
    backup_id = write(s, os.urandom(2 * 1024 * 1024 + 10))
    path = s.directory("redis") / f"{backup_id}.bak"
    data = path.read_bytes()
    cut = data[: len(data) // 2]
    path.write_bytes(cut)
    meta = s.get(backup_id)
    import hashlib

    meta.sha256 = hashlib.sha256(cut).hexdigest()  # even with a matching checksum
    with pytest.raises(BackupError, match="truncated"), s.reader(meta) as src:
        src.read()


def test_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    s = store(tmp_path, encrypt=True, key=None)
    with pytest.raises(InputError, match="set RELEASECTL_BACKUP_KEY"):
        s.check_ready()
    bad = store(tmp_path, encrypt=True, key=base64.b64encode(b"short").decode())
    with pytest.raises(InputError, match="must hold 32 bytes"):
        bad.check_ready()


def test_retention_prunes_oldest(tmp_path: Path) -> None:
    s = store(tmp_path, encrypt=False, retention=2)
    ids = [write(s, f"b{n}".encode()) for n in range(4)]
    removed = s.prune("redis")
    assert sorted(removed) == sorted(ids[:2])
    assert [m.id for m in s.all("redis")] == ids[2:]


def test_unknown_or_unsafe_id(tmp_path: Path) -> None:
    s = store(tmp_path, encrypt=False)
    with pytest.raises(InputError, match="no backup 'nope'"):
        s.get("nope")
    with pytest.raises(InputError, match="invalid backup id"):
        s.get("../x")
