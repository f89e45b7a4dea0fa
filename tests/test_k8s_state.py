"""Kubernetes state backend against the loopback API server: state round trip with serial and
resourceVersion compare-and-swap, the Lease lock (concurrent acquirers, expiry takeover,
renewal, break), and the chunked history."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest

from releasectl.errors import ExitCode, InputError, LockHeldError, StaleError
from releasectl.models.state import State
from releasectl.models.workspace import StateConfig
from releasectl.state import open_backend
from releasectl.state.base import LockInfo
from releasectl.state.kubernetes import KubernetesBackend, LeaseLock
from releasectl.workspace import Workspace
from tests.k8semu import KubeEmulator

NS = "releasectl"


def make_workspace(root: Path, kube: KubeEmulator) -> Workspace:
    root.mkdir(parents=True, exist_ok=True)
    (root / "releasectl.yaml").write_text(
        "apiVersion: releasectl/v1\nkind: Workspace\nname: k8s-state\n"
        "components:\n  api: {type: service}\n"
        "environments:\n  prod:\n    state:\n      backend: kubernetes\n"
        f"      namespace: {NS}\n      context: {kube.context}\n"
        "      kubeconfig: ${KUBECONFIG_PATH}\n"
    )
    return Workspace.load(root)


@pytest.fixture
def backend(
    kube: KubeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> KubernetesBackend:
    monkeypatch.setenv("KUBECONFIG_PATH", str(kube.kubeconfig))
    opened = open_backend(make_workspace(tmp_path / "ws", kube), "prod")
    assert isinstance(opened, KubernetesBackend)
    return opened


def another(backend: KubernetesBackend, **changes: object) -> KubernetesBackend:
    config = StateConfig(backend="kubernetes", namespace=NS, context=backend.settings.context)
    config = config.model_copy(update={"kubeconfig": backend.settings.kubeconfig, **changes})
    return KubernetesBackend(Workspace.load(backend.root), "prod", config)


def info(holder: str = "alice") -> LockInfo:
    return LockInfo.new("prod", holder, "apply", "2026-01-01T00:00:00.000Z")


def test_state_round_trip_with_serial_and_resource_version_checks(
    backend: KubernetesBackend, kube: KubeEmulator
) -> None:
    assert backend.read() is None
    assert backend.describe() == f"ConfigMap {NS}/releasectl-state-prod (context emulator)"
    first = State(env="prod", lineage=str(uuid.uuid4()), serial=1)
    backend.write(first, None)
    assert backend.read() == first
    stored = kube.get("ConfigMap", "releasectl-state-prod", NS)
    assert stored is not None and json.loads(stored["data"]["state.json"])["serial"] == 1

    second = first.model_copy(update={"serial": 2, "release": "1.0.0"})
    backend.write(second, None)
    with pytest.raises(StaleError, match="moved on"):
        backend.write(second, None)  # serial 2 again
    with pytest.raises(StaleError, match="moved on"):
        backend.write(second.model_copy(update={"serial": 3, "lineage": "other"}), None)

    # someone writes between our read and our write: the resourceVersion no longer matches
    def concurrent_writer() -> None:
        current = kube.get("ConfigMap", "releasectl-state-prod", NS)
        assert current is not None
        current["metadata"]["annotations"] = {"touched": "yes"}
        kube.put(current, NS)

    kube.cluster.before("update", concurrent_writer, kind="ConfigMap")
    with pytest.raises(StaleError, match="resourceVersion conflict") as exc:
        backend.write(second.model_copy(update={"serial": 3}), None)
    assert exc.value.exit_code == ExitCode.STALE
    assert backend.read() == second


def test_one_of_two_concurrent_acquirers_wins(backend: KubernetesBackend) -> None:
    rival = another(backend)
    for _round in range(5):
        barrier = threading.Barrier(2)
        won: list[LeaseLock] = []
        lost: list[LockHeldError] = []

        def take(
            b: KubernetesBackend,
            who: str,
            barrier: threading.Barrier = barrier,
            won: list[LeaseLock] = won,
            lost: list[LockHeldError] = lost,
        ) -> None:
            barrier.wait()
            try:
                won.append(b.acquire(info(who), ttl=30, timeout=0))
            except LockHeldError as exc:
                lost.append(exc)

        threads = [
            threading.Thread(target=take, args=(backend, "alice")),
            threading.Thread(target=take, args=(rival, "bob")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(won) == 1 and len(lost) == 1
        holder = backend.current_lock()
        assert holder is not None
        assert f"held by {holder.holder} (pid " in str(lost[0])
        assert lost[0].exit_code == ExitCode.LOCKED
        won[0].release()
        assert backend.current_lock() is None


def test_an_expired_lease_is_taken_over(backend: KubernetesBackend, kube: KubeEmulator) -> None:
    stale = info("crashed-runner")
    kube.put(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": "releasectl-state-prod-lock",
                "annotations": {"releasectl.dev/lock": json.dumps(stale.as_dict())},
            },
            "spec": {
                "holderIdentity": stale.id,
                "leaseDurationSeconds": 30,
                "renewTime": "2020-01-01T00:00:00.000000Z",
                "leaseTransitions": 4,
            },
        },
        NS,
    )
    assert backend.current_lock() is None  # expired: free to take
    lock = backend.acquire(info("bob"), ttl=30, timeout=0)
    assert lock.taken_over == stale
    assert lock.info.token == 5  # leaseTransitions: a fencing token
    lease = kube.get("Lease", "releasectl-state-prod-lock", NS)
    assert lease is not None and lease["spec"]["holderIdentity"] == lock.info.id
    lock.release()


def test_a_held_lease_is_renewed_shown_and_released(
    backend: KubernetesBackend, kube: KubeEmulator
) -> None:
    mine = info("alice")
    with backend.acquire(mine, ttl=1, timeout=0) as lock:
        first = kube.get("Lease", "releasectl-state-prod-lock", NS)
        assert first is not None and first["spec"]["leaseDurationSeconds"] == 1
        time.sleep(1.5)  # longer than the ttl: only renewal keeps it ours
        with pytest.raises(LockHeldError, match="held by alice"):
            another(backend).acquire(info("bob"), ttl=1, timeout=0)
        renewed = kube.get("Lease", "releasectl-state-prod-lock", NS)
        assert renewed is not None
        assert renewed["spec"]["renewTime"] > first["spec"]["renewTime"]
        shown = backend.current_lock()
        assert shown is not None and (shown.id, shown.holder, shown.since) == (
            mine.id,
            "alice",
            mine.since,
        )
        lock.check()
        backend.write(State(env="prod", lineage="l", serial=1), lock)
    assert backend.current_lock() is None
    lease = kube.get("Lease", "releasectl-state-prod-lock", NS)
    assert lease is not None and lease["spec"].get("holderIdentity") is None
    assert backend.acquire(info("bob"), ttl=30, timeout=0).info.token == 1


def test_break_lock_needs_the_matching_id(backend: KubernetesBackend) -> None:
    with pytest.raises(InputError, match="is not locked"):
        backend.break_lock("nope")
    lock = backend.acquire(info("alice"), ttl=30, timeout=0)
    with pytest.raises(InputError, match="does not match the lock of 'prod': held by alice"):
        backend.break_lock("wrong-id")
    broken = backend.break_lock(lock.info.id)
    assert broken.holder == "alice"
    with pytest.raises(LockHeldError, match="lost the lock"):
        lock.check()
    with pytest.raises(LockHeldError):
        backend.write(State(env="prod", lineage="l", serial=1), lock)
    lock.release()  # no longer ours: leaves the next holder alone
    assert backend.current_lock() is None


def test_waiting_for_a_lock_gives_up_after_the_timeout(backend: KubernetesBackend) -> None:
    lock = backend.acquire(info("alice"), ttl=30, timeout=0)
    started = time.monotonic()
    with pytest.raises(LockHeldError):
        another(backend).acquire(info("bob"), ttl=30, timeout=0.5)
    assert 0.4 < time.monotonic() - started < 3
    lock.release()


def test_history_round_trip_across_chunks(backend: KubernetesBackend, kube: KubeEmulator) -> None:
    small = another(backend)
    small.history_chunk_bytes = 200
    assert small.last_history_line() is None and list(small.history_lines()) == []
    lines = [json.dumps({"seq": i, "action": "up", "pad": "x" * 40}) for i in range(1, 21)]
    for line in lines:
        small.append_history(line)
    chunks = [o for o in kube.objects("ConfigMap", NS) if "-history-" in o["metadata"]["name"]]
    assert len(chunks) == 10  # two 72-byte lines fit in 200 bytes, a third does not
    fresh = another(backend)  # knows no chunk yet: finds the last one by probing
    assert list(fresh.history_lines()) == lines
    assert fresh.last_history_line() == lines[-1]
    with pytest.raises(Exception, match="newline"):
        fresh.append_history("two\nlines")


def test_concurrent_history_appends_lose_nothing(backend: KubernetesBackend) -> None:
    writers = [another(backend, name="shared") for _ in range(3)]
    for w in writers:
        w.history_chunk_bytes = 300

    def write(w: KubernetesBackend, who: int) -> None:
        for i in range(15):
            w.append_history(json.dumps({"who": who, "i": i}))

    threads = [threading.Thread(target=write, args=(w, n)) for n, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    seen = [json.loads(line) for line in writers[0].history_lines()]
    assert sorted((d["who"], d["i"]) for d in seen) == [(w, i) for w in range(3) for i in range(15)]
    for who in range(3):  # each writer's lines stay in its order
        assert [d["i"] for d in seen if d["who"] == who] == list(range(15))
