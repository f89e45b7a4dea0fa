"""Kubernetes objects a step creates, changes (field by field) and prunes.

A kubernetes migration is a snapshot: version N holds every object of the component. A step
from version A to version B therefore changes the objects of snapshot A into those of
snapshot B; this compares the two as declared (the live objects of an `apply` environment may
have drifted, which `status` and drift checks report). Secret values are never shown: every
value under a Secret's `data` or `stringData`, and any value the secret scanner flags, reads
`(masked)`, with only whether it changed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from releasectl.models.analysis import FieldChange, ObjectChange, StepAnalysis
from releasectl.secrets import scan_text
from releasectl.targets.kubernetes.objects import SECRET_FIELDS, Declared, is_secret, load_snapshot

if TYPE_CHECKING:
    from releasectl.analysis.base import StepInput
    from releasectl.workspace.catalogue import ComponentMigrations

MASK = "(masked)"
VALUE_CHARS = 120
MAX_FIELDS = 200  # per object: a rewritten object says so instead of listing thousands


def analyze(item: StepInput) -> StepAnalysis | None:
    step = item.step
    if step.action not in ("up", "down"):
        return None
    out = StepAnalysis(
        index=item.index,
        component=step.component,
        type=step.type,
        action=step.action,
        migration=step.migration,
    )
    try:
        old = _objects(item.migrations, _version(step.from_))
        new = _objects(item.migrations, _version(step.to))
    except ValueError as exc:
        return out.model_copy(update={"notes": [str(exc)]})
    return out.model_copy(update={"kubernetes": diff_objects(old, new)})


def _version(value: int | str | None) -> int:
    return int(value or 0)


def _objects(found: ComponentMigrations | None, version: int) -> dict[tuple[str, str, str], Any]:
    if version <= 0:
        return {}
    migration = found.get(version) if found is not None else None
    if migration is None:
        raise ValueError(f"no migration for version {version}: not analysed")
    objects, errors = load_snapshot(migration)
    if errors:
        raise ValueError(f"{migration.rel}: not analysed: {errors[0]}")
    return {_key(o): o.body for o in objects}


def _key(obj: Declared) -> tuple[str, str, str]:
    return (obj.kind, obj.namespace(None) or "", obj.name)


def diff_objects(
    old: dict[tuple[str, str, str], Any], new: dict[tuple[str, str, str], Any]
) -> list[ObjectChange]:
    changes: list[ObjectChange] = []
    for key in sorted(set(old) | set(new)):
        kind, namespace, name = key
        common = {"kind": kind, "name": name, "namespace": namespace or None}
        if key not in old:
            changes.append(ObjectChange(change="created", **common))
        elif key not in new:
            changes.append(ObjectChange(change="pruned", **common))
        else:
            secret = _secret(old[key]) or _secret(new[key])
            fields = list(_diff(old[key], new[key], "", secret))
            if fields:
                if len(fields) > MAX_FIELDS:
                    left = len(fields) - MAX_FIELDS
                    fields = fields[:MAX_FIELDS]
                    fields.append(FieldChange(path="...", old=None, new=f"{left} more fields"))
                changes.append(ObjectChange(change="changed", fields=fields, **common))
    return changes


def _diff(old: Any, new: Any, path: str, secret: bool) -> Iterator[FieldChange]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            masked = secret and (path in SECRET_FIELDS or sub in SECRET_FIELDS)
            if key not in old:
                yield FieldChange(path=sub, old=None, new=_show(new[key], masked))
            elif key not in new:
                yield FieldChange(path=sub, old=_show(old[key], masked), new=None)
            else:
                yield from _diff(old[key], new[key], sub, masked or secret)
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _diff(a, b, f"{path}[{index}]", secret)
        return
    if old != new:
        masked = secret and path.split(".", 1)[0] in SECRET_FIELDS
        yield FieldChange(path=path, old=_show(old, masked), new=_show(new, masked))


def _show(value: Any, masked: bool) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if masked or scan_text(text):
        return MASK
    flat = " ".join(text.split())
    return flat if len(flat) <= VALUE_CHARS else flat[: VALUE_CHARS - 3] + "..."


def _secret(body: Any) -> bool:
    """A Secret, whatever its apiVersion says: its values are never shown."""
    return is_secret(body) or (isinstance(body, dict) and body.get("kind") == "Secret")
