"""Start-up: `releasectl --help` against `python -c "import pydantic"` (and an empty Python as
the floor), each run many times as a fresh process; medians, quartiles and the ratio.

    .venv/bin/python bench/help_startup.py                # 200 runs of each, interleaved
    .venv/bin/python bench/help_startup.py --runs 500

Uses hyperfine instead when it is installed and --hyperfine is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
PYTHON = str(VENV_BIN / "python")
COMMANDS = {
    "python -c pass": [PYTHON, "-c", "pass"],
    'python -c "import pydantic"': [PYTHON, "-c", "import pydantic"],
    "releasectl --help": [str(VENV_BIN / "releasectl"), "--help"],
}


def once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--hyperfine", action="store_true", help="use hyperfine if installed")
    args = parser.parse_args(argv)
    if args.hyperfine and shutil.which("hyperfine"):
        cmds = [" ".join(f"'{c}'" if " " in c else c for c in cmd) for cmd in COMMANDS.values()]
        return subprocess.call(
            ["hyperfine", "-N", "--warmup", "10", "--runs", str(args.runs), *cmds]
        )
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for cmd in COMMANDS.values():  # warm the page cache and the .pyc files
        for _ in range(5):
            once(cmd)
    for _ in range(args.runs):  # interleaved, so load from elsewhere hits all alike
        for name, cmd in COMMANDS.items():
            times[name].append(once(cmd))
    load = os.getloadavg()
    print(f"{args.runs} runs each, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print("| command | median | 25% | 75% |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        low, mid, high = quartiles(values)
        print(f"| `{name}` | {mid * 1000:.1f} ms | {low * 1000:.1f} ms | {high * 1000:.1f} ms |")
    ratio = statistics.median(times["releasectl --help"]) / statistics.median(
        times['python -c "import pydantic"']
    )
    print(f"\nreleasectl --help / import pydantic: {ratio:.2f}x (median / median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
