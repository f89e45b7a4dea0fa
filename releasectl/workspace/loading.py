"""The one seam between YAML documents and models: validation errors name file, line, field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from releasectl.errors import InputError, Location, ReleasectlError, bundle, excerpt
from releasectl.workspace import yamlio

M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], doc: yamlio.Document, *, prefix: yamlio.FieldPath = ()) -> M:
    """Validate `doc.data` (or the part of it at `prefix`) as `model`."""
    data: Any = doc.data
    for key in prefix:
        data = data[key]
    if data is None:
        data = {}
    if not prefix and not isinstance(data, dict):
        raise not_a_mapping(doc.display, data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise located_errors(exc, doc, prefix) from None


def located_errors(
    exc: ValidationError, doc: yamlio.Document, prefix: yamlio.FieldPath = ()
) -> ReleasectlError:
    errors: list[ReleasectlError] = []
    data = doc.data
    for prefix_key in prefix:
        data = data[prefix_key]
    for err in exc.errors(include_url=False):
        loc = (*prefix, *_data_path(data, err["loc"]))
        errors.append(InputError(_message(err), location=doc.location(loc)))
    return bundle(errors)


def _data_path(data: Any, loc: tuple[int | str, ...]) -> yamlio.FieldPath:
    """Keep the parts of pydantic's `loc` that exist in the data (drop union member tags)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and str(part) in node:
            path.append(str(part))
            node = node[str(part)]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(node, dict) and not isinstance(part, int) and _is_field_name(part):
            path.append(str(part))  # a missing required field, or an unknown one
            break
    return tuple(path)


def _is_field_name(part: int | str) -> bool:
    text = str(part)
    return not any(ch in text for ch in "[]()") and text not in {"int", "str", "float", "bool"}


def _message(err: Any) -> str:
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "value_error" and msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        return f"{msg[0].lower()}{msg[1:]}, got {excerpt(err.get('input'))}"
    inp = err.get("input")
    if kind.endswith("_type") and not isinstance(inp, dict | list):
        return f"{msg[0].lower()}{msg[1:]}, got {excerpt(inp)}"
    return msg[0].lower() + msg[1:]


def not_a_mapping(display: str, data: object) -> InputError:
    """A file that parsed as something other than a mapping: its content is never quoted (it
    may be any file at all, say a password file behind a link)."""
    kinds = {str: "text", list: "a list", int: "a number", float: "a number", bool: "a boolean"}
    found = kinds.get(type(data), "no mapping")
    return InputError(
        f"expected a mapping at the top of the file, found {found}", location=Location(display, 1)
    )


def load_model(model: type[M], path: Path, display: str) -> tuple[M, yamlio.Document]:
    doc = yamlio.load(path, display)
    if not isinstance(doc.data, dict):
        raise not_a_mapping(display, doc.data)
    return validate(model, doc), doc


def validate_fast(model: type[M], path: Path, display: str) -> M:
    """Validate a small file loaded without line numbers; reload with them on error."""
    data = yamlio.load_fast(path, display)
    if data is not None and not isinstance(data, dict):
        raise not_a_mapping(display, data)
    try:
        return model.model_validate(data or {})
    except ValidationError:
        doc = yamlio.load(path, display)
        return validate(model, doc)
