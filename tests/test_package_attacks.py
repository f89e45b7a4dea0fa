"""`release verify` sees what `tar` would extract: a second gzip member, bytes after the gzip
stream, a second archive after the end-of-archive marker and oversized headers are refused,
in bounded memory (real packages of the example, made by `release package`)."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import pytest

from tests.conftest import run_cli

TOP = "rust-security-platform-1.1.0"
SUBSTITUTE = f"{TOP}/migrations/redis/0001_initial_settings/up.yaml"


@pytest.fixture
def package(example: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    made = run_cli("release", "package", "1.1.0", cwd=example)
    assert made.code == 0, made
    path = example / "dist" / f"{TOP}.tar.gz"
    assert run_cli("release", "verify", path, cwd=example).code == 0
    return path


def evil_tar() -> bytes:
    """An archive that replaces a migration (what `tar --ignore-zeros` extracts last wins)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = b"ops:\n  - del: {pattern: '*'}\n"
        info = tarfile.TarInfo(SUBSTITUTE)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def verify(example: Path, path: Path) -> str:
    result = run_cli("release", "verify", path, cwd=example)
    assert result.code == 1, result
    return result.err


def test_a_second_gzip_member_is_refused(example: Path, package: Path) -> None:
    attacked = package.with_name("two-members.tar.gz")
    attacked.write_bytes(package.read_bytes() + gzip.compress(evil_tar()))
    listing = subprocess.run(
        ["tar", "-tzf", str(attacked), "--ignore-zeros"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert listing.stdout.splitlines().count(SUBSTITUTE) == 2  # what the attack is about
    assert "data after the gzip stream (a second gzip member" in verify(example, attacked)


def test_trailing_bytes_are_refused(example: Path, package: Path) -> None:
    attacked = package.with_name("trailing.tar.gz")
    attacked.write_bytes(package.read_bytes() + os.urandom(512))
    assert "data after the gzip stream (trailing bytes" in verify(example, attacked)


def test_a_second_archive_after_the_end_marker_is_refused(example: Path, package: Path) -> None:
    attacked = package.with_name("inner.tar.gz")
    attacked.write_bytes(gzip.compress(gzip.decompress(package.read_bytes()) + evil_tar()))
    assert "data after the tar end-of-archive marker" in verify(example, attacked)


def pax_claim(claimed: int, present: int) -> bytes:
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = claimed
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [packer.compress(header.tobuf(format=tarfile.USTAR_FORMAT))]
    block = bytes(1 << 20)
    for _ in range(present >> 20):
        out.append(packer.compress(block))
    return b"".join(out) + packer.flush()


def test_a_huge_pax_header_is_refused_in_bounded_memory(example: Path, tmp_path: Path) -> None:
    attacked = tmp_path / "pax.tar.gz"
    attacked.write_bytes(pax_claim(256 << 20, 256 << 20))  # 256 MiB of header, 250 KB on disk
    assert attacked.stat().st_size < 1 << 20
    code = (
        "import resource, sys\n"
        "from releasectl.cli.app import main\n"
        "rc = main(['release', 'verify', sys.argv[1]])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(attacked)],
        cwd=example,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc
    assert "a tar header claims more than 1,048,576 bytes" in proc.stderr
    peak_kib = int(proc.stdout.strip().splitlines()[-1])
    assert peak_kib < 200 * 1024, peak_kib


def test_an_entry_larger_than_any_workspace_file_is_refused(example: Path, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(f"{TOP}/big.bin")
        info.size = 17 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    attacked = tmp_path / "big.tar.gz"
    attacked.write_bytes(gzip.compress(buf.getvalue()))
    assert "larger than any workspace file may be" in verify(example, attacked)
