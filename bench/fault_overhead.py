"""What the fault-safety work (issue 10) adds to an apply of the example: the history anchor
moved with every history entry (one more state read and write each), the reachability check of
every target before the first step, the recorded process groups. `releasectl apply --yes` on a
fresh copy of the example workspace, with this tree and with a baseline tree (for instance a
worktree of the commit before), run interleaved round by round so that load from elsewhere
hits both alike.

    git worktree add --detach /tmp/rc-base <commit-before>
    .venv/bin/python bench/fault_overhead.py --baseline /tmp/rc-base [--rounds 20]

Prints medians of wall time and of the child's CPU time (user + system), and the median of the
per-round differences.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PARTS = ("releasectl.yaml", "releases", "migrations", "authz")


def one_apply(tree: Path, scratch: Path) -> tuple[float, float]:
    ws = scratch / f"ws-{time.monotonic_ns()}"
    ws.mkdir()
    for part in PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, ws / part)
        else:
            shutil.copy2(src, ws / part)
    env = {**os.environ, "PYTHONPATH": str(tree), "RELEASECTL_ACTOR": "bench"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "releasectl", "apply", "--yes"],
        cwd=ws,
        env=env,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    shutil.rmtree(ws)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="tree to compare against")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    trees = {"this tree": REPO, "baseline": args.baseline.resolve()}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="fault-overhead-") as tmp:
        scratch = Path(tmp)
        for tree in trees.values():  # warm up: bytecode, page cache
            one_apply(tree, scratch)
        for _ in range(args.rounds):
            for name, tree in trees.items():
                results[name].append(one_apply(tree, scratch))
    print(f"load average {os.getloadavg()[0]:.2f}, {args.rounds} rounds\n")
    print("| tree | wall (median) | CPU user+sys (median) |")
    print("|---|---|---|")
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"| {name} | {wall * 1000:.0f} ms | {cpu * 1000:.0f} ms |")
    pairs = list(zip(results["this tree"], results["baseline"], strict=True))
    dwall = statistics.median(a[0] - b[0] for a, b in pairs)
    dcpu = statistics.median(a[1] - b[1] for a, b in pairs)
    print(f"\nmedian per-round difference: wall {dwall * 1000:+.0f} ms, CPU {dcpu * 1000:+.0f} ms")


if __name__ == "__main__":
    main()
