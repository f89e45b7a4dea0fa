"""Saving and restoring live objects: the backups of `mode: apply` and of service Deployments.

A backup is the list of objects a step may touch, each with its live body or None (absent),
so a restore can replace, recreate or delete each one."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from releasectl.clients.kubernetes import (
    KubeConflict,
    KubeError,
    Obj,
    create_object,
    delete_object,
    namespace_of,
    read_object,
    replace_object,
)
from releasectl.errors import InputError


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Obj, default_namespace: str | None) -> ObjectRef:
        return cls(
            str(obj["apiVersion"]),
            str(obj["kind"]),
            namespace_of(obj, default_namespace),
            str(obj["metadata"]["name"]),
        )

    def describe(self) -> str:
        return f"{self.kind}/{self.name}"

    def as_dict(self) -> dict[str, str]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
        }


def snapshot_objects(client: Any, refs: Iterable[ObjectRef]) -> list[Obj]:
    """The live state of each object: {"ref": ..., "live": object or None (absent)}."""
    return [
        {
            "ref": ref.as_dict(),
            "live": read_object(client, ref.api_version, ref.kind, ref.name, ref.namespace),
        }
        for ref in sorted(set(refs))
    ]


_SERVER_OWNED = ("uid", "resourceVersion", "creationTimestamp", "generation", "selfLink")


def restore_objects(client: Any, entries: Iterable[Obj]) -> tuple[int, int]:
    """Put each object back as it was saved: replace or recreate it (managedFields included,
    so ownership is back too), or delete it if it was absent. Returns (restored, deleted)."""
    restored = deleted = 0
    for entry in entries:
        ref = entry["ref"]
        saved = entry.get("live")
        api_version, kind, ns, name = ref["apiVersion"], ref["kind"], ref["namespace"], ref["name"]
        if saved is None:
            if delete_object(client, api_version, kind, name, ns):
                deleted += 1
            continue
        body = json.loads(json.dumps(saved))
        meta = body.setdefault("metadata", {})
        for key in _SERVER_OWNED:
            meta.pop(key, None)
        body.pop("status", None)
        body["apiVersion"], body["kind"] = api_version, kind
        for _attempt in range(5):
            live = read_object(client, api_version, kind, name, ns)
            try:
                if live is None:
                    create_object(client, body, ns)
                else:
                    meta["resourceVersion"] = live["metadata"]["resourceVersion"]
                    replace_object(client, body, ns)
                    meta.pop("resourceVersion", None)
                break
            except KubeConflict:
                meta.pop("resourceVersion", None)
                continue  # changed (or created) under us: read again
        else:
            raise KubeError(f"could not restore {kind}/{name}: it keeps changing")
        restored += 1
    return restored, deleted


BACKUP_FORMAT = "releasectl-kubernetes-objects/1"


def write_objects_backup(out: IO[bytes], entries: list[Obj], **meta: Any) -> None:
    doc = {"format": BACKUP_FORMAT, **meta, "objects": entries}
    out.write(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def read_objects_backup(data: bytes) -> tuple[dict[str, Any], list[Obj]]:
    """(metadata, entries) of a backup written by `write_objects_backup`."""
    try:
        doc = json.loads(data)
    except ValueError:
        raise InputError("backup is not a Kubernetes objects backup (invalid JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != BACKUP_FORMAT:
        raise InputError(f"backup is not a Kubernetes objects backup (format {BACKUP_FORMAT})")
    entries = valid_entries(doc.pop("objects", None))
    doc.pop("format", None)
    return doc, entries


def valid_entries(entries: Any) -> list[Obj]:
    """The entries of a saved-objects list, checked (they come from a file)."""
    if not isinstance(entries, list):
        raise InputError("Kubernetes objects backup: no object list")
    for entry in entries:
        ref = entry.get("ref") if isinstance(entry, dict) else None
        if not isinstance(ref, dict) or not all(
            isinstance(ref.get(k), str) and ref.get(k)
            for k in ("apiVersion", "kind", "namespace", "name")
        ):
            raise InputError("Kubernetes objects backup: an entry has no valid `ref`")
        live = entry.get("live")
        if live is not None and not isinstance(live, dict):
            raise InputError("Kubernetes objects backup: an entry has an invalid `live` object")
    return entries
