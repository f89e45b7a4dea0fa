"""`plan --rehearse` on the example workspace (1.0.0 applied, planned to 1.1.0), each run a
fresh process, interleaved with plain `plan` and `plan --analyze` so that a busy machine slows
all three alike; medians, quartiles, and the rehearsal's own parts from its JSON.

    .venv/bin/python bench/rehearsal.py              # 10 runs of each, interleaved
    .venv/bin/python bench/rehearsal.py --runs 30 --planted

`--planted` adds the destructive changes of tests/test_rehearsal_example.py (a DROP COLUMN, a
Redis migration deleting outside its scope, a Cedar change giving viewers apply) so that the
rehearsal also runs a SQL, a policy and a second Redis step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
RELEASECTL = str(VENV_BIN / "releasectl")
VARIANTS = {
    "plan": ["plan"],
    "plan --analyze": ["plan", "--analyze"],
    "plan --rehearse": ["plan", "--rehearse", "--format", "json"],
}


def workspace(root: Path, planted: bool) -> Path:
    for part in ("releasectl.yaml", "releases", "migrations", "authz"):
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, root / part)
        else:
            shutil.copy2(src, root / part)
    run(root, "apply", "--release", "1.0.0", "--yes")
    if planted:
        sys.path.insert(0, str(REPO))
        from tests.test_rehearsal_example import plant_destructive_changes

        plant_destructive_changes(root)
    return root


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RELEASECTL, *args], cwd=root, capture_output=True, text=True, check=False
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--planted", action="store_true")
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    parts: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="releasectl-bench-rehearsal-") as tmp:
        root = workspace(Path(tmp), args.planted)
        run(root, "plan")  # warm the scan cache, as in CI after checkout + first command
        for _ in range(args.runs):
            for name, cmd in VARIANTS.items():
                start = time.perf_counter()
                result = run(root, *cmd)
                times[name].append(time.perf_counter() - start)
                if result.returncode not in (0, 1):
                    print(result.stdout, result.stderr, file=sys.stderr)
                    return 1
                if name == "plan --rehearse":
                    doc = json.loads(result.stdout)["rehearsal"]
                    entry = {"rehearsal": doc["seconds"]}
                    for copy in doc["copies"]:
                        entry[f"copy {copy['component']}"] = copy["seconds"]
                    parts.append(entry)
    load = os.getloadavg()
    print(f"load average at the end (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"{args.runs} runs each, interleaved, example workspace"
        + (" with the planted changes" if args.planted else "")
    )
    print()
    print("| command | median s | q1 s | q3 s | min s |")
    print("|---|---:|---:|---:|---:|")
    for name, values in times.items():
        q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
        print(
            f"| `releasectl {name}` | {statistics.median(values):.3f} | {q[0]:.3f} | "
            f"{q[2]:.3f} | {min(values):.3f} |"
        )
    print()
    print("| part of the rehearsal (its own clock) | median s |")
    print("|---|---:|")
    for key in parts[0]:
        print(f"| {key} | {statistics.median(p[key] for p in parts):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
