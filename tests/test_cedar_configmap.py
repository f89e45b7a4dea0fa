"""The `cedar` target's `configmap` store, against the loopback Kubernetes API emulator with the
real `kubernetes` client."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from releasectl.errors import ReleasectlError, TargetError
from releasectl.targets.base import Failure
from releasectl.targets.cedar import CedarTarget
from releasectl.util.deadline import Deadline
from tests.cedar_helpers import UNLOCK, V1, V2, run_step, step, stored, write_migration
from tests.cedar_helpers import target as make_target
from tests.k8semu import KubeEmulator

NAMESPACE = "rust-security"
NAME = "cedar-policies"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    write_migration(tmp_path, "0001_base", V1)
    write_migration(tmp_path, "0002_unlock", V2)
    return tmp_path


def target(root: Path, kube: KubeEmulator) -> CedarTarget:
    return make_target(
        root,
        store="configmap",
        namespace=NAMESPACE,
        name=NAME,
        kubeconfig=str(kube.kubeconfig),
        context=kube.context,
    )


def live(kube: KubeEmulator) -> dict[str, Any] | None:
    obj: dict[str, Any] | None = kube.get("ConfigMap", NAME, NAMESPACE)
    return obj


def data(kube: KubeEmulator) -> dict[str, str]:
    obj = live(kube)
    assert obj is not None
    return dict(obj["data"])


def test_round_trip_through_a_configmap(ws: Path, kube: KubeEmulator) -> None:
    t = target(ws, kube)
    assert t.store.read() is None
    run_step(t, step(0, 1))
    obj = live(kube)
    assert obj is not None
    assert sorted(obj["data"]) == ["manifest.json", "policies.cedar", "schema.cedarschema"]
    assert obj["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "releasectl",
        "releasectl.dev/component": "policies",
    }
    v1 = data(kube)
    assert json.loads(v1["manifest.json"])["version"] == 1

    run_step(t, step(1, 2))
    assert json.loads(data(kube)["manifest.json"])["version"] == 2
    run_step(t, step(2, 1))
    assert data(kube) == v1
    run_step(t, step(1, 0))
    assert live(kube) is None


def test_the_same_set_in_a_directory_and_a_configmap(ws: Path, kube: KubeEmulator) -> None:
    run_step(make_target(ws), step(0, 1))
    run_step(target(ws, kube), step(0, 1))
    assert {k: v.encode() for k, v in data(kube).items()} == stored(ws)


def test_rollback_puts_the_configmap_back_exactly(ws: Path, kube: KubeEmulator) -> None:
    t = target(ws, kube)
    run_step(t, step(0, 1))
    before = data(kube)
    s = step(1, 2)
    backup = run_step(t, s)
    assert data(kube) != before
    t.rollback(s, None, io.BytesIO(backup), Failure("verify", RuntimeError("x")))
    assert data(kube) == before


@pytest.mark.parametrize(
    "broken",
    [
        {"unlock.cedar": UNLOCK.replace(";", "")},
        {"schema.cedarschema": V2["schema.cedarschema"].replace("entity Environment;", "")},
        {"unlock.cedar": UNLOCK.replace("forbid", "permit")},
    ],
    ids=["syntax", "schema", "test"],
)
def test_a_failing_step_writes_nothing(
    ws: Path, kube: KubeEmulator, broken: dict[str, str]
) -> None:
    t = target(ws, kube)
    run_step(t, step(0, 1))
    before = live(kube)
    writes = len(kube.writes())
    write_migration(ws, "0002_unlock", broken)
    t = target(ws, kube)
    with pytest.raises(ReleasectlError):
        t.check(step(1, 2), None)
    with pytest.raises(ReleasectlError):
        t.run(step(1, 2), None, Deadline(None))
    assert live(kube) == before
    assert len(kube.writes()) == writes


def test_a_concurrent_edit_is_not_overwritten(ws: Path, kube: KubeEmulator) -> None:
    t = target(ws, kube)
    run_step(t, step(0, 1))
    edited = live(kube)
    assert edited is not None
    edited["data"]["policies.cedar"] += "// someone else\n"

    def someone_else() -> None:
        kube.put(edited, NAMESPACE)

    kube.cluster.before("update", someone_else, kind="ConfigMap")
    with pytest.raises(TargetError, match="changed while releasectl was writing it"):
        t.run(step(1, 2), None, Deadline(None))
    assert data(kube)["policies.cedar"].endswith("// someone else\n")


def test_an_api_failure_is_a_target_error(ws: Path, kube: KubeEmulator) -> None:
    t = target(ws, kube)
    run_step(t, step(0, 1))
    before = data(kube)
    kube.cluster.fail("update", kind="ConfigMap", status=503)
    with pytest.raises(TargetError, match="503"):
        t.run(step(1, 2), None, Deadline(None))
    assert data(kube) == before
