"""HTTP front of the emulated API server: discovery, namespaced CRUD, list with label
selectors, PATCH (server-side apply, merge, strategic merge), DELETE with preconditions.

Runs on `http.server.ThreadingHTTPServer` in a background thread, speaking HTTP/1.1 with
keep-alive like the real server, so the official client's connection pool works unchanged.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.k8semu.store import ApiError, Cluster, Request, ResourceType

SERVER_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0-emulator",
    "platform": "linux/amd64",
}


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, cluster: Cluster, token: str | None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.cluster = cluster
        self.token = token
        self.thread = threading.Thread(
            target=self.serve_forever, args=(0.05,), name="k8s-emulator", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections end, so their threads do too
    # one write per response, sent at once: no 40 ms Nagle / delayed-ACK stall per request
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: ApiServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # --- plumbing ------------------------------------------------------------------------

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        content_type = self.headers.get("Content-Type")
        cluster = self.server.cluster
        cluster.requests.append(Request(method, parts.path, parts.query, content_type))
        try:
            if self.server.token is not None:
                auth = self.headers.get("Authorization", "")
                if auth != f"Bearer {self.server.token}":
                    raise ApiError(401, "Unauthorized", "Unauthorized")
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            code, payload = self._dispatch(method, parts.path, query, raw, content_type or "")
        except ApiError as exc:
            code, payload = exc.code, exc.status()
        self._send(code, payload)

    def _send(self, code: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _dispatch(
        self, method: str, path: str, query: dict[str, str], raw: bytes, content_type: str
    ) -> tuple[int, Any]:
        cluster = self.server.cluster
        segments = [unquote(s) for s in path.strip("/").split("/") if s]
        if method == "GET":
            discovery = _discovery(cluster, segments, self.server.url)
            if discovery is not None:
                return 200, discovery
        if segments[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", segments[2:]
        elif len(segments) >= 3 and segments[0] == "apis":
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            raise _no_route()
        namespace: str | None = None
        if len(rest) >= 2 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
            if not rest and group == "" and method == "GET":
                return 200, {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": namespace},
                    "status": {"phase": "Active"},
                }
        if not rest or len(rest) > 2:
            raise _no_route()
        rt = cluster.resource(group, version, rest[0])
        if rt is None:
            raise _no_route()
        name = rest[1] if len(rest) == 2 else None
        ns = namespace or ""
        if rt.namespaced and name is not None and namespace is None:
            raise _no_route()
        body = _body(raw, content_type) if raw else None
        manager = query.get("fieldManager")
        if name is None:
            if method == "GET":
                return 200, cluster.op_list(
                    rt,
                    namespace if rt.namespaced else None,
                    query.get("labelSelector"),
                    query.get("fieldSelector"),
                )
            if method == "POST":
                return 201, cluster.create(rt, ns, _object(body), manager or "unknown")
            raise _not_allowed(method)
        if method == "GET":
            return 200, cluster.op_get(rt, ns, name)
        if method == "PUT":
            return 200, cluster.replace(rt, ns, name, _object(body), manager or "unknown")
        if method == "PATCH":
            force = query.get("force", "").lower() == "true"
            return cluster.patch(rt, ns, name, body, content_type, manager, force)
        if method == "DELETE":
            options = body if isinstance(body, dict) else {}
            return 200, cluster.delete(rt, ns, name, options.get("preconditions"))
        raise _not_allowed(method)


def _body(raw: bytes, content_type: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        if "yaml" not in content_type:
            raise ApiError(400, "BadRequest", "the request body is not valid JSON") from None
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ApiError(400, "BadRequest", "the request body is not valid YAML") from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "the request body must be an object")
    return body


def _no_route() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def _not_allowed(method: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"the server does not allow this method: {method}")


def _discovery(cluster: Cluster, segments: list[str], url: str) -> dict[str, Any] | None:
    if segments == ["version"]:
        return SERVER_VERSION
    if segments == ["api"]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": url}],
        }
    if segments == ["apis"]:
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": _groups(cluster)}
    if segments == ["api", "v1"]:
        return _resource_list(cluster, "", "v1")
    if len(segments) == 2 and segments[0] == "apis":
        for group in _groups(cluster):
            if group["name"] == segments[1]:
                return {"kind": "APIGroup", "apiVersion": "v1", **group}
        raise _no_route()
    if len(segments) == 3 and segments[0] == "apis":
        found = _resource_list(cluster, segments[1], segments[2])
        if not found["resources"]:
            raise _no_route()
        return found
    return None


def _groups(cluster: Cluster) -> list[dict[str, Any]]:
    versions: dict[str, list[str]] = {}
    for rt in cluster.resources:
        if rt.group and rt.version not in versions.setdefault(rt.group, []):
            versions[rt.group].append(rt.version)
    return [
        {
            "name": group,
            "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in vs],
            "preferredVersion": {"groupVersion": f"{group}/{vs[0]}", "version": vs[0]},
        }
        for group, vs in sorted(versions.items())
    ]


def _resource_list(cluster: Cluster, group: str, version: str) -> dict[str, Any]:
    resources: list[ResourceType] = [
        rt for rt in cluster.resources if (rt.group, rt.version) == (group, version)
    ]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [
            {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update"],
                "shortNames": list(rt.short_names),
            }
            for rt in resources
        ],
    }
