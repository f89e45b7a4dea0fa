"""The loopback API emulator behaves like the real API where releasectl depends on it, seen
through the official client's typed APIs (so other modules' tests can trust it too)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from tests.k8semu import KubeEmulator


def cm(name: str, data: dict[str, str], **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data,
    }


def core(kube: KubeEmulator) -> Any:
    return client.CoreV1Api(kube.api_client())


def status_of(exc: pytest.ExceptionInfo[client.ApiException]) -> dict[str, Any]:
    """The Status object the server answered with."""
    assert exc.value.body is not None
    status: dict[str, Any] = json.loads(exc.value.body)
    return status


def test_crud_resource_versions_and_label_selectors(kube: KubeEmulator) -> None:
    api = core(kube)
    created = api.create_namespaced_config_map("default", cm("a", {"k": "v"}, team="x"))
    api.create_namespaced_config_map("default", cm("b", {"k": "v"}, team="y"))
    api.create_namespaced_config_map("other", cm("c", {"k": "v"}, team="x"))
    assert api.read_namespaced_config_map("a", "default").data == {"k": "v"}

    names = [i.metadata.name for i in api.list_namespaced_config_map("default").items]
    assert names == ["a", "b"]
    selected = api.list_namespaced_config_map("default", label_selector="team=x").items
    assert [i.metadata.name for i in selected] == ["a"]
    selected = api.list_namespaced_config_map("default", label_selector="team in (x,y),!nope")
    assert len(selected.items) == 2
    selected = api.list_namespaced_config_map("default", label_selector="team!=x")
    assert [i.metadata.name for i in selected.items] == ["b"]

    body = cm("a", {"k": "w"})
    body["metadata"]["resourceVersion"] = created.metadata.resource_version
    updated = api.replace_namespaced_config_map("a", "default", body)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    with pytest.raises(client.ApiException) as stale:
        api.replace_namespaced_config_map("a", "default", body)  # the old resourceVersion
    assert stale.value.status == 409
    assert status_of(stale)["reason"] == "Conflict"

    with pytest.raises(client.ApiException) as exists:
        api.create_namespaced_config_map("default", cm("a", {}))
    assert exists.value.status == 409
    assert status_of(exists)["reason"] == "AlreadyExists"

    api.delete_namespaced_config_map("a", "default")
    with pytest.raises(client.ApiException) as missing:
        api.read_namespaced_config_map("a", "default")
    status = status_of(missing)
    assert missing.value.status == 404
    assert status["kind"] == "Status" and status["reason"] == "NotFound"
    assert status["details"] == {"name": "a", "kind": "configmaps"}


def test_server_side_apply_tracks_field_managers(kube: KubeEmulator) -> None:
    api = core(kube)
    apply = {"_content_type": "application/apply-patch+yaml", "force": True}
    first = cm("app", {"a": "1", "b": "2"})
    created = api.patch_namespaced_config_map("app", "default", first, field_manager="me", **apply)
    assert created.data == {"a": "1", "b": "2"}
    # another client adds a key; our next apply drops `b` (we owned it) but keeps theirs
    api.patch_namespaced_config_map("app", "default", {"data": {"c": "3"}}, field_manager="kubectl")
    again = api.patch_namespaced_config_map(
        "app", "default", cm("app", {"a": "1"}), field_manager="me", **apply
    )
    assert again.data == {"a": "1", "c": "3"}
    assert {m.manager for m in again.metadata.managed_fields} == {"me", "kubectl"}

    # a field another manager owns with another value conflicts unless forced
    with pytest.raises(client.ApiException) as conflict:
        api.patch_namespaced_config_map(
            "app",
            "default",
            cm("app", {"a": "1", "c": "9"}),
            field_manager="me",
            _content_type="application/apply-patch+yaml",
        )
    assert conflict.value.status == 409
    assert "kubectl" in status_of(conflict)["message"]
    forced = api.patch_namespaced_config_map(
        "app", "default", cm("app", {"a": "1", "c": "9"}), field_manager="me", **apply
    )
    assert forced.data["c"] == "9"

    # an apply that changes nothing keeps the resourceVersion
    same = api.patch_namespaced_config_map(
        "app", "default", cm("app", {"a": "1", "c": "9"}), field_manager="me", **apply
    )
    assert same.metadata.resource_version == forced.metadata.resource_version


def test_strategic_merge_merges_containers_by_name(kube: KubeEmulator) -> None:
    apps: Any = client.AppsV1Api(kube.api_client())
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "web:1", "ports": [{"containerPort": 80}]},
                        {"name": "proxy", "image": "proxy:1"},
                    ]
                },
            },
        },
    }
    apps.create_namespaced_deployment("default", deployment)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}}
    patched = apps.patch_namespaced_deployment("web", "default", patch)
    containers = patched.spec.template.spec.containers
    assert [(c.name, c.image) for c in containers] == [("web", "web:2"), ("proxy", "proxy:1")]
    assert containers[0].ports[0].container_port == 80
    assert patched.metadata.generation == 2

    invalid = json.loads(json.dumps(deployment))
    invalid["metadata"]["name"] = "broken"
    invalid["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(client.ApiException) as exc:
        apps.create_namespaced_deployment("default", invalid)
    assert exc.value.status == 422


def test_secrets_leases_custom_resources_and_discovery(kube: KubeEmulator) -> None:
    api = core(kube)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s"},
        "stringData": {"token": "abc"},
    }
    stored = api.create_namespaced_secret("default", secret)
    assert stored.data == {"token": "YWJj"}  # stringData is write-only
    assert stored.type == "Opaque"

    leases: Any = client.CoordinationV1Api(kube.api_client())
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l"},
        "spec": {"holderIdentity": "me", "leaseDurationSeconds": 10},
    }
    assert leases.create_namespaced_lease("default", lease).spec.holder_identity == "me"

    custom: Any = client.CustomObjectsApi(kube.api_client())
    es = {
        "apiVersion": "external-secrets.io/v1beta1",
        "kind": "ExternalSecret",
        "metadata": {"name": "es"},
        "spec": {"refreshInterval": "1h"},
    }
    custom.create_namespaced_custom_object(
        "external-secrets.io", "v1beta1", "default", "externalsecrets", es
    )
    listed = custom.list_namespaced_custom_object(
        "external-secrets.io", "v1beta1", "default", "externalsecrets"
    )
    assert [i["kind"] for i in listed["items"]] == ["ExternalSecret"]

    groups = client.ApisApi(kube.api_client()).get_api_versions()
    assert "external-secrets.io" in {g.name for g in groups.groups}
    resources = client.CoreV1Api(kube.api_client()).get_api_resources()
    assert "configmaps" in {r.name for r in resources.resources}
    kube.cluster.remove_resource("ExternalSecret")
    with pytest.raises(client.ApiException) as gone:
        custom.list_namespaced_custom_object(
            "external-secrets.io", "v1beta1", "default", "externalsecrets"
        )
    assert gone.value.status == 404


def test_failure_injection_and_request_log(kube: KubeEmulator) -> None:
    api = core(kube)
    kube.cluster.fail("create", kind="ConfigMap", nth=2, status=500)
    api.create_namespaced_config_map("default", cm("one", {}))
    with pytest.raises(client.ApiException) as failed:
        api.create_namespaced_config_map("default", cm("two", {}))
    assert failed.value.status == 500
    api.create_namespaced_config_map("default", cm("three", {}))  # fires once
    assert [o["metadata"]["name"] for o in kube.objects("ConfigMap")] == ["one", "three"]
    assert [w.method for w in kube.writes()] == ["POST", "POST", "POST"]


def test_requests_without_the_token_are_refused(kube: KubeEmulator) -> None:
    configuration = client.Configuration()
    configuration.host = kube.url
    with pytest.raises(client.ApiException) as exc:
        client.CoreV1Api(client.ApiClient(configuration)).list_namespaced_config_map("default")
    assert exc.value.status == 401
