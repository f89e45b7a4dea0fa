"""The objects of a Kubernetes migration (a snapshot of the component at one version): loading
with file and line of every object, the static checks of `validate`, the labels releasectl
adds, and Secret values resolved from `${env:VAR}` references at apply time."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from releasectl import secrets
from releasectl.clients.kubernetes import (
    COMPONENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    VERSION_ANNOTATION,
)
from releasectl.errors import InputError, Location, ReleasectlError, bundle, flatten
from releasectl.workspace import yamlio
from releasectl.workspace.yamlbounds import PRECHECK_BYTES, shape_of

if TYPE_CHECKING:
    from releasectl.workspace.catalogue import Migration

Obj = dict[str, Any]

OBJECT_SUFFIXES = (".yaml", ".yml", ".json")
META_FILE = "migration.yaml"
ENV_REF = re.compile(r"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$")
# DNS-1123 subdomain: what the API accepts as the name of most kinds
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SECRET_FIELDS = ("data", "stringData")


@dataclass(frozen=True, slots=True)
class Declared:
    """One object as a migration declares it, with the document it came from."""

    body: Obj
    doc: yamlio.Document
    offset: int = 0  # lines of the file before this document

    @property
    def api_version(self) -> str:
        return str(self.body["apiVersion"])

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def namespace(self, default: str | None) -> str | None:
        return (self.body.get("metadata") or {}).get("namespace") or default

    def where(self, *field: str | int) -> Location:
        return _located(self.doc, self.offset, tuple(field))

    def describe(self) -> str:
        return f"{self.kind}/{self.name}"


def object_files(migration: Migration) -> list[str]:
    return [
        rel
        for rel in migration.files
        if rel.endswith(OBJECT_SUFFIXES) and rel != META_FILE and not rel.startswith("tests/")
    ]


def split_documents(text: str) -> list[tuple[int, str]]:
    """The documents of a multi-document YAML text, each with the 0-based line it starts on.

    A document separator is a `---` line at column 0 (as in `kubectl apply -f`); block scalars
    are indented, so a separator never falls inside one.
    """
    docs: list[tuple[int, str]] = []
    start, current = 0, list[str]()
    for index, line in enumerate(text.split("\n")):
        if line.startswith("---") and (len(line) == 3 or line[3] in " \t"):
            docs.append((start, "\n".join(current)))
            start, current = index, [line[3:]]
        elif line.rstrip() == "...":
            docs.append((start, "\n".join(current)))
            start, current = index + 1, []
        else:
            current.append(line)
    docs.append((start, "\n".join(current)))
    return [(s, chunk) for s, chunk in docs if chunk.strip()]


def load_file(path: Any, display: str) -> list[tuple[yamlio.Document, int]]:
    """Every non-empty YAML document of one file, with the number of lines before it."""
    text = yamlio.read_text(path, display)
    if len(text) > PRECHECK_BYTES:
        shape_of(text, display)  # the bounds hold for the file, not only for each document
    out: list[tuple[yamlio.Document, int]] = []
    for start, chunk in split_documents(text):
        try:
            doc = yamlio.loads(chunk, display)
        except InputError as exc:  # give the line in the file, not in the document
            where = exc.location
            if where is not None and where.line is not None:
                exc.location = Location(where.path, where.line + start, where.field)
            raise
        if doc.data is not None:
            out.append((doc, start))
    return out


def load_snapshot(migration: Migration) -> tuple[list[Declared], list[ReleasectlError]]:
    """The objects of a migration and the problems found while reading them."""
    objects: list[Declared] = []
    errors: list[ReleasectlError] = []
    for rel in object_files(migration):
        display = f"{migration.rel}/{rel}"
        try:
            docs = load_file(migration.path / rel, display)
        except ReleasectlError as exc:
            errors.extend(flatten(exc))
            continue
        for doc, offset in docs:
            problems = _shape_problems(doc, offset)
            if problems:
                errors.extend(problems)
            else:
                objects.append(Declared(doc.data, doc, offset))
    errors.extend(_duplicates(objects))
    for obj in objects:
        errors.extend(_content_problems(obj))
    errors.sort(key=_position)
    return objects, errors


def _position(error: ReleasectlError) -> tuple[str, int]:
    where = error.location
    return ("", 0) if where is None else (where.path, where.line or 0)


def _shape_problems(doc: yamlio.Document, offset: int) -> list[ReleasectlError]:
    data = doc.data
    if not isinstance(data, dict):
        return [InputError("expected a Kubernetes object (a mapping)", location=_at(doc, offset))]
    errors: list[ReleasectlError] = []
    for key in ("apiVersion", "kind"):
        if not isinstance(data.get(key), str) or not data.get(key):
            errors.append(
                InputError(
                    f"missing `{key}` (every object needs one)", location=_at(doc, offset, key)
                )
            )
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        errors.append(
            InputError(
                "missing `metadata.name` (every object needs one)",
                location=_at(doc, offset, "metadata", "name"),
            )
        )
    elif not NAME_RE.match(name) or len(name) > 253:
        errors.append(
            InputError(
                f"{name!r} is not a valid object name (lowercase letters, digits, '-' and '.')",
                location=_at(doc, offset, "metadata", "name"),
            )
        )
    if data.get("kind") == "List" or str(data.get("kind", "")).endswith("List"):
        errors.append(
            InputError(
                "lists are not supported: write one object per document",
                location=_at(doc, offset),
            )
        )
    return errors


def _at(doc: yamlio.Document, offset: int, *field: str) -> Location:
    return _located(doc, offset, field)


def _located(doc: yamlio.Document, offset: int, field: yamlio.FieldPath) -> Location:
    """The field's line in the file, or the first line of its document when it is missing."""
    line = doc.line_of(field)
    if line is None and doc.lines:
        line = min(doc.lines.values())
    return Location(
        doc.display, None if line is None else line + offset, yamlio.dotted(field) or None
    )


