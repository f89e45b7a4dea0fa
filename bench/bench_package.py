"""Time `release package` and `release verify` on a generated workspace.

    .venv/bin/python bench/bench_package.py [--migrations 1000] [--big-mb 64]

Generates a workspace with one redis component holding N migrations (up.yaml, down.yaml,
migration.yaml of about 2 KiB each) plus, in the last migration, one file of --big-mb MiB of
incompressible bytes. It scans the catalogue once (cold: checksums and the secret scan of every
file, which is not packaging's own work), then, in a child process with the catalogue cache
warm, builds the package twice (checking the bytes are identical) and verifies it, printing
wall times and the child's peak RSS (packaging and verification stream files).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from releasectl.release.package import build_package, verify_package
from releasectl.workspace import Workspace


def generate(root: Path, migrations: int, big_mb: int) -> None:
    (root / "releases").mkdir(parents=True)
    (root / "releasectl.yaml").write_text(
        "apiVersion: releasectl/v1\nkind: Workspace\nname: bench\ncomponents:\n"
        "  cache: {type: redis}\n"
    )
    (root / "releases/1.0.0.yaml").write_text(
        "apiVersion: releasectl/v1\nkind: Release\nversion: 1.0.0\n"
        f"components:\n  cache: {{version: {migrations}}}\n"
    )
    filler = "# " + "x" * 2000 + "\n"
    for n in range(1, migrations + 1):
        mig = root / f"migrations/cache/{n:05d}_step"
        mig.mkdir(parents=True)
        (mig / "up.yaml").write_text(f'{filler}ops:\n  - set: {{key: "k{n}", value: "v"}}\n')
        (mig / "down.yaml").write_text(f'{filler}ops:\n  - del: {{keys: ["k{n}"]}}\n')
        (mig / "migration.yaml").write_text(f"{filler}description: step {n}\n")
    if big_mb:
        big = root / f"migrations/cache/{migrations:05d}_step/blob.bin"
        with big.open("wb") as fh:
            for _ in range(big_mb):
                fh.write(os.urandom(1024 * 1024))


def child(root: Path, out: Path) -> None:
    t0 = time.perf_counter()
    first = build_package(Workspace.load(root), "1.0.0", out / "a")
    t1 = time.perf_counter()
    second = build_package(Workspace.load(root), "1.0.0", out / "b")
    t2 = time.perf_counter()
    report = verify_package(first.path)
    t3 = time.perf_counter()
    same = first.sha256 == second.sha256
    size = first.path.stat().st_size
    print(f"files in package:   {len(first.sums) + 1}")
    print(f"tarball size:       {size / 1024 / 1024:.1f} MiB")
    print(f"build:              {t1 - t0:.2f} s")
    print(f"build again:        {t2 - t1:.2f} s   identical bytes: {same}")
    print(f"verify:             {t3 - t2:.2f} s   ok: {report.ok}")
    # Linux keeps the parent's high-water mark across fork+exec; the parent stays small.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS:           {peak / 1024:.0f} MiB (build, build again, verify)")


def prepare(root: Path, migrations: int, big_mb: int) -> None:
    generate(root, migrations, big_mb)
    t0 = time.perf_counter()
    _ = Workspace.load(root).catalogue
    print(f"catalogue scan:     {time.perf_counter() - t0:.2f} s (cold, not packaging)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--migrations", type=int, default=1000)
    parser.add_argument("--big-mb", type=int, default=64)
    parser.add_argument("--child", nargs=2, metavar=("ROOT", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--prepare", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]))
        return
    if args.prepare:
        prepare(Path(args.prepare), args.migrations, args.big_mb)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        # Generation and the cold scan run in their own process so that their memory does
        # not count in the packaging child's peak.
        sizes = ["--migrations", str(args.migrations), "--big-mb", str(args.big_mb)]
        subprocess.run([sys.executable, __file__, *sizes, "--prepare", str(root)], check=True)
        subprocess.run([sys.executable, __file__, "--child", str(root), tmp], check=True)


if __name__ == "__main__":
    main()
