"""Merge semantics of the emulated API server.

- JSON merge patch (RFC 7386): maps merge, `null` deletes, everything else replaces.
- Strategic merge patch, approximated: like a merge patch, except that lists whose items are
  all maps with a `name` (containers, env, volumes) merge item by item on `name`, as the real
  server does for its `patchMergeKey: name` lists.
- Server-side apply: the fields a manager applies are recorded as its set of field paths; a
  later apply by the same manager removes the fields it owned before and no longer applies
  (unless another manager owns them too), and a field another manager owns with a different
  value is a conflict unless the apply is forced. Named lists are `listType: map` keyed by
  `name`; every other list is atomic.
- Label selectors: equality (`a=b`, `a==b`, `a!=b`) and set based (`a in (x,y)`,
  `a notin (x)`, `a`, `!a`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

FieldPath = tuple[str, ...]  # "f:<key>" for a map key, "k:<name>" for a named list item

# Fields that identify an object or are kept by the server; never owned by a manager.
_UNOWNED: tuple[FieldPath, ...] = (
    ("f:apiVersion",),
    ("f:kind",),
    ("f:status",),
    ("f:metadata", "f:name"),
    ("f:metadata", "f:namespace"),
    ("f:metadata", "f:uid"),
    ("f:metadata", "f:resourceVersion"),
    ("f:metadata", "f:creationTimestamp"),
    ("f:metadata", "f:generation"),
    ("f:metadata", "f:managedFields"),
    ("f:metadata", "f:selfLink"),
)


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def named_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and isinstance(item.get("name"), str) for item in value)
    )


def strategic_merge(target: Any, patch: Any) -> Any:
    if isinstance(patch, dict):
        result = dict(target) if isinstance(target, dict) else {}
        for key, value in patch.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = strategic_merge(result.get(key), value)
        return result
    if named_list(patch) and (target is None or target == [] or named_list(target)):
        return _merge_named(target or [], patch, strategic_merge)
    return copy.deepcopy(patch)


def _merge_named(target: list[Any], patch: list[Any], merge: Any) -> list[Any]:
    items = [copy.deepcopy(item) for item in target]
    index = {item["name"]: i for i, item in enumerate(items)}
    for item in patch:
        if item.get("$patch") == "delete":
            items = [x for x in items if x["name"] != item["name"]]
            index = {x["name"]: i for i, x in enumerate(items)}
        elif item["name"] in index:
            items[index[item["name"]]] = merge(items[index[item["name"]]], item)
        else:
            index[item["name"]] = len(items)
            items.append(copy.deepcopy(item))
    return items


def apply_merge(target: Any, applied: Any) -> Any:
    """The object after an apply: applied values win, maps and named lists merge."""
    if isinstance(applied, dict):
        result = dict(target) if isinstance(target, dict) else {}
        for key, value in applied.items():
            result[key] = apply_merge(result.get(key), value)
        return result
    if named_list(applied) and (target is None or target == [] or named_list(target)):
        return _merge_named(target or [], applied, apply_merge)
    return copy.deepcopy(applied)


# --- field ownership ---------------------------------------------------------------------


def field_paths(obj: dict[str, Any], prefix: FieldPath = ()) -> set[FieldPath]:
    """The leaf fields of `obj` (maps recurse, named list items recurse, other lists are atomic)."""
    out: set[FieldPath] = set()
    for key, value in obj.items():
        path = (*prefix, f"f:{key}")
        if isinstance(value, dict) and value:
            out |= field_paths(value, path)
        elif named_list(value):
            for item in value:
                item_path = (*path, f"k:{item['name']}")
                out.add(item_path)
                out |= field_paths(item, item_path)
        else:
            out.add(path)
    return {p for p in out if not any(p[: len(u)] == u for u in _UNOWNED)}


_MISSING = object()


def get_path(obj: Any, path: FieldPath) -> Any:
    node = obj
    for seg in path:
        if seg.startswith("f:") and isinstance(node, dict):
            node = node.get(seg[2:], _MISSING)
        elif seg.startswith("k:") and isinstance(node, list):
            found = [i for i in node if isinstance(i, dict) and i.get("name") == seg[2:]]
            node = found[0] if found else _MISSING
        else:
            return _MISSING
        if node is _MISSING:
            return _MISSING
    return node


def delete_path(obj: dict[str, Any], path: FieldPath) -> None:
    """Remove the field at `path`, then the maps and lists that became empty (never `obj`)."""
    chain: list[Any] = [obj]  # chain[i] is the container that holds path[i]
    for seg in path[:-1]:
        node = get_path(chain[-1], (seg,))
        if not isinstance(node, dict | list):
            return
        chain.append(node)
    _remove(chain[-1], path[-1])
    for i in range(len(chain) - 1, 0, -1):
        if chain[i]:
            break
        _remove(chain[i - 1], path[i - 1])


def _remove(container: Any, seg: str) -> None:
    if seg.startswith("f:") and isinstance(container, dict):
        container.pop(seg[2:], None)
    elif seg.startswith("k:") and isinstance(container, list):
        container[:] = [
            i for i in container if not (isinstance(i, dict) and i.get("name") == seg[2:])
        ]


def owned_prefix(path: FieldPath, fields: Iterable[FieldPath]) -> bool:
    """Whether some field in `fields` is `path`, below it, or above it."""
    for other in fields:
        n = min(len(other), len(path))
        if other[:n] == path[:n]:
            return True
    return False


def fields_v1(paths: Iterable[FieldPath]) -> dict[str, Any]:
    """Render field paths in the API's FieldsV1 format."""
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for seg in path:
            key = (
                seg
                if seg.startswith("f:")
                else "k:" + json.dumps({"name": seg[2:]}, separators=(",", ":"))
            )
            node = node.setdefault(key, {})
    return tree


