"""Kubernetes plumbing shared by every module that talks to a cluster: the kubernetes and
service targets, the Kubernetes state backend and the Cedar `configmap` store.

    client = api_client(settings, root=workspace_root)      # kubeconfig context or in-cluster
    apply_object(client, obj, namespace="rust-security")     # server-side apply, manager releasectl
    live = read_object(client, "v1", "ConfigMap", "name", namespace="rust-security")  # or None
    delete_object(client, "v1", "ConfigMap", "name", namespace="rust-security")       # -> bool

Objects are plain dicts, as written in YAML. Requests go through the official client's
`ApiClient` (kubeconfig, auth plugins, TLS, proxies) but not its typed models, so every kind,
custom resources such as ExternalSecret included, is handled the same way. Errors become
`KubeError` (a TargetError, exit 1) with the API's own reason; a 409 is `KubeConflict`.
The `kubernetes` package is imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from releasectl.errors import InputError, TargetError
from releasectl.secrets import redact

FIELD_MANAGER = "releasectl"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "releasectl"
COMPONENT_LABEL = "releasectl.dev/component"
VERSION_ANNOTATION = "releasectl.dev/version"
DEFAULT_NAMESPACE = "default"
REQUEST_TIMEOUT = 30.0

Obj = dict[str, Any]


class KubeError(TargetError):
    """A request to the Kubernetes API failed (`status` 0: the API was not reachable)."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(redact(message))
        self.status = status
        self.reason = reason


class KubeConflict(KubeError):
    """409: a stale resourceVersion, an existing name, or a server-side apply conflict."""


# --- the client --------------------------------------------------------------------------


def api_client(settings: object | None = None, *, root: Path | None = None) -> Any:
    """An `ApiClient` for the cluster `settings` name.

    `settings` is any object with optional `context`, `kubeconfig` and `in_cluster` attributes
    (the target and state settings models). The kubeconfig is `settings.kubeconfig` (relative
    to `root`), else `$KUBECONFIG`, else ~/.kube/config; `in_cluster` uses the pod's service
    account instead.
    """
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    context = getattr(settings, "context", None)
    kubeconfig = getattr(settings, "kubeconfig", None)
    in_cluster = bool(getattr(settings, "in_cluster", False))
    configuration = client.Configuration()
    if in_cluster:
        try:
            load_incluster: Callable[..., None] = config.load_incluster_config
            load_incluster(client_configuration=configuration)
        except ConfigException as exc:
            raise InputError(f"in-cluster Kubernetes config: {exc}") from None
    else:
        path = _kubeconfig_path(kubeconfig, root)
        shown = f"kubeconfig {path}" + (f" (context {context})" if context else "")
        if ":" not in path and not Path(path).is_file():
            raise InputError(
                f"{shown}: file not found (set `kubeconfig`, KUBECONFIG or `in_cluster: true`)"
            )
        try:
            load: Callable[..., None] = config.load_kube_config
            load(
                config_file=path,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except ConfigException as exc:
            raise InputError(f"{shown}: {exc}") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"{shown}: cannot load: {exc}") from None
    # Fail fast on an unreachable API: two quick connection retries, no read retries
    # (a write that timed out must not be sent twice behind our back).
    from urllib3.util.retry import Retry

    configuration.retries = Retry(
        total=2, connect=2, read=0, redirect=0, status=0, other=0, backoff_factor=0.1
    )
    return client.ApiClient(configuration)


def _kubeconfig_path(kubeconfig: str | None, root: Path | None) -> str:
    if kubeconfig:
        path = Path(kubeconfig).expanduser()
        if not path.is_absolute() and root is not None:
            path = root / path
        return str(path)
    env = os.environ.get("KUBECONFIG")
    if env:
        return env
    return str(Path("~/.kube/config").expanduser())


def server_of(client: Any) -> str:
    return str(client.configuration.host)


