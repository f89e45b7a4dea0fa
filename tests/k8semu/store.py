"""The emulated cluster's object store: namespaced objects of a few resource types, with
resourceVersions, managedFields, the API's validation of the kinds releasectl writes, and
failure injection for tests.

Every operation runs under one lock, like etcd's serialised writes: a resourceVersion is a
global counter, a PUT whose resourceVersion is stale is a 409 Conflict, and errors carry the
`Status` object the real API returns (`reason`, `code`, `details`).
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.k8semu import merge
from tests.k8semu.merge import FieldPath

Obj = dict[str, Any]
Key = tuple[str, str, str, str]  # group, plural, namespace ("" when cluster scoped), name


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    custom: bool = False  # served from a CRD: list items carry apiVersion and kind
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


DEFAULT_RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    ResourceType("", "v1", "secrets", "Secret"),
    ResourceType("", "v1", "services", "Service", short_names=("svc",)),
    ResourceType("apps", "v1", "deployments", "Deployment", short_names=("deploy",)),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease"),
    ResourceType(
        "external-secrets.io",
        "v1beta1",
        "externalsecrets",
        "ExternalSecret",
        custom=True,
        short_names=("es",),
    ),
)

READS = frozenset({"get", "list"})
WRITES = frozenset({"create", "update", "patch", "delete"})


class ApiError(Exception):
    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> Obj:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{rt.plural} "{name}" not found', {"name": name, "kind": rt.plural}
    )


def invalid(rt: ResourceType, name: str, message: str) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        f'{rt.kind} "{name}" is invalid: {message}',
        {"name": name, "kind": rt.kind},
    )


@dataclass
class Manager:
    operation: str  # "Apply" or "Update"
    fields: set[FieldPath]
    api_version: str
    time: str


@dataclass
class Entry:
    rt: ResourceType
    obj: Obj
    managers: dict[str, Manager] = field(default_factory=dict)

    def render(self) -> Obj:
        out = copy.deepcopy(self.obj)
        managed = [
            {
                "manager": name,
                "operation": m.operation,
                "apiVersion": m.api_version,
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": merge.fields_v1(m.fields),
            }
            for name, m in sorted(self.managers.items())
            if m.fields
        ]
        if managed:
            out["metadata"]["managedFields"] = managed
        return out


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: str
    content_type: str | None


@dataclass
class Rule:
    """Fail (or run `action` before) the `nth` matching request, `times` times in a row."""

    verbs: frozenset[str]
    kind: str | None
    name: str | None
    nth: int
    times: int
    status: int | None
    action: Callable[[], None] | None
    seen: int = 0
    fired: int = 0

    def matches(self, verb: str, rt: ResourceType, name: str | None) -> bool:
        if verb not in self.verbs:
            return False
        if self.kind is not None and self.kind not in (rt.kind, rt.plural):
            return False
        return self.name is None or self.name == name


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Cluster:
    def __init__(self, resources: tuple[ResourceType, ...] = DEFAULT_RESOURCES) -> None:
        self.resources = list(resources)
        self._lock = threading.RLock()
        self._objects: dict[Key, Entry] = {}
        self._rv = 0
        self._rules: list[Rule] = []
        self.requests: list[Request] = []

    # --- resource types ------------------------------------------------------------------

    def resource(self, group: str, version: str, plural: str) -> ResourceType | None:
        for rt in self.resources:
            if (rt.group, rt.version, rt.plural) == (group, version, plural):
                return rt
        return None

    def by_kind(self, kind: str) -> ResourceType:
        for rt in self.resources:
            if kind in (rt.kind, rt.plural):
                return rt
        raise KeyError(kind)

    def remove_resource(self, kind: str) -> None:
        """Stop serving a kind (a CRD that is not installed)."""
        self.resources = [rt for rt in self.resources if kind not in (rt.kind, rt.plural)]

    # --- inspection and seeding, for tests -----------------------------------------------

    def get(self, kind: str, name: str, namespace: str = "default") -> Obj | None:
        rt = self.by_kind(kind)
        with self._lock:
            entry = self._objects.get(self._key(rt, namespace, name))
            return entry.render() if entry else None

    def objects(self, kind: str, namespace: str | None = None) -> list[Obj]:
        rt = self.by_kind(kind)
        with self._lock:
            return [
                e.render()
                for k, e in sorted(self._objects.items())
                if e.rt == rt and (namespace is None or k[2] == namespace)
            ]

    def put(self, obj: Obj, namespace: str = "default", *, manager: str = "kubectl") -> Obj:
        """Create or replace an object as another client would (ownership goes to `manager`)."""
        rt = self._rt_of(obj)
        name = obj["metadata"]["name"]
        ns = namespace if rt.namespaced else ""
        with self._lock:
            body = copy.deepcopy(obj)
            body["metadata"].pop("resourceVersion", None)
            if self._key(rt, ns, name) in self._objects:
                return self._replace(rt, ns, name, body, manager)
            return self._create(rt, ns, body, manager, "Update")

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method not in ("GET", "HEAD")]

    def fail(
        self,
        verb: str = "write",
        *,
        kind: str | None = None,
        name: str | None = None,
        nth: int = 1,
        times: int = 1,
        status: int = 500,
    ) -> None:
        """Make the `nth` matching request (from now on) fail with `status`.

        `verb` is get, list, create, update (PUT), patch, delete, or the groups write/read/any.
        """
        self._rules.append(Rule(_verbs(verb), kind, name, nth, times, status, None))

    def before(
        self,
        verb: str,
        action: Callable[[], None],
        *,
        kind: str | None = None,
        name: str | None = None,
        nth: int = 1,
    ) -> None:
        """Run `action` just before the `nth` matching request is served (to interleave a
        concurrent writer between a client's read and its write)."""
        self._rules.append(Rule(_verbs(verb), kind, name, nth, 1, None, action))

    def _intercept(self, verb: str, rt: ResourceType, name: str | None) -> None:
        for rule in self._rules:
            if rule.fired >= rule.times or not rule.matches(verb, rt, name):
                continue
            rule.seen += 1
            if rule.seen < rule.nth:
                continue
            rule.fired += 1
            if rule.action is not None:
                rule.action()
            elif rule.status is not None:
                reason = {500: "InternalError", 422: "Invalid", 503: "ServiceUnavailable"}.get(
                    rule.status, "InternalError"
                )
                raise ApiError(
                    rule.status,
                    reason,
                    f"injected failure: {verb} {rt.plural} {name or ''}".strip(),
                    {"name": name or "", "kind": rt.plural},
                )

    # --- API operations ------------------------------------------------------------------

    def op_get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        with self._lock:
            self._intercept("get", rt, name)
            entry = self._objects.get(self._key(rt, ns, name))
            if entry is None:
                raise not_found(rt, name)
            return entry.render()

    def op_list(
        self, rt: ResourceType, ns: str | None, selector: str | None, field_selector: str | None
    ) -> Obj:
        try:
            requirements = merge.parse_selector(selector or "")
        except merge.SelectorError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
        name_filter = None
        if field_selector:
            label, _, value = field_selector.partition("=")
            if label.strip() != "metadata.name":
                raise ApiError(400, "BadRequest", f"field label not supported: {label}")
            name_filter = value.strip().lstrip("=")
        with self._lock:
            self._intercept("list", rt, None)
            items = []
            for key, entry in sorted(self._objects.items()):
                if entry.rt != rt or (ns is not None and key[2] != ns):
                    continue
                if name_filter is not None and key[3] != name_filter:
                    continue
                if not merge.selector_matches(requirements, entry.obj["metadata"].get("labels")):
                    continue
                item = entry.render()
                if not rt.custom:  # the real API leaves these out of built-in list items
                    item.pop("apiVersion", None)
                    item.pop("kind", None)
                items.append(item)
            return {
                "apiVersion": rt.api_version,
                "kind": f"{rt.kind}List",
                "metadata": {"resourceVersion": str(self._rv)},
                "items": items,
            }

    def create(self, rt: ResourceType, ns: str, body: Obj, manager: str) -> Obj:
        with self._lock:
            self._intercept("create", rt, _name_of(body))
            return self._create(rt, ns, body, manager, "Update")

    def _create(self, rt: ResourceType, ns: str, body: Obj, manager: str, operation: str) -> Obj:
        meta = body.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise invalid(rt, "", "metadata.name: Required value: name or generateName is required")
        self._check_identity(rt, ns, body)
        key = self._key(rt, ns, name)
        if key in self._objects:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{rt.plural} "{name}" already exists',
                {"name": name, "kind": rt.plural},
            )
        managed = meta.pop("managedFields", None)
        for bookkeeping in ("resourceVersion", "uid", "creationTimestamp", "generation"):
            meta.pop(bookkeeping, None)
        obj = self._normalise(rt, body)
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        meta["resourceVersion"] = self._next_rv()
        if rt.kind == "Deployment":
            meta["generation"] = 1
        if rt.namespaced:
            meta["namespace"] = ns
        entry = Entry(rt, obj)
        if managed:
            entry.managers = _managers_from(managed)
        else:
            entry.managers[manager] = Manager(
                operation, merge.field_paths(obj), rt.api_version, now()
            )
        self._objects[key] = entry
        return entry.render()

    def replace(self, rt: ResourceType, ns: str, name: str, body: Obj, manager: str) -> Obj:
        with self._lock:
            self._intercept("update", rt, name)
            return self._replace(rt, ns, name, body, manager)

    def _replace(self, rt: ResourceType, ns: str, name: str, body: Obj, manager: str) -> Obj:
        with self._lock:
            entry = self._existing(rt, ns, name)
            meta = body.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
            self._check_identity(rt, ns, body)
            self._check_preconditions(entry, meta.get("resourceVersion"), meta.get("uid"))
            managed = meta.pop("managedFields", None)
            new = self._normalise(rt, body)
            self._store(entry, new, manager, managed)
            return entry.render()

    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: Any,
        content_type: str,
        manager: str | None,
        force: bool,
    ) -> tuple[int, Obj]:
        with self._lock:
            self._intercept("patch", rt, name)
            if not isinstance(body, dict):
                raise ApiError(415, "UnsupportedMediaType", "JSON patch (a list) is not supported")
            key = self._key(rt, ns, name)
            if content_type.startswith("application/apply-patch"):
                if not manager:
                    raise ApiError(400, "BadRequest", "fieldManager is required for apply requests")
                return self._apply(rt, ns, name, key, body, manager, force)
            entry = self._existing(rt, ns, name)
            meta = body.get("metadata") or {}
            self._check_preconditions(entry, meta.get("resourceVersion"), meta.get("uid"))
            if content_type.startswith("application/strategic-merge-patch"):
                new = merge.strategic_merge(entry.obj, body)
            elif content_type.startswith("application/merge-patch"):
                new = merge.merge_patch(entry.obj, body)
            else:
                raise ApiError(
                    415, "UnsupportedMediaType", f"unsupported patch type {content_type}"
                )
            self._check_identity(rt, ns, new)
            self._store(entry, self._normalise(rt, new), manager or "unknown", None)
            return 200, entry.render()

    def _apply(
        self, rt: ResourceType, ns: str, name: str, key: Key, body: Obj, manager: str, force: bool
    ) -> tuple[int, Obj]:
        if body.get("apiVersion") != rt.api_version or body.get("kind") != rt.kind:
            raise ApiError(400, "BadRequest", "apiVersion and kind must match the URL")
        if (body.get("metadata") or {}).get("name") != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        if rt.kind == "Secret" and "stringData" in body:
            body = self._normalise(rt, copy.deepcopy(body))
        entry = self._objects.get(key)
        if entry is None:
            return 201, self._create(rt, ns, copy.deepcopy(body), manager, "Apply")
        applied = merge.field_paths(body)
        conflicts = []
        for other, owned in entry.managers.items():
            if other == manager:
                continue
            for path in sorted(applied & owned.fields):
                if merge.get_path(entry.obj, path) != merge.get_path(body, path):
                    conflicts.append((other, path))
        if conflicts and not force:
            lines = "\n".join(
                f'- conflict with "{m}": .{".".join(s[2:] for s in p)}' for m, p in conflicts
            )
            raise ApiError(
                409,
                "Conflict",
                f"Apply failed with {len(conflicts)} conflict(s):\n{lines}",
                {"name": name, "kind": rt.plural},
            )
        for other, path in conflicts:
            entry.managers[other].fields.discard(path)
        previous = entry.managers.get(manager)
        new = copy.deepcopy(entry.obj)
        if previous is not None:
            others = [m.fields for n, m in entry.managers.items() if n != manager]
            for path in sorted(previous.fields - applied, key=len, reverse=True):
                if not any(path in f for f in others):
                    merge.delete_path(new, path)
        new = merge.apply_merge(new, body)
        self._check_identity(rt, ns, new)
        new = self._normalise(rt, new)
        self._bump(entry, new)
        entry.managers[manager] = Manager("Apply", applied, rt.api_version, now())
        return 200, entry.render()

    def delete(
        self, rt: ResourceType, ns: str, name: str, preconditions: dict[str, Any] | None
    ) -> Obj:
        with self._lock:
            self._intercept("delete", rt, name)
            entry = self._existing(rt, ns, name)
            pre = preconditions or {}
            self._check_preconditions(entry, pre.get("resourceVersion"), pre.get("uid"))
            del self._objects[self._key(rt, ns, name)]
            self._next_rv()
            return {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {"name": name, "kind": rt.plural, "uid": entry.obj["metadata"]["uid"]},
            }

    # --- helpers -------------------------------------------------------------------------

    def _key(self, rt: ResourceType, ns: str, name: str) -> Key:
        return (rt.group, rt.plural, ns if rt.namespaced else "", name)

    def _rt_of(self, obj: Obj) -> ResourceType:
        for rt in self.resources:
            if rt.api_version == obj.get("apiVersion") and rt.kind == obj.get("kind"):
                return rt
        raise KeyError(f"{obj.get('apiVersion')} {obj.get('kind')}")

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _existing(self, rt: ResourceType, ns: str, name: str) -> Entry:
        entry = self._objects.get(self._key(rt, ns, name))
        if entry is None:
            raise not_found(rt, name)
        return entry

    def _check_identity(self, rt: ResourceType, ns: str, body: Obj) -> None:
        if (
            body.get("apiVersion", rt.api_version) != rt.api_version
            or body.get("kind", rt.kind) != rt.kind
        ):
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({body.get('apiVersion')}) does not match the "
                f"expected API version ({rt.api_version})",
            )
        body_ns = (body.get("metadata") or {}).get("namespace")
        if rt.namespaced and body_ns not in (None, ns):
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the "
                "request",
            )

    def _check_preconditions(self, entry: Entry, rv: Any, uid: Any) -> None:
        meta = entry.obj["metadata"]
        if uid is not None and uid != meta["uid"]:
            raise ApiError(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
                f"{meta['uid']}",
                {"name": meta["name"], "kind": entry.rt.plural},
            )
        if rv is not None and str(rv) != meta["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {entry.rt.plural} "{meta["name"]}": the '
                "object has been modified; please apply your changes to the latest version and "
                "try again",
                {"name": meta["name"], "kind": entry.rt.plural},
            )

    def _store(self, entry: Entry, new: Obj, manager: str, managed: list[Any] | None) -> None:
        old = entry.obj
        self._bump(entry, new)
        if managed:
            entry.managers = _managers_from(managed)
            return
        before, after = merge.field_paths(old), merge.field_paths(entry.obj)
        changed = {p for p in after if merge.get_path(old, p) != merge.get_path(entry.obj, p)}
        gone = before - after
        for m in entry.managers.values():
            m.fields -= changed | gone
        mine = entry.managers.setdefault(
            manager, Manager("Update", set(), entry.rt.api_version, now())
        )
        mine.fields |= changed
        mine.time = now()
        entry.managers = {k: v for k, v in entry.managers.items() if v.fields}

    def _bump(self, entry: Entry, new: Obj) -> None:
        """Replace the stored object, keeping the server-owned metadata; a write that changes
        nothing keeps the resourceVersion, as on the real server."""
        old_meta = entry.obj["metadata"]
        meta = new.setdefault("metadata", {})
        meta.pop("managedFields", None)
        for keep in ("uid", "creationTimestamp", "namespace", "name"):
            if keep in old_meta:
                meta[keep] = old_meta[keep]
        if entry.rt.kind == "Deployment":
            changed = new.get("spec") != entry.obj.get("spec")
            meta["generation"] = old_meta.get("generation", 1) + (1 if changed else 0)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if new != entry.obj:
            meta["resourceVersion"] = self._next_rv()
        entry.obj = new

    def _normalise(self, rt: ResourceType, obj: Obj) -> Obj:
        """What the API server does to an object before storing it: defaults and validation."""
        obj = copy.deepcopy(obj)
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        meta = obj.setdefault("metadata", {})
        name = str(meta.get("name", ""))
        for part in ("labels", "annotations"):
            values = meta.get(part)
            if values is None:
                continue
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise invalid(rt, name, f"metadata.{part}: Invalid value: values must be strings")
        if rt.kind == "ConfigMap":
            for key, value in (obj.get("data") or {}).items():
                if not isinstance(value, str):
                    raise invalid(rt, name, f"data[{key}]: Invalid value: must be a string")
        elif rt.kind == "Secret":
            data = dict(obj.get("data") or {})
            for key, value in data.items():
                try:
                    base64.b64decode(str(value), validate=True)
                except (binascii.Error, ValueError):
                    raise invalid(
                        rt, name, f"data[{key}]: Invalid value: illegal base64 data"
                    ) from None
            for key, value in (obj.pop("stringData", None) or {}).items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            if data:
                obj["data"] = data
            obj.setdefault("type", "Opaque")
        elif rt.kind == "Deployment":
            _validate_deployment(rt, name, obj)
        elif rt.kind == "Lease":
            spec = obj.get("spec") or {}
            duration = spec.get("leaseDurationSeconds")
            if duration is not None and (not isinstance(duration, int) or duration < 1):
                raise invalid(rt, name, "spec.leaseDurationSeconds: must be greater than 0")
        return obj


