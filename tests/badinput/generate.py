"""Writes the corpus files that are too large or too binary to write by hand: YAML bombs,
deep nesting, huge numbers, invalid encodings, JSON bombs and hostile packages.

The files are committed; run this (from the repository root, with the project's virtualenv)
only to change them: `.venv/bin/python tests/badinput/generate.py`. It is deterministic (gzip
mtime 0, no randomness), so running it again rewrites the same bytes.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TOP = "rust-security-platform-1.1.0"
SUBSTITUTE = f"{TOP}/migrations/redis/0001_initial_settings/up.yaml"


def write(rel: str, data: bytes | str) -> None:
    path = HERE / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def laughs(levels: int = 9, width: int = 10) -> str:
    lines = ["lol0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"lol{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def workspace_text() -> str:
    return (REPO / "releasectl.yaml").read_text()


def yaml_files() -> None:
    ws = workspace_text()
    write("workspace/alias-bomb.yaml", ws + "x-bomb:\n" + _indent(laughs()))
    anchor = "".join(f"    f{i}: value-{i}\n" for i in range(50))
    many = "".join("    - *base\n" for _ in range(5000))
    write(
        "workspace/alias-heavy-80kb.yaml",
        ws + f"x-shared:\n  base: &base\n{anchor}  copies:\n{many}",
    )
    few = "".join("    - *base\n" for _ in range(900))
    write(
        "workspace/aliases-within-bounds.yaml",
        ws + f"x-shared:\n  base: &base\n{anchor}  copies:\n{few}",
    )
    write("workspace/merge-key-bomb.yaml", ws + "x-merge:\n" + _indent(_merge_bomb()))
    write("workspace/deep-flow-nesting.yaml", "components: " + "[" * 20000 + "]" * 20000 + "\n")
    write(
        "workspace/deep-block-nesting.yaml",
        "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n",
    )
    write("workspace/deep-nesting-small.yaml", "a: " + "[" * 200 + "]" * 200 + "\n")
    write(
        "workspace/huge-integer.yaml",
        ws.replace("name: rust-security-platform", "name: " + "9" * 100_000),
    )
    write("workspace/huge-integer-key.yaml", ws + "9" * 5000 + ": x\n")
    write("workspace/huge-float.yaml", ws.replace("name: rust-security-platform", "name: 1e99999"))
    write(
        "workspace/invalid-utf8.yaml",
        ws.encode().replace(b"Authentication", b"Authentic\xff\xfetion"),
    )
    write("workspace/utf16.yaml", ws.encode("utf-16"))
    write("workspace/nul-bytes.yaml", ws.encode().replace(b"name: rust", b"name: r\x00ust"))
    write("workspace/binary-garbage.yaml", bytes((i * 151 + 7) % 256 for i in range(4096)))
    write(
        "workspace/many-nodes.yaml", ws + "x-big:\n" + "".join(f"  - {i}\n" for i in range(51_000))
    )
    write("workspace/long-line.yaml", ws + "x-long: " + "a" * 1_000_000 + "\n")
    write("workspace/huge-key.yaml", ws + "k" * 200_000 + ": 1\n")
    write("workspace/many-documents.yaml", ws + "---\n" * 5000)
    write(
        "workspace/many-tags-large.yaml",
        ws + "x-tags:\n" + "".join(f"  - !!str {i}\n" for i in range(30_000)),
    )
    write(
        "manifest/alias-bomb.yaml",
        (REPO / "releases/1.1.0.yaml").read_text() + "x:\n" + _indent(laughs()),
    )
    write(
        "manifest/huge-version.yaml",
        _manifest().replace("redis: {version: 2}", "redis: {version: " + "7" * 50_000 + "}"),
    )
    write(
        "manifest/invalid-utf8.yaml", _manifest().encode().replace(b"Enhanced", b"Enh\xc3\x28nced")
    )
    write("meta/alias-bomb.yaml", "description: x\nx-bomb:\n" + _indent(laughs()))
    write(
        "redis-up/many-ops.yaml",
        "ops:\n" + "".join(f"  - set: {{key: 'k:{i}', value: 'v'}}\n" for i in range(8_000)),
    )
    write(
        "configmap/many-documents.yaml",
        "".join(
            f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\ndata: {{"
            + ", ".join(f"k{j}: v" for j in range(20))
            + "}\n"
            for i in range(1200)
        ),
    )
    write("sql/invalid-utf8.sql", b"CREATE TABLE t (name TEXT);\n-- \xff\xfe\xfd\n")
    write("sql/nul-bytes.sql", b"CREATE TABLE t (id INTEGER);\x00\x00\x00DROP TABLE users;\n")
    write("entities/alias-bomb.yaml", "roles:\n  admin: [alice]\nx:\n" + _indent(laughs()))
    write("plan/deep-json.json", "[" * 100_000 + "]" * 100_000)
    write(
        "plan/huge-numbers.json",
        '{"format_version": 1, "env": "local", "digest": "x", '
        '"release": {"from": null, "to": "1.1.0"}, "state": {"lineage": null, "serial": '
        + "9" * 100_000
        + '}, "steps": [], "rollback": []}',
    )
    write("plan/binary.json", bytes((i * 97 + 3) % 256 for i in range(2048)))
    write("state/deep-json.json", "[" * 100_000 + "]" * 100_000)


def _indent(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())


def _manifest() -> str:
    return (REPO / "releases/1.1.0.yaml").read_text()


def _merge_bomb() -> str:
    lines = ["m0: &m0 {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}"]
    for level in range(1, 8):
        refs = ", ".join(f"*m{level - 1}" for _ in range(10))
        lines.append(f"m{level}: &m{level}\n  <<: [{refs}]\n  own{level}: 1")
    return "\n".join(lines)


# --- packages --------------------------------------------------------------------------------


def example_package() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        ws.mkdir()
        for part in ("releasectl.yaml", "releases", "migrations", "authz"):
            src = REPO / part
            subprocess.run(["cp", "-r", str(src), str(ws / part)], check=True)
        subprocess.run(
            [sys.executable, "-m", "releasectl", "release", "package", "1.1.0"],
            cwd=ws,
            check=True,
            capture_output=True,
            env={"SOURCE_DATE_EPOCH": "0", "PATH": "/usr/bin:/bin", "HOME": tmp},
        )
        return (ws / "dist" / f"{TOP}.tar.gz").read_bytes()


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def entry(
    name: str, data: bytes = b"x\n", **fields: object
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in fields.items():
        setattr(info, key, value)
    if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE):
        info.size = 0
        return info, None
    return info, data


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def packages() -> None:
    good = example_package()
    evil = tar_of(entry(SUBSTITUTE, b"ops:\n  - del: {pattern: '*'}\n"))
    write("package/second-gzip-member.tar.gz", good + gz(evil))
    write("package/trailing-bytes.tar.gz", good + bytes(range(256)) * 2)
    write("package/second-archive-after-end.tar.gz", gz(gzip.decompress(good) + evil))
    write("package/pax-header-claims-256mb.tar.gz", _claim(tarfile.XHDTYPE, "././@PaxHeader"))
    write(
        "package/gnu-long-name-claims-256mb.tar.gz",
        _claim(tarfile.GNUTYPE_LONGNAME, "././@LongLink"),
    )
    write(
        "package/symlink-entry.tar.gz",
        gz(tar_of(entry(f"{TOP}/link", type=tarfile.SYMTYPE, linkname="/etc/passwd"))),
    )
    write(
        "package/hardlink-entry.tar.gz",
        gz(tar_of(entry(f"{TOP}/link", type=tarfile.LNKTYPE, linkname="/etc/passwd"))),
    )
    write(
        "package/device-entry.tar.gz",
        gz(tar_of(entry(f"{TOP}/dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3))),
    )
    write("package/fifo-entry.tar.gz", gz(tar_of(entry(f"{TOP}/fifo", type=tarfile.FIFOTYPE))))
    write("package/dot-dot-entry.tar.gz", gz(tar_of(entry(f"{TOP}/../../etc/cron.d/x"))))
    write("package/absolute-entry.tar.gz", gz(tar_of(entry("/etc/cron.d/x"))))
    write(
        "package/duplicate-entry.tar.gz",
        gz(tar_of(entry(f"{TOP}/a"), entry(f"{TOP}/a", b"other\n"))),
    )
    write("package/truncated.tar.gz", good[: len(good) // 2])
    write("package/not-gzip.tar.gz", bytes((i * 31 + 11) % 256 for i in range(4096)))
    write("package/empty.tar.gz", b"")
    write("package/no-sums.tar.gz", gz(tar_of(entry(f"{TOP}/releasectl.yaml"))))


def _claim(kind: bytes, name: str) -> bytes:
    """A header that claims 256 MiB and has them (zeros): 260 KB once compressed."""
    header = tarfile.TarInfo(name)
    header.type = kind
    header.size = 256 << 20
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunks = [packer.compress(header.tobuf(format=tarfile.GNU_FORMAT))]
    block = bytes(1 << 20)
    chunks += [packer.compress(block) for _ in range(256)]
    return b"".join(chunks) + packer.flush()


if __name__ == "__main__":
    yaml_files()
    packages()
