"""Kubernetes target and state backend timings against the loopback API emulator.

    .venv/bin/python bench/k8s_bench.py [--objects 300]

Generates a component with N ConfigMaps (version 1) and the same N with changed data plus
N/10 new ones (version 2), then times: render v1, re-render v1 (no change), render v2;
apply-mode check+backup+run+verify of v1 and v2 against the emulator (HTTP on loopback, real
client), a restore of the v2 backup; and state-backend lock+write+history cycles. The emulator
is pure Python, so cluster timings are an upper bound of releasectl's own overhead plus the
emulator's, not a real API server's latency.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from k8semu import KubeEmulator  # noqa: E402
from k8semu.workspace import context, step, write_migrations  # noqa: E402

from releasectl.models.state import State  # noqa: E402
from releasectl.models.workspace import KubernetesTarget as Settings  # noqa: E402
from releasectl.models.workspace import StateConfig  # noqa: E402
from releasectl.state.base import LockInfo  # noqa: E402
from releasectl.state.kubernetes import KubernetesBackend  # noqa: E402
from releasectl.targets.kubernetes.target import KubernetesTarget  # noqa: E402
from releasectl.util.deadline import Deadline  # noqa: E402
from releasectl.workspace import Workspace  # noqa: E402


def objects(n: int, version: int) -> dict[str, str]:
    docs = []
    for i in range(n + (n // 10 if version == 2 else 0)):
        data = "\n".join(f'  KEY_{k}: "value-{version}-{i}-{k}"' for k in range(10))
        docs.append(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i:04d}}}\ndata:\n{data}\n"
        )
    return {"objects.yaml": "---\n".join(docs)}


def timed(label: str, func: object, results: list[tuple[str, float]]) -> None:
    start = time.perf_counter()
    func()  # type: ignore[operator]
    results.append((label, time.perf_counter() - start))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=300)
    args = parser.parse_args()
    n = args.objects
    results: list[tuple[str, float]] = []
    deadline = Deadline.after(600)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        migrations = write_migrations(root, [objects(n, 1), objects(n, 2)])
        render = KubernetesTarget(context(root, Settings(mode="render", path="out"), migrations))
        timed(f"render v1 ({n} objects)", lambda: render.run(step(1, 0), None, deadline), results)
        timed("re-render v1 (unchanged)", lambda: render.run(step(1, 0), None, deadline), results)
        timed(f"render v2 ({n + n // 10})", lambda: render.run(step(2, 1), None, deadline), results)

        with KubeEmulator.running(root) as kube:
            settings = Settings(
                mode="apply",
                namespace="bench",
                kubeconfig=str(kube.kubeconfig),
                context=kube.context,
            )
            target = KubernetesTarget(context(root, settings, migrations))

            def full(to: int, from_: int) -> None:
                s = step(to, from_)
                target.check(s, None)
                target.backup(s, None, io.BytesIO())
                target.run(s, None, deadline)
                target.verify(s, None, deadline)

            timed(f"apply v1: check+backup+run+verify ({n})", lambda: full(1, 0), results)
            backup = io.BytesIO()
            target.backup(step(2, 1), None, backup)
            timed(f"apply v2: check+backup+run+verify ({n + n // 10})", lambda: full(2, 1), results)
            saved = backup.getvalue()
            timed("restore the v1 backup", lambda: target.restore(io.BytesIO(saved)), results)
            requests = len(kube.cluster.requests)

            (root / "ws").mkdir()
            (root / "ws" / "releasectl.yaml").write_text(
                "apiVersion: releasectl/v1\nkind: Workspace\nname: bench\ncomponents: {}\n"
            )
            config = StateConfig(
                backend="kubernetes",
                namespace="bench",
                kubeconfig=str(kube.kubeconfig),
                context=kube.context,
            )
            backend = KubernetesBackend(Workspace.load(root / "ws"), "bench", config)
            lineage = str(uuid.uuid4())

            def cycles(count: int = 50) -> None:
                for serial in range(1, count + 1):
                    info = LockInfo.new("bench", "bench", "apply", "now")
                    with backend.acquire(info, ttl=30, timeout=0) as lock:
                        backend.write(State(env="bench", lineage=lineage, serial=serial), lock)
                        backend.append_history(f'{{"seq": {serial}, "action": "up"}}')

            timed("50 x (lock, state write, history append, release)", cycles, results)
    width = max(len(label) for label, _ in results)
    for label, seconds in results:
        print(f"{label:<{width}}  {seconds * 1000:8.1f} ms")
    print(f"API requests for the apply-mode part: {requests}")


if __name__ == "__main__":
    main()
