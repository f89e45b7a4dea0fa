"""What the CI-runner guards cost (issue 9): `releasectl --help`, `validate` and `plan` of the
example, and `plan` of a generated 1,000-migration workspace, with this tree's package against
a baseline package (by default main's, exported with `git archive`), run interleaved.

    .venv/bin/python bench/security_overhead.py                 # baseline: git main
    .venv/bin/python bench/security_overhead.py --baseline-rev 3b767d5 --repeat 15

Each run is a fresh process whose own CPU time (user + system, `os.wait4`) is reported beside
its wall time; CPU time moves much less than wall time on a loaded machine. Each tree gets its
own copies of the workspaces (the scan cache is keyed to the code that wrote it). "cold" runs
set RELEASECTL_CACHE=0; "warm" runs follow one that wrote the cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from plan_scale import generate_workspace  # noqa: E402

# Runs releasectl from the package under argv[1]: that directory first on sys.path, and the
# editable install's finder (which would load this tree) out of the way.
LAUNCH = (
    "import sys; root = sys.argv.pop(1); sys.path.insert(0, root); "
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
    "from releasectl.cli.app import main; sys.exit(main(sys.argv[1:]))"
)
EXAMPLE_PARTS = ("releasectl.yaml", "releases", "migrations", "authz")


def export(rev: str, dest: Path) -> Path:
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", rev, "releasectl"], cwd=REPO, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def example(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for part in EXAMPLE_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part)
        else:
            shutil.copy2(src, dest / part)
    return dest


def once(package: Path, cwd: Path, args: list[str], cold: bool) -> tuple[float, float]:
    env = {**os.environ, "RELEASECTL_JOBS": "1"}
    if cold:
        env["RELEASECTL_CACHE"] = "0"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, str(package), *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 2):
        raise SystemExit(f"{' '.join(args)} failed in {cwd} with {package}")
    return wall, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-rev", default="main")
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--migrations", type=int, default=1000)
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sec-bench-") as tmp:
        work = Path(tmp)
        trees = {"baseline": export(opts.baseline_rev, work / "baseline"), "this tree": REPO}
        spaces: dict[str, dict[str, Path]] = {}
        for name in trees:
            slug = name.replace(" ", "-")
            big = work / f"{slug}-ws{opts.migrations}"
            generate_workspace(big, opts.migrations)
            spaces[name] = {"example": example(work / f"{slug}-example"), "big": big}
        cases = [
            ("releasectl --help", "example", ["--help"], False),
            ("validate (example, warm)", "example", ["validate"], False),
            ("plan (example, cold)", "example", ["plan"], True),
            ("plan (example, warm)", "example", ["plan"], False),
            (f"plan ({opts.migrations:,} migrations, cold)", "big", ["plan"], True),
            (f"plan ({opts.migrations:,} migrations, warm)", "big", ["plan"], False),
        ]
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _label, space, args, cold in cases:  # one warm-up run each, not counted
            for name, package in trees.items():
                once(package, spaces[name][space], args, cold)
        for _ in range(opts.repeat):
            for label, space, args, cold in cases:
                for name, package in trees.items():
                    got = once(package, spaces[name][space], args, cold)
                    results.setdefault((label, name), []).append(got)
    load = os.getloadavg()
    print(f"{opts.repeat} interleaved runs each; load average {load[0]:.1f} {load[1]:.1f}")
    print(f"{os.cpu_count()} CPUs; baseline: {opts.baseline_rev}\n")
    print("| command | baseline: wall (CPU) | this tree: wall (CPU) | CPU ratio |")
    print("|---|---|---|---|")
    for label, *_ in cases:
        base = results[(label, "baseline")]
        mine = results[(label, "this tree")]

        def shown(runs: list[tuple[float, float]]) -> str:
            wall = statistics.median(w for w, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            return f"{wall * 1000:.0f} ms ({cpu * 1000:.0f} ms)"

        ratio = statistics.median(c for _, c in mine) / statistics.median(c for _, c in base)
        print(f"| {label} | {shown(base)} | {shown(mine)} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
