"""Bounded YAML loading with line numbers, stable dumping and round-trip editing.

Every YAML file releasectl reads goes through `load`: it refuses files that are too large,
too deeply nested or that expand aliases past a node budget (the "billion laughs"), never
constructs Python objects from tags, and remembers the line of every field so that a
validation error can say ``releases/1.1.0.yaml:7: components.auth-service.version``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from releasectl.errors import InputError, Location

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 200_000

FieldPath = tuple[str | int, ...]
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:str", "!!str"})


@dataclass(slots=True)
class Document:
    """A loaded YAML document: plain data plus the line of each field."""

    display: str
    data: Any
    lines: dict[FieldPath, int] = field(default_factory=dict)

    def line_of(self, loc: FieldPath) -> int | None:
        """The line of the longest prefix of `loc` that the document knows."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None

    def location(self, loc: FieldPath) -> Location:
        return Location(self.display, self.line_of(loc), dotted(loc) or None)


def dotted(loc: FieldPath) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif parts:
            parts.append(f".{item}")
        else:
            parts.append(str(item))
    return "".join(parts)


def read_text(path: Path, display: str, max_bytes: int = MAX_BYTES) -> str:
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise InputError("file not found", location=Location(display)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", location=Location(display)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", location=Location(display)) from None
    if len(raw) > max_bytes:
        raise InputError(f"file is larger than {max_bytes} bytes", location=Location(display))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 ({exc.reason} at byte {exc.start})", location=Location(display)
        ) from None
    return text


def load(path: Path, display: str | None = None, *, max_bytes: int = MAX_BYTES) -> Document:
    """Load one YAML document from `path` with line numbers (ruamel round-trip loader)."""
    display = display or str(path)
    return loads(read_text(path, display, max_bytes), display)


def loads(text: str, display: str) -> Document:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(f"invalid YAML: {problem}", location=Location(display, line)) from None
    except YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", location=Location(display)) from None
    except RecursionError:
        raise InputError(
            f"nesting deeper than {MAX_DEPTH} levels", location=Location(display)
        ) from None
    doc = Document(display, None)
    doc.data = _Converter(doc).convert(raw, (), 0)
    return doc


class _Converter:
    """Turns ruamel's round-trip nodes into plain data, recording lines and enforcing bounds."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.nodes = 0

    def convert(self, node: Any, path: FieldPath, depth: int) -> Any:
        from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar

        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InputError(
                f"document expands to more than {MAX_NODES} nodes (alias expansion?)",
                location=Location(self.doc.display),
            )
        if depth > MAX_DEPTH:
            line = self.doc.line_of(path)
            raise InputError(
                f"nesting deeper than {MAX_DEPTH} levels",
                location=Location(self.doc.display, line, dotted(path) or None),
            )
        tag = getattr(getattr(node, "tag", None), "value", None)
        if tag is not None and isinstance(node, CommentedMap | CommentedSeq):
            raise InputError(f"YAML tag {tag!r} is not allowed", location=self.doc.location(path))
        if isinstance(node, CommentedMap):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if not isinstance(key, str | int | float | bool) or key is None:
                    raise InputError(
                        "mapping keys must be plain scalars",
                        location=Location(self.doc.display, node.lc.line + 1, dotted(path) or None),
                    )
                skey = str(key)
                child = (*path, skey)
                try:
                    self.doc.lines[child] = node.lc.key(key)[0] + 1
                except (KeyError, TypeError):
                    self.doc.lines[child] = node.lc.line + 1
                out[skey] = self.convert(value, child, depth + 1)
            return out
        if isinstance(node, CommentedSeq):
            items: list[Any] = []
            for index, value in enumerate(node):
                child = (*path, index)
                try:
                    self.doc.lines[child] = node.lc.item(index)[0] + 1
                except (KeyError, TypeError):
                    self.doc.lines[child] = node.lc.line + 1
                items.append(self.convert(value, child, depth + 1))
            return items
        if isinstance(node, TaggedScalar):
            if node.tag.value in _PLAIN_TAGS:
                return str(node.value)
            raise InputError(
                f"YAML tag {node.tag.value!r} is not allowed",
                location=self.doc.location(path),
            )
        return _plain_scalar(node)


def _plain_scalar(node: Any) -> Any:
    # ruamel's round-trip scalars subclass the builtins; hand out the builtins themselves so
    # that pydantic and json see ordinary values.
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    # dates and timestamps: keep their YAML spelling
    return str(node)


def load_fast(path: Path, display: str, *, max_bytes: int = MAX_BYTES) -> Any:
    """Load a small, usually valid file quickly (libyaml when available).

    Used for the many `migration.yaml` files of a catalogue. The result has no line numbers;
    a caller that finds a problem calls `load` again to get them.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    text = read_text(path, display, max_bytes)
    try:
        data = YAML(typ="safe", pure=False).load(text)
    except (YAMLError, RecursionError):
        return load(path, display, max_bytes=max_bytes).data  # raises with a line number
    _check_bounds(data, display)
    return data


def _check_bounds(data: Any, display: str) -> None:
    budget = MAX_NODES
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise InputError(
                f"document expands to more than {MAX_NODES} nodes (alias expansion?)",
                location=Location(display),
            )
        if depth > MAX_DEPTH:
            raise InputError(f"nesting deeper than {MAX_DEPTH} levels", location=Location(display))
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def dump(data: Any) -> str:
    """Stable, human-friendly YAML for generated files (sorted keys, block style)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = True  # type: ignore[assignment]
    yaml.width = 4096
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


def dump_all(documents: Iterator[Any] | list[Any]) -> str:
    return "---\n".join(dump(d) for d in documents)


def roundtrip(path: Path, display: str) -> Any:
    """Load for editing: comments, key order and quoting survive `roundtrip_dumps`."""
    from ruamel.yaml.error import MarkedYAMLError

    text = read_text(path, display)
    loads(text, display)  # bounds and a located error first
    try:
        return _rt_yaml().load(text)
    except MarkedYAMLError as exc:  # pragma: no cover - loads() already raised
        raise InputError(f"invalid YAML: {exc.problem}", location=Location(display)) from None


def roundtrip_dumps(data: Any) -> str:
    buf = io.StringIO()
    _rt_yaml().dump(data, buf)
    return buf.getvalue()


def _rt_yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml
