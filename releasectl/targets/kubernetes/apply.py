"""`mode: apply`: the cluster side of the kubernetes target.

Server-side apply with field manager `releasectl` (forcing conflicts: the repository is the
source of truth for the fields it declares), pruning of the objects releasectl created that a
version no longer declares, verification of the fields it owns, and the Secret-aware backup of
the live objects a step touches.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from releasectl.clients.kubernetes import (
    REQUEST_TIMEOUT,
    KubeError,
    apply_object,
    created_by_us,
    delete_object,
    list_objects,
    managed_selector,
    read_object,
)
from releasectl.errors import TargetError
from releasectl.targets.kubernetes.backup import ObjectRef
from releasectl.targets.kubernetes.objects import Declared, env_refs, is_secret
from releasectl.util import failpoints
from releasectl.util.deadline import Deadline

Obj = dict[str, Any]
Kind = tuple[str, str]  # apiVersion, kind
_MISSING = object()


def managed_objects(
    client: Any, kinds: Iterable[Kind], namespaces: Iterable[str], component: str
) -> list[Obj]:
    """Live objects that releasectl created for `component` (label selector, then a check of
    the field managers). Kinds the cluster does not serve are skipped: none can exist."""
    found: list[Obj] = []
    selector = managed_selector(component)
    for api_version, kind in sorted(set(kinds)):
        for namespace in sorted(set(namespaces)):
            try:
                items = list_objects(client, api_version, kind, namespace, label_selector=selector)
            except KubeError as exc:
                if exc.status == 404:
                    break
                raise
            found.extend(item for item in items if created_by_us(item))
    return found


def apply_all(
    client: Any,
    bodies: list[Obj],
    namespace: str,
    deadline: Deadline,
    advance: Callable[[], None],
) -> list[str]:
    lines: list[str] = []
    for body in bodies:
        failpoints.hit("in-run")
        deadline.check("kubernetes apply")
        apply_object(client, body, namespace, timeout=_timeout(deadline))
        lines.append(f"applied {body['kind']}/{body['metadata']['name']}")
        advance()
    return lines


def prune(
    client: Any, live: list[Obj], keep: set[ObjectRef], namespace: str, deadline: Deadline
) -> list[str]:
    """Delete the managed objects that are not in `keep` (each only at the revision we saw)."""
    lines: list[str] = []
    for obj in sorted(live, key=lambda o: ObjectRef.of(o, namespace)):
        ref = ObjectRef.of(obj, namespace)
        if ref in keep:
            continue
        deadline.check("kubernetes prune")
        delete_object(
            client,
            ref.api_version,
            ref.kind,
            ref.name,
            ref.namespace,
            resource_version=obj["metadata"].get("resourceVersion"),
        )
        lines.append(f"pruned {ref.describe()}")
    return lines


def verify_objects(
    client: Any, bodies: list[Obj], gone: Iterable[ObjectRef], namespace: str
) -> list[str]:
    """What is not as declared: a missing object, a declared field with another value, or a
    pruned object still present. Field values are never quoted (they may be secret)."""
    problems: list[str] = []
    for body in bodies:
        ref = ObjectRef.of(body, namespace)
        live = read_object(client, ref.api_version, ref.kind, ref.name, ref.namespace)
        if live is None:
            problems.append(f"{ref.describe()} is missing")
            continue
        wanted = {k: v for k, v in body.items() if k not in ("apiVersion", "kind")}
        wanted["metadata"] = {
            k: v for k, v in body["metadata"].items() if k not in ("namespace", "name")
        }
        diffs = differences(wanted, live)
        if diffs:
            problems.append(f"{ref.describe()}: {', '.join(diffs[:5])} not as declared")
    for ref in gone:
        if read_object(client, ref.api_version, ref.kind, ref.name, ref.namespace) is not None:
            problems.append(f"{ref.describe()} should have been pruned")
    return problems


def differences(want: Any, have: Any, path: str = "") -> list[str]:
    """Fields of `want` whose value differs in `have` (maps: a subset; lists: item by item,
    since the server adds defaults inside list items)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [path or "."]
        out: list[str] = []
        for key, value in want.items():
            out.extend(differences(value, have.get(key, _MISSING), f"{path}.{key}"))
        return out
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return [path]
        out = []
        for index, (w, h) in enumerate(zip(want, have, strict=True)):
            out.extend(differences(w, h, f"{path}[{index}]"))
        return out
    return [] if want == have else [path]


def _timeout(deadline: Deadline) -> float:
    remaining = deadline.remaining()
    return REQUEST_TIMEOUT if remaining is None else max(1.0, min(REQUEST_TIMEOUT, remaining))


# --- Secrets in backups ----------------------------------------------------------------------


def scrub_secrets(entries: list[Obj]) -> int:
    """Replace the values of saved Secrets with their SHA-256 (an unencrypted backup must not
    hold them). Returns how many Secrets were scrubbed."""
    count = 0
    for entry in entries:
        live = entry.get("live")
        if live is None or not is_secret(live):
            continue
        data = live.pop("data", None) or {}
        live.pop("stringData", None)
        live["dataDigests"] = {k: _digest(str(v)) for k, v in data.items()}
        count += 1
    return count


def unscrub_secrets(
    entries: list[Obj], snapshots: Iterable[Declared], environ: Mapping[str, str]
) -> list[str]:
    """Find the values of scrubbed Secrets again: a variable that any version of the component
    names for that key, whose value has the saved digest. Keys with no such value are left as
    they are on the cluster (returned, so the caller can say so)."""
    candidates: dict[tuple[str, str], set[str]] = {}
    for obj in snapshots:
        if is_secret(obj):
            for _, key, var in env_refs(obj):
                candidates.setdefault((obj.name, key), set()).add(var)
    unresolved: list[str] = []
    for entry in entries:
        live = entry.get("live")
        if live is None or "dataDigests" not in live:
            continue
        digests: dict[str, str] = live.pop("dataDigests")
        name = entry["ref"]["name"]
        data: dict[str, str] = {}
        for key, digest in sorted(digests.items()):
            for var in sorted(candidates.get((name, key), ())):
                value = environ.get(var)
                if value is None:
                    continue
                encoded = base64.b64encode(value.encode()).decode()
                if _digest(encoded) == digest:
                    data[key] = encoded
                    break
            else:
                unresolved.append(f"Secret/{name}: {key}")
        if len(data) < len(digests):
            entry["keep_live"] = True  # never overwrite values we cannot reproduce
        elif data:
            live["data"] = data
    return unresolved


def _digest(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def check_served(client: Any, kinds: Iterable[Kind]) -> None:
    """Refuse, before anything changes, kinds the cluster does not serve (a missing CRD)."""
    from releasectl.clients.kubernetes import served

    missing = [f"{k} ({v})" for v, k in sorted(set(kinds)) if not served(client, v, k)]
    if missing:
        raise TargetError(
            "the cluster does not serve "
            + ", ".join(missing)
            + "; install its CustomResourceDefinition first"
        )