# --- resources -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resource:
    """Where a kind lives in the API."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced:
            base += f"/namespaces/{quote(namespace or DEFAULT_NAMESPACE, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += "/" + quote(name, safe="")
        return base


_WELL_KNOWN: dict[tuple[str, str], Resource] = {
    (r.api_version, r.kind): r
    for r in (
        Resource("v1", "ConfigMap", "configmaps"),
        Resource("v1", "Secret", "secrets"),
        Resource("v1", "Service", "services"),
        Resource("v1", "ServiceAccount", "serviceaccounts"),
        Resource("v1", "Namespace", "namespaces", namespaced=False),
        Resource("apps/v1", "Deployment", "deployments"),
        Resource("apps/v1", "StatefulSet", "statefulsets"),
        Resource("coordination.k8s.io/v1", "Lease", "leases"),
        Resource("external-secrets.io/v1beta1", "ExternalSecret", "externalsecrets"),
        Resource("external-secrets.io/v1", "ExternalSecret", "externalsecrets"),
    )
}
_discovered: dict[tuple[str, str, str], Resource] = {}


def resource_for(client: Any, api_version: str, kind: str) -> Resource:
    """The resource of a kind: well-known ones from a table, others by API discovery."""
    known = _WELL_KNOWN.get((api_version, kind))
    if known is not None:
        return known
    key = (server_of(client), api_version, kind)
    if key in _discovered:
        return _discovered[key]
    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    try:
        listing = request(client, "GET", path)
    except KubeError as exc:
        if exc.status == 404:
            raise KubeError(
                f"the cluster does not serve {api_version} (for kind {kind}); "
                "is its CustomResourceDefinition installed?",
                status=404,
                reason="NotFound",
            ) from None
        raise
    for item in listing.get("resources", []):
        if item.get("kind") == kind and "/" not in str(item.get("name", "")):
            found = Resource(api_version, kind, str(item["name"]), bool(item.get("namespaced")))
            _discovered[key] = found
            return found
    raise KubeError(
        f"the cluster serves {api_version} but has no kind {kind}", status=404, reason="NotFound"
    )


_BUILT_IN_GROUPS = frozenset({"v1", "apps/v1", "coordination.k8s.io/v1"})


def served(client: Any, api_version: str, kind: str) -> bool:
    """Whether the cluster serves this kind (the CRD of a custom resource may be missing)."""
    if api_version in _BUILT_IN_GROUPS:
        return True
    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    try:
        listing = request(client, "GET", path)
    except KubeError as exc:
        if exc.status == 404:
            return False
        raise
    return any(r.get("kind") == kind for r in (listing or {}).get("resources", []))


# --- requests ------------------------------------------------------------------------------


def request(
    client: Any,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None = None,
    body: Any = None,
    content_type: str = "application/json",
    timeout: float | None = None,
) -> Any:
    """One API call; the decoded JSON response. Raises KubeError / KubeConflict."""
    import urllib3

    headers = {"Accept": "application/json", "Content-Type": content_type}
    try:
        method, url, headers, body, post = client.param_serialize(
            method,
            path,
            query_params=query or None,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = client.call_api(
            method, url, headers, body, post, _request_timeout=timeout or REQUEST_TIMEOUT
        )
        data = response.read()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise KubeError(
            f"cannot reach the Kubernetes API at {server_of(client)}: {_short(exc)}"
        ) from None
    if not 200 <= response.status <= 299:
        raise _api_error(method, path, response.status, data)
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise KubeError(f"{method} {path}: the API answered with invalid JSON") from None


def _short(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc).splitlines()[0][:300]


def _api_error(method: str, path: str, status: int, data: bytes) -> KubeError:
    reason, message = "", ""
    try:
        doc = json.loads(data)
        if isinstance(doc, dict):
            reason = str(doc.get("reason") or "")
            message = str(doc.get("message") or "")
    except ValueError:
        message = data.decode("utf-8", "replace")[:300]
    text = f"{method} {path}: {status} {reason or 'error'}" + (f": {message}" if message else "")
    cls = KubeConflict if status == 409 else KubeError
    return cls(text, status=status, reason=reason)


# --- object operations ---------------------------------------------------------------------


def namespace_of(obj: Obj, default: str | None) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or default or DEFAULT_NAMESPACE)


def read_object(
    client: Any, api_version: str, kind: str, name: str, namespace: str | None = None
) -> Obj | None:
    """The live object, or None when it does not exist."""
    res = resource_for(client, api_version, kind)
    try:
        obj: Obj = request(client, "GET", res.path(namespace, name))
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise
    return obj


def list_objects(
    client: Any,
    api_version: str,
    kind: str,
    namespace: str | None = None,
    *,
    label_selector: str | None = None,
) -> list[Obj]:
    """Objects of a kind in `namespace`, with apiVersion and kind filled in (the API leaves
    them out of built-in list items)."""
    res = resource_for(client, api_version, kind)
    query = [("labelSelector", label_selector)] if label_selector else None
    listing = request(client, "GET", res.path(namespace), query=query)
    items: list[Obj] = []
    for item in listing.get("items") or []:
        item.setdefault("apiVersion", api_version)
        item.setdefault("kind", kind)
        items.append(item)
    return items


def apply_object(
    client: Any,
    obj: Obj,
    namespace: str | None = None,
    *,
    field_manager: str = FIELD_MANAGER,
    force: bool = True,
    timeout: float | None = None,
) -> Obj:
    """Server-side apply: create the object or take ownership of the fields it sets."""
    res = resource_for(client, obj["apiVersion"], obj["kind"])
    ns = namespace_of(obj, namespace) if res.namespaced else None
    body = dict(obj)
    if res.namespaced:
        body["metadata"] = {**obj.get("metadata", {}), "namespace": ns}
    query = [("fieldManager", field_manager)]
    if force:
        query.append(("force", "true"))
    result: Obj = request(
        client,
        "PATCH",
        res.path(ns, obj["metadata"]["name"]),
        query=query,
        body=body,
        content_type="application/apply-patch+yaml",
        timeout=timeout,
    )
    return result


def create_object(client: Any, obj: Obj, namespace: str | None = None) -> Obj:
    res = resource_for(client, obj["apiVersion"], obj["kind"])
    ns = namespace_of(obj, namespace) if res.namespaced else None
    result: Obj = request(
        client, "POST", res.path(ns), body=obj, query=[("fieldManager", FIELD_MANAGER)]
    )
    return result


def replace_object(client: Any, obj: Obj, namespace: str | None = None) -> Obj:
    """PUT: with `metadata.resourceVersion` set, a compare-and-swap (KubeConflict if stale)."""
    res = resource_for(client, obj["apiVersion"], obj["kind"])
    ns = namespace_of(obj, namespace) if res.namespaced else None
    result: Obj = request(
        client,
        "PUT",
        res.path(ns, obj["metadata"]["name"]),
        body=obj,
        query=[("fieldManager", FIELD_MANAGER)],
    )
    return result


def patch_object(
    client: Any,
    api_version: str,
    kind: str,
    name: str,
    patch: Obj,
    namespace: str | None = None,
    *,
    strategic: bool = False,
) -> Obj:
    """A JSON merge patch (or a strategic merge patch for built-in kinds)."""
    res = resource_for(client, api_version, kind)
    content_type = (
        "application/strategic-merge-patch+json" if strategic else "application/merge-patch+json"
    )
    result: Obj = request(
        client,
        "PATCH",
        res.path(namespace, name),
        body=patch,
        content_type=content_type,
        query=[("fieldManager", FIELD_MANAGER)],
    )
    return result


def delete_object(
    client: Any,
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None = None,
    *,
    resource_version: str | None = None,
) -> bool:
    """Delete; False when it did not exist. With `resource_version`, only that revision."""
    res = resource_for(client, api_version, kind)
    body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
    if resource_version is not None:
        body["preconditions"] = {"resourceVersion": resource_version}
    try:
        request(client, "DELETE", res.path(namespace, name), body=body)
    except KubeError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def server_version(client: Any, timeout: float | None = None) -> str:
    """The API server's version; raises KubeError when it cannot be reached."""
    info = request(client, "GET", "/version", timeout=timeout)
    return str((info or {}).get("gitVersion") or "unknown")


def managed_selector(component: str) -> str:
    return f"{MANAGED_BY_LABEL}={MANAGED_BY},{COMPONENT_LABEL}={component}"


def created_by_us(obj: Obj) -> bool:
    """Whether releasectl manages this object: our labels, and (where the server records
    field managers) a `releasectl` manager among them."""
    meta = obj.get("metadata") or {}
    if (meta.get("labels") or {}).get(MANAGED_BY_LABEL) != MANAGED_BY:
        return False
    managers = meta.get("managedFields")
    if not managers:
        return True
    return any(m.get("manager") == FIELD_MANAGER for m in managers if isinstance(m, dict))