def _duplicates(objects: list[Declared]) -> list[ReleasectlError]:
    seen: dict[tuple[str, str, str | None, str], Declared] = {}
    errors: list[ReleasectlError] = []
    for obj in objects:
        key = (obj.group, obj.kind, obj.namespace(None), obj.name)
        first = seen.get(key)
        if first is None:
            seen[key] = obj
            continue
        other = first.where("metadata", "name")
        errors.append(
            InputError(
                f"duplicate object {obj.describe()} (first declared at {other.path}:{other.line})",
                location=obj.where("metadata", "name"),
            )
        )
    return errors


def _content_problems(obj: Declared) -> list[ReleasectlError]:
    errors: list[ReleasectlError] = []
    meta = obj.body["metadata"]
    for part in ("labels", "annotations"):
        values = meta.get(part)
        if values is None:
            continue
        if not isinstance(values, dict):
            errors.append(InputError("must be a mapping", location=obj.where("metadata", part)))
            continue
        for key, value in values.items():
            if not isinstance(value, str):
                errors.append(
                    InputError(
                        "must be a string (quote it)", location=obj.where("metadata", part, key)
                    )
                )
    if obj.kind == "ConfigMap" and obj.api_version == "v1":
        data = obj.body.get("data")
        if data is not None and not isinstance(data, dict):
            errors.append(InputError("must be a mapping", location=obj.where("data")))
        for key, value in (data or {}).items() if isinstance(data, dict) else ():
            if not isinstance(value, str):
                errors.append(
                    InputError(
                        "ConfigMap values must be strings (quote it)",
                        location=obj.where("data", key),
                    )
                )
    if obj.kind == "Secret" and obj.api_version == "v1":
        errors.extend(_secret_problems(obj))
    return errors


def _secret_problems(obj: Declared) -> list[ReleasectlError]:
    """Every value of a Secret must be exactly a `${env:VAR}` reference. The message never
    repeats the value: it may be the very secret we refuse to store."""
    errors: list[ReleasectlError] = []
    for part in SECRET_FIELDS:
        values = obj.body.get(part)
        if values is None:
            continue
        if not isinstance(values, dict):
            errors.append(InputError("must be a mapping", location=obj.where(part)))
            continue
        for key, value in values.items():
            if not (isinstance(value, str) and ENV_REF.match(value)):
                errors.append(
                    InputError(
                        f"Secret {obj.name}: a literal value is not allowed in the repository; "
                        "write a ${env:VAR} reference (resolved at apply time) or use an "
                        "ExternalSecret",
                        location=obj.where(part, key),
                    )
                )
    return errors


# --- what releasectl applies -----------------------------------------------------------------


def labelled(body: Obj, component: str, version: int, namespace: str | None) -> Obj:
    """A copy of `body` with releasectl's labels, version annotation and namespace."""
    out = dict(body)
    meta = dict(out.get("metadata") or {})
    meta["labels"] = {
        **(meta.get("labels") or {}),
        MANAGED_BY_LABEL: MANAGED_BY,
        COMPONENT_LABEL: component,
    }
    meta["annotations"] = {**(meta.get("annotations") or {}), VERSION_ANNOTATION: str(version)}
    if namespace is not None:
        meta["namespace"] = meta.get("namespace") or namespace
    out["metadata"] = meta
    return out


def is_secret(obj: Declared | Obj) -> bool:
    body = obj.body if isinstance(obj, Declared) else obj
    return body.get("kind") == "Secret" and body.get("apiVersion") == "v1"


def env_refs(obj: Declared) -> list[tuple[str, str, str]]:
    """(field, key, variable) of each `${env:VAR}` value of a Secret."""
    out: list[tuple[str, str, str]] = []
    for part in SECRET_FIELDS:
        for key, value in (obj.body.get(part) or {}).items():
            match = ENV_REF.match(str(value))
            if match:
                out.append((part, str(key), match.group(1)))
    return out


def resolve_secrets(
    objects: list[Declared], environ: Mapping[str, str] | None = None
) -> dict[int, Obj]:
    """Secret bodies with every `${env:VAR}` replaced by the base64 of the variable's value
    (all under `data`; `stringData` would be write-only and could not be verified).

    Every missing variable is reported at once, before anything is changed. Resolved values
    are registered for redaction. Returns {index in `objects`: resolved body}.
    """
    env = os.environ if environ is None else environ
    missing: list[ReleasectlError] = []
    out: dict[int, Obj] = {}
    for index, obj in enumerate(objects):
        if not is_secret(obj):
            continue
        data: dict[str, str] = {}
        for part, key, var in env_refs(obj):
            value = env.get(var)
            if value is None:
                missing.append(
                    InputError(
                        f"Secret {obj.name}: environment variable {var} is not set "
                        f"(needed for {part}.{key})",
                        location=obj.where(part, key),
                    )
                )
                continue
            encoded = base64.b64encode(value.encode()).decode()
            secrets.register(value)
            secrets.register(encoded)
            data[key] = encoded
        body = {k: v for k, v in obj.body.items() if k not in SECRET_FIELDS}
        if data:
            body["data"] = data
        out[index] = body
    if missing:
        raise bundle(missing)
    return out
