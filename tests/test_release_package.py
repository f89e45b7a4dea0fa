"""`releasectl release package` and `release verify`: the same commit gives the same bytes (twice,
and on two clones), the layout and metadata are normalised, and verify refuses every kind of
tampered or unsafe archive, built by hand, without extracting anything."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from releasectl.release.package import build_package, verify_package
from releasectl.workspace import Workspace
from tests.conftest import git, run_cli

TOP = "rust-security-platform-1.1.0"


# The `example` fixture is the example as shipped, schemas/ included.


def members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as tar:
        return tar.getmembers()


def entry_bytes(path: Path, name: str) -> bytes:
    with tarfile.open(path, "r:gz") as tar:
        fh = tar.extractfile(name)
        assert fh is not None
        return fh.read()


def test_package_layout_and_sums(example: Path) -> None:
    result = run_cli("release", "package", "1.1.0", cwd=example)
    assert result.code == 0, result
    tarball = example / "dist" / f"{TOP}.tar.gz"
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    assert result.out.strip().endswith(f"sha256 {digest}")
    names = [m.name for m in members(tarball)]
    assert names == sorted(names)
    rel = [n.removeprefix(f"{TOP}/") for n in names]
    assert rel[0] == "SHA256SUMS"
    assert "releasectl.yaml" in rel and "releases/1.1.0.yaml" in rel
    assert "releases/1.0.0.yaml" not in rel
    assert "migrations/redis/0002_monitoring_performance/up.yaml" in rel
    assert any(r.startswith("schemas/") and r.endswith(".schema.json") for r in rel)
    assert all(n.startswith(f"{TOP}/") for n in names)
    sums = entry_bytes(tarball, f"{TOP}/SHA256SUMS").decode().splitlines()
    listed = [line.split("  ", 1)[1] for line in sums]
    assert listed == sorted(listed) == sorted(r for r in rel if r != "SHA256SUMS")
    for line in sums:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((example / name).read_bytes()).hexdigest() == digest


def test_only_the_migrations_up_to_the_pin(example: Path) -> None:
    result = build_package(Workspace.load(example), "1.0.0")
    migrations = {
        n.split("/")[1] + "/" + n.split("/")[2] for n in result.sums if n.startswith("migrations/")
    }
    assert "redis/0001_initial_settings" in migrations
    assert "redis/0002_monitoring_performance" not in migrations
    assert "config/0002_security_monitoring" not in migrations


def test_metadata_is_normalised(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = example / "migrations/redis/0001_initial_settings/helper.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o775)
    (example / "schemas/workspace.schema.json").chmod(0o600)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    result = build_package(Workspace.load(example), "1.1.0")
    assert result.mtime == 1700000000
    raw = result.path.read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x00"  # gzip, deflate, no flags: no file name stored
    assert raw[4:8] == b"\x00\x00\x00\x00"  # gzip mtime 0
    for member in members(result.path):
        assert member.isreg()
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == 1700000000
        expected = 0o755 if member.name.endswith("helper.sh") else 0o644
        assert member.mode == expected, member.name
    with gzip.open(result.path) as gz:
        assert gz.read(512)[257:263] == b"ustar\x00"  # POSIX (pax) headers


def test_bytes_are_packaged_as_they_are(example: Path) -> None:
    crlf = b"ops:\r\n  - set: {key: a, value: b}\r\n"
    path = example / "migrations/redis/0002_monitoring_performance/up.yaml"
    path.write_bytes(crlf)
    result = build_package(Workspace.load(example), "1.1.0")
    assert (
        entry_bytes(result.path, f"{TOP}/migrations/redis/0002_monitoring_performance/up.yaml")
        == crlf
    )


def test_reproducible_twice_and_across_clones(
    example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)  # the commit time decides
    commit_time = int(git(example, "log", "-1", "--format=%ct").strip())
    first = build_package(Workspace.load(example), "1.1.0", tmp_path / "a")
    second = build_package(Workspace.load(example), "1.1.0", tmp_path / "b")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.mtime == commit_time
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(example), str(clone))
    os.utime(clone / "releasectl.yaml", (1, 1))  # work-tree times do not matter
    third = build_package(Workspace.load(clone), "1.1.0", tmp_path / "c")
    assert third.path.read_bytes() == first.path.read_bytes()
    assert third.sha256 == first.sha256


def test_outside_git_the_time_is_zero(
    example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    plain = tmp_path / "plain"
    for part in ("releasectl.yaml", "releases", "migrations", "schemas"):
        src = example / part
        if src.is_dir():
            shutil.copytree(src, plain / part)
        else:
            plain.mkdir(exist_ok=True)
            (plain / part).write_bytes(src.read_bytes())
    result = build_package(Workspace.load(plain), "1.1.0")
    assert result.mtime == 0
    assert {m.mtime for m in members(result.path)} == {0}


def test_bad_source_date_epoch(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    result = run_cli("release", "package", "1.1.0", cwd=example)
    assert result.code == 1
    assert "SOURCE_DATE_EPOCH" in result.err


def test_package_refuses_an_invalid_release(example: Path) -> None:
    path = example / "releases/1.1.0.yaml"
    path.write_text(path.read_text().replace("redis: {version: 2}", "redis: {version: 7}"))
    result = run_cli("release", "package", "1.1.0", "--out", "out", cwd=example)
    assert result.code == 1
    assert (
        "releases/1.1.0.yaml:9: components.redis.version: version 7 has no migration" in result.err
    )
    assert not (example / "out" / f"{TOP}.tar.gz").exists()


def test_package_refuses_symlinks(example: Path) -> None:
    link = example / "migrations/redis/0001_initial_settings/link.yaml"
    link.symlink_to("up.yaml")
    result = run_cli("release", "package", "1.1.0", cwd=example)
    assert result.code == 1
    assert "link.yaml: is a symbolic link" in result.err


# --- verify ----------------------------------------------------------------------------------


def test_verify_accepts_a_built_package(example: Path) -> None:
    built = build_package(Workspace.load(example), "1.1.0")
    result = run_cli("release", "verify", built.path, cwd=example)
    assert result.code == 0, result
    assert f"{len(built.sums) + 1} files match SHA256SUMS" in result.out
    report = verify_package(built.path)
    assert report.ok and report.sha256 == built.sha256


def sums_of(files: dict[str, bytes]) -> bytes:
    return "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items())
    ).encode()


def make_tar(path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                name, data = entry
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


GOOD = {"a.txt": b"alpha\n", "dir/b.txt": b"beta\n"}


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("../evil.txt", b"x"), "../evil.txt: '..' in the path"),
        (("pkg/../../evil.txt", b"x"), "'..' in the path"),
        (("/etc/evil", b"x"), "/etc/evil: absolute path"),
        (special("pkg/link", tarfile.SYMTYPE, "/etc/passwd"), "pkg/link: symbolic link"),
        (special("pkg/hard", tarfile.LNKTYPE, "pkg/a.txt"), "pkg/hard: hard link"),
        (special("pkg/dev", tarfile.CHRTYPE), "pkg/dev: device file"),
        (special("pkg/blk", tarfile.BLKTYPE), "pkg/blk: device file"),
        (special("pkg/fifo", tarfile.FIFOTYPE), "pkg/fifo: fifo"),
        (("pkg/a.txt", b"alpha\n"), "pkg/a.txt: duplicate entry"),
        (("pkg/extra.txt", b"x"), "pkg/extra.txt: not listed in SHA256SUMS"),
    ],
)
def test_verify_refuses_unsafe_entries(
    tmp_path: Path, extra: tarfile.TarInfo | tuple[str, bytes], message: str
) -> None:
    entries: list[tarfile.TarInfo | tuple[str, bytes]] = [("pkg/SHA256SUMS", sums_of(GOOD))]
    entries.extend((f"pkg/{n}", d) for n, d in GOOD.items())
    entries.append(extra)
    workdir = tmp_path / "work"
    workdir.mkdir()
    tarball = make_tar(workdir / "bad.tar.gz", entries)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = run_cli("release", "verify", tarball, cwd=workdir)
    assert result.code == 1, result
    assert message in result.err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing extracted


def test_verify_good_hand_built_archive(tmp_path: Path) -> None:
    entries: list[tarfile.TarInfo | tuple[str, bytes]] = [("pkg/SHA256SUMS", sums_of(GOOD))]
    entries.extend((f"pkg/{n}", d) for n, d in GOOD.items())
    tarball = make_tar(tmp_path / "good.tar.gz", entries)
    assert verify_package(tarball).problems == []


def test_verify_one_changed_byte_in_an_entry(tmp_path: Path) -> None:
    entries: list[tarfile.TarInfo | tuple[str, bytes]] = [
        ("pkg/SHA256SUMS", sums_of(GOOD)),
        ("pkg/a.txt", b"alphA\n"),
        ("pkg/dir/b.txt", GOOD["dir/b.txt"]),
    ]
    tarball = make_tar(tmp_path / "t.tar.gz", entries)
    result = run_cli("release", "verify", tarball, "--format", "json")
    assert result.code == 1
    problems = json.loads(result.out)["problems"]
    assert any(p.startswith("pkg/a.txt: checksum mismatch") for p in problems), problems


def test_verify_one_changed_byte_in_the_file(example: Path) -> None:
    built = build_package(Workspace.load(example), "1.1.0")
    data = bytearray(built.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    built.path.write_bytes(bytes(data))
    result = run_cli("release", "verify", built.path)
    assert result.code == 1
    assert str(built.path) in result.err


def test_verify_sums_problems(tmp_path: Path) -> None:
    sums = sums_of({**GOOD, "gone.txt": b"g"}) + b"not a sums line\n"
    entries: list[tarfile.TarInfo | tuple[str, bytes]] = [("pkg/SHA256SUMS", sums)]
    entries.extend((f"pkg/{n}", d) for n, d in GOOD.items())
    report = verify_package(make_tar(tmp_path / "t.tar.gz", entries))
    assert "pkg/gone.txt: listed in SHA256SUMS but not in the archive" in report.problems
    assert "pkg/SHA256SUMS:4: not a '<sha256>  <path>' line" in report.problems
    no_sums = make_tar(tmp_path / "n.tar.gz", [("pkg/a.txt", b"alpha\n")])
    assert verify_package(no_sums).problems[0].startswith("SHA256SUMS: missing")


def test_verify_missing_file(tmp_path: Path) -> None:
    result = run_cli("release", "verify", tmp_path / "nope.tar.gz")
    assert result.code == 1
    assert "no such package file" in result.err