def _validate_deployment(rt: ResourceType, name: str, obj: Obj) -> None:
    spec = obj.get("spec") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector:
        raise invalid(rt, name, "spec.selector: Required value")
    if any(labels.get(k) != v for k, v in selector.items()):
        raise invalid(
            rt,
            name,
            "spec.template.metadata.labels: Invalid value: `selector` does not match "
            "template `labels`",
        )
    containers = (template.get("spec") or {}).get("containers") or []
    if not containers:
        raise invalid(rt, name, "spec.template.spec.containers: Required value")
    for i, container in enumerate(containers):
        if not container.get("name") or not container.get("image"):
            raise invalid(
                rt, name, f"spec.template.spec.containers[{i}]: name and image are required"
            )
    spec.setdefault("replicas", 1)


def _managers_from(managed: list[Any]) -> dict[str, Manager]:
    out: dict[str, Manager] = {}
    for item in managed:
        if not isinstance(item, dict) or not item.get("manager"):
            continue
        out[str(item["manager"])] = Manager(
            str(item.get("operation", "Update")),
            merge.parse_fields_v1(item.get("fieldsV1") or {}),
            str(item.get("apiVersion", "v1")),
            str(item.get("time", now())),
        )
    return out


def _name_of(body: Any) -> str | None:
    if isinstance(body, dict):
        name = (body.get("metadata") or {}).get("name")
        return str(name) if name else None
    return None


def _verbs(verb: str) -> frozenset[str]:
    if verb == "write":
        return WRITES
    if verb == "read":
        return READS
    if verb == "any":
        return READS | WRITES
    if verb not in READS | WRITES:
        raise ValueError(f"unknown verb {verb!r}")
    return frozenset({verb})
