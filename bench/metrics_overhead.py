"""What writing metrics adds to an apply of the example: `releasectl apply --yes` on a fresh
copy of the example workspace, without metrics, with `--metrics-file`, and with
`--metrics-file` plus `--pushgateway` (a private Pushgateway on a free loopback port), run
interleaved round by round so that load from elsewhere hits all three alike.

    .venv/bin/python bench/metrics_overhead.py               # 20 rounds
    .venv/bin/python bench/metrics_overhead.py --rounds 40

Prints medians of wall time and of the child's CPU time (user + system), and the median of
the per-round differences against the run without metrics. Then the parts, measured inside
a process that has just applied the example without metrics (so what the apply already
imported is loaded): importing prometheus_client, the snapshot from state and history,
rendering and writing the textfile, and one push.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RELEASECTL = str(Path(sys.executable).parent / "releasectl")
PARTS = ("releasectl.yaml", "releases", "migrations", "authz")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def pushgateway(workdir: Path) -> Iterator[str]:
    exe = shutil.which("prometheus-pushgateway")
    if exe is None:
        sys.exit("prometheus-pushgateway is not installed (apt-get install prometheus-pushgateway)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, f"--web.listen-address=127.0.0.1:{port}"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/-/ready", timeout=1):
                break
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def fresh_example(base: Path, name: str) -> Path:
    ws = base / name
    ws.mkdir()
    for part in PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, ws / part)
        elif src.exists():
            shutil.copy2(src, ws / part)
    return ws


def run(ws: Path, extra: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [RELEASECTL, "apply", "--yes", *extra],
        cwd=ws,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


PROBE = """
import contextlib, io, json, sys, time
from pathlib import Path
from releasectl.cli.app import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    assert main(["apply", "--yes"]) == 0
t = {}
start = time.perf_counter()
import releasectl.observe.metrics
t["import prometheus_client"] = time.perf_counter() - start
from releasectl.cli.observe import snapshot
from releasectl.observe.publish import push, write_textfile
from releasectl.workspace import Workspace
workspace = Workspace.load(Path.cwd())
start = time.perf_counter()
snap = snapshot(workspace, "local")
t["snapshot (state + history)"] = time.perf_counter() - start
start = time.perf_counter()
write_textfile(Path("m.prom"), snap)
t["render + atomic textfile write"] = time.perf_counter() - start
start = time.perf_counter()
push(sys.argv[1], snap)
t["render + push"] = time.perf_counter() - start
print(json.dumps(t))
"""


def parts(base: Path, gateway: str, runs: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for r in range(runs):
        ws = fresh_example(base, f"probe-{r}")
        out = subprocess.run(
            [sys.executable, "-c", PROBE, gateway],
            cwd=ws,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for name, seconds in json.loads(out).items():
            found.setdefault(name, []).append(seconds)
        shutil.rmtree(ws)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rctl-metrics-") as tmp:
        base = Path(tmp)
        with pushgateway(base) as gateway:
            variants = {
                "no metrics": lambda ws: [],
                "--metrics-file": lambda ws: ["--metrics-file", str(ws / "m.prom")],
                "--metrics-file --pushgateway": lambda ws: [
                    "--metrics-file",
                    str(ws / "m.prom"),
                    "--pushgateway",
                    gateway,
                ],
            }
            wall: dict[str, list[float]] = {name: [] for name in variants}
            cpu: dict[str, list[float]] = {name: [] for name in variants}
            for warm in range(2):  # page cache, .pyc files
                for i, extra in enumerate(variants.values()):
                    ws = fresh_example(base, f"warm-{warm}-{i}")
                    run(ws, extra(ws))
            for r in range(args.rounds):
                for i, (name, extra) in enumerate(variants.items()):
                    ws = fresh_example(base, f"r{r}-{i}")
                    w, c = run(ws, extra(ws))
                    wall[name].append(w)
                    cpu[name].append(c)
                    shutil.rmtree(ws)
            pieces = parts(base, gateway, max(5, args.rounds // 2))
    load = os.getloadavg()
    print(
        f"{args.rounds} rounds, interleaved; load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}; {os.cpu_count()} cores\n"
    )
    print("| variant | wall median | CPU median | wall diff (median of rounds) | CPU diff |")
    print("|---|---:|---:|---:|---:|")
    base_wall, base_cpu = wall["no metrics"], cpu["no metrics"]
    for name in variants:
        dw = statistics.median(a - b for a, b in zip(wall[name], base_wall, strict=True))
        dc = statistics.median(a - b for a, b in zip(cpu[name], base_cpu, strict=True))
        print(
            f"| {name} | {statistics.median(wall[name]) * 1000:.0f} ms "
            f"| {statistics.median(cpu[name]) * 1000:.0f} ms | {dw * 1000:+.1f} ms "
            f"| {dc * 1000:+.1f} ms |"
        )
    print(f"\nParts, median of {len(next(iter(pieces.values())))} processes:\n")
    print("| part | median | min |")
    print("|---|---:|---:|")
    for name, values in pieces.items():
        print(
            f"| {name} | {statistics.median(values) * 1000:.1f} ms | {min(values) * 1000:.1f} ms |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
