"""A loopback Kubernetes API server for tests.

No real API server can run in the test environment, and a monkeypatched client would test
our assumptions rather than the wire protocol, so tests talk to this emulator over HTTP with
the real `kubernetes` client. (We evaluated `kmock`'s KubernetesEmulator first: it merges every
PATCH as a plain dict merge, does not create on server-side apply, keeps no resourceVersion,
answers no 409 on a stale one and has no label selectors, which is what releasectl needs.)

    with KubeEmulator.running(tmp_path) as kube:
        kubeconfig, context = kube.kubeconfig, kube.context
        kube.cluster.fail("patch", kind="ConfigMap", nth=2)   # the 2nd ConfigMap patch fails
        ... run releasectl against it ...
        kube.get("ConfigMap", "auth-service-config", "rust-security")

The `kube` fixture in tests/conftest.py starts one per test.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.k8semu.server import ApiServer
from tests.k8semu.store import DEFAULT_RESOURCES, ApiError, Cluster, Request, ResourceType

__all__ = ["DEFAULT_RESOURCES", "ApiError", "Cluster", "KubeEmulator", "Request", "ResourceType"]

TOKEN = "emulator-token"  # the server refuses requests without it: proves the client sends auth


class KubeEmulator:
    def __init__(
        self,
        directory: Path,
        *,
        context: str = "emulator",
        namespace: str = "default",
        resources: tuple[ResourceType, ...] = DEFAULT_RESOURCES,
    ) -> None:
        self.cluster = Cluster(resources)
        self.context = context
        self.namespace = namespace
        self.kubeconfig = directory / "kubeconfig"
        self._server = ApiServer(self.cluster, TOKEN)

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> KubeEmulator:
        self._server.start()
        self.write_kubeconfig(self.kubeconfig, self.context)
        return self

    def stop(self) -> None:
        self._server.stop()

    @classmethod
    @contextlib.contextmanager
    def running(cls, directory: Path, **kwargs: Any) -> Iterator[KubeEmulator]:
        emulator = cls(directory, **kwargs).start()
        try:
            yield emulator
        finally:
            emulator.stop()

    def write_kubeconfig(self, path: Path, context: str) -> Path:
        """A kubeconfig whose `context` points at this server (JSON is valid YAML)."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": {"token": TOKEN}}],
            "contexts": [
                {
                    "name": context,
                    "context": {
                        "cluster": "emulator",
                        "user": "emulator",
                        "namespace": self.namespace,
                    },
                }
            ],
            "current-context": context,
        }
        path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        return path

    def api_client(self) -> Any:
        """The official client, configured from the kubeconfig (for tests' own reads)."""
        from kubernetes import config

        new_client: Callable[..., Any] = config.new_client_from_config
        return new_client(
            config_file=str(self.kubeconfig), context=self.context, persist_config=False
        )

    # --- shortcuts to the store ----------------------------------------------------------

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.cluster.get(kind, name, namespace or self.namespace)

    def objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.cluster.objects(kind, namespace)

    def put(
        self, obj: dict[str, Any], namespace: str | None = None, *, manager: str = "kubectl"
    ) -> dict[str, Any]:
        return self.cluster.put(obj, namespace or self.namespace, manager=manager)

    def writes(self) -> list[Request]:
        return self.cluster.writes()