def parse_fields_v1(tree: dict[str, Any], prefix: FieldPath = ()) -> set[FieldPath]:
    out: set[FieldPath] = set()
    for key, child in tree.items():
        if key == ".":
            continue
        if key.startswith("k:"):
            try:
                seg = "k:" + str(json.loads(key[2:]).get("name"))
            except (ValueError, AttributeError):
                continue
        elif key.startswith("f:"):
            seg = key
        else:
            continue
        path = (*prefix, seg)
        children = {k: v for k, v in child.items() if k != "."} if isinstance(child, dict) else {}
        if children:
            if seg.startswith("k:"):
                out.add(path)
            out |= parse_fields_v1(children, path)
        else:
            out.add(path)
    return out


# --- label selectors ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values  # "!=", "notin"


class SelectorError(ValueError):
    pass


_KEY = r"[A-Za-z0-9][A-Za-z0-9_./-]*"
_VALUE = r"[A-Za-z0-9_.-]*"
_NOT_EXISTS = re.compile(rf"^!\s*({_KEY})$")
_SET = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^)]*)\)$")
_EQ = re.compile(rf"^({_KEY})\s*(==|=|!=)\s*({_VALUE})$")
_EXISTS = re.compile(rf"^({_KEY})$")


def parse_selector(text: str) -> list[Requirement]:
    terms: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    out: list[Requirement] = []
    for raw in terms:
        term = raw.strip()
        if not term:
            continue
        if m := _NOT_EXISTS.match(term):
            out.append(Requirement(m.group(1), "!"))
        elif m := _SET.match(term):
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            out.append(Requirement(m.group(1), m.group(2), values))
        elif m := _EQ.match(term):
            op = "!=" if m.group(2) == "!=" else "="
            out.append(Requirement(m.group(1), op, (m.group(3),)))
        elif m := _EXISTS.match(term):
            out.append(Requirement(m.group(1), "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: {term!r}")
    return out


def selector_matches(requirements: list[Requirement], labels: dict[str, str] | None) -> bool:
    return all(r.matches(labels or {}) for r in requirements)
