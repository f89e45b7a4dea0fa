"""Bounded YAML loading with line numbers, stable dumping and round-trip editing.

Every YAML file releasectl reads goes through `load`: it refuses files that are too large,
too deeply nested or that expand aliases past a node budget (the "billion laughs"), never
constructs Python objects from tags, and remembers the line of every field so that a
validation error can say ``releases/1.1.0.yaml:7: components.auth-service.version``.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from releasectl.errors import InputError, Location

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 200_000

FieldPath = tuple[str | int, ...]
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:str", "!!str"})


class Document:
    """A loaded YAML document: plain data plus the line of each field.

    A document loaded by the fast path keeps its text and finds the lines on first use
    (`lines`, `line_of`): only a document that has a problem to report pays for them.
    """

    __slots__ = ("_lines", "_source", "data", "display")

    def __init__(
        self,
        display: str,
        data: Any,
        lines: dict[FieldPath, int] | None = None,
        *,
        source: str | None = None,
    ) -> None:
        self.display = display
        self.data = data
        self._lines = {} if lines is None else lines
        self._source = source if lines is None else None

    @property
    def lines(self) -> dict[FieldPath, int]:
        if self._source is not None:
            text, self._source = self._source, None
            found = _event_lines(text)
            if found is None:
                # the fast path accepted this text, so the round-trip loader does too
                with contextlib.suppress(InputError):
                    found = _slow_loads(text, self.display).lines
            self._lines = found or {}
        return self._lines

    def line_of(self, loc: FieldPath) -> int | None:
        """The line of the longest prefix of `loc` that the document knows."""
        lines = self.lines
        for end in range(len(loc), -1, -1):
            line = lines.get(loc[:end])
            if line is not None:
                return line
        return None

    def __repr__(self) -> str:
        return f"Document({self.display!r}, {self.data!r})"

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
    """Load one YAML document from `path` with line numbers (found on first use)."""
    display = display or str(path)
    return loads(read_text(path, display, max_bytes), display)


def loads(text: str, display: str) -> Document:
    """Parse one YAML document. Plain documents take the libyaml path and get their line
    numbers only when asked; anything unusual (tags, merge keys, timestamps, non-text keys,
    errors, bounds) goes through the round-trip loader, which reports it with its line."""
    data = fast_data(text)
    if data is not UNSUITED:
        return Document(display, data, source=text)
    return _slow_loads(text, display)


# Text that may hold a tag (`!x`, `!!str`) or a merge key: left to the round-trip loader,
# whose rules for them (refuse most tags, keep `!!str`) the libyaml path does not share.
_UNSUITED_TEXT = re.compile(r"(?:^|[\s\[{,:?-])!|<<")
UNSUITED = object()
_PLAIN_SCALARS = (str, bool, int, float, type(None))
_fast_loader = threading.local()


def fast_data(text: str) -> Any:
    """The document's plain data from libyaml (ruamel.yaml.clib), or `UNSUITED` when the
    round-trip loader must decide (see `loads`)."""
    if _UNSUITED_TEXT.search(text):
        return UNSUITED
    yaml = getattr(_fast_loader, "yaml", None)
    if yaml is None:
        from ruamel.yaml import YAML

        yaml = _fast_loader.yaml = YAML(typ="safe", pure=False)
    try:
        data = yaml.load(text)
    except Exception:  # any problem: the round-trip loader finds it again and locates it
        return UNSUITED
    return data if _is_plain(data) else UNSUITED


def _is_plain(data: Any) -> bool:
    """Only mappings with text keys, lists and YAML 1.2 core scalars, within the bounds."""
    budget = MAX_NODES
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0 or depth > MAX_DEPTH:
            return False
        if isinstance(node, dict):
            for key, value in node.items():
                if type(key) is not str:
                    return False
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
        elif not isinstance(node, _PLAIN_SCALARS):
            return False  # dates, timestamps, bytes, sets
    return True


def _event_lines(text: str) -> dict[FieldPath, int] | None:
    """The lines the round-trip loader would record, from libyaml's parse events (a tenth of
    its time): a mapping key's line, and a sequence item's first line (for an alias, the line
    of the anchored node, whose fields keep their lines). None without libyaml."""
    import importlib

    try:
        from ruamel.yaml import events

        parser: Any = importlib.import_module("_ruamel_yaml").CParser(text)
    except ImportError:  # pragma: no cover - ruamel.yaml.clib is a dependency on CPython
        return None
    lines: dict[FieldPath, int] = {}
    anchors: dict[str, tuple[FieldPath, int]] = {}

    def node(path: FieldPath) -> int:
        """Consume one node's events; record its fields' lines; return its first line."""
        event = parser.get_event()
        line: int = event.start_mark.line + 1
        if isinstance(event, events.AliasEvent):
            source, line = anchors[event.anchor]
            for known, value in list(lines.items()):  # the anchored node's fields, here too
                if known[: len(source)] == source and len(known) > len(source):
                    lines[(*path, *known[len(source) :])] = value
            return line
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            anchors[anchor] = (path, line)
        if isinstance(event, events.MappingStartEvent):
            while not isinstance(parser.peek_event(), events.MappingEndEvent):
                key_event = parser.get_event()
                key = str(key_event.value)
                lines[(*path, key)] = key_event.start_mark.line + 1
                node((*path, key))
            parser.get_event()
        elif isinstance(event, events.SequenceStartEvent):
            index = 0
            while not isinstance(parser.peek_event(), events.SequenceEndEvent):
                lines[(*path, index)] = node((*path, index))
                index += 1
            parser.get_event()
        return line

    try:
        parser.get_event()  # stream start
        if isinstance(parser.peek_event(), events.StreamEndEvent):
            return lines
        parser.get_event()  # document start
        node(())
    except Exception:  # anything unexpected: the round-trip loader decides
        return None
    return lines


def _slow_loads(text: str, display: str) -> Document:
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
    """The data of a small, usually valid file (libyaml when available), without line
    numbers; a caller that finds a problem calls `load` again to get them."""
    text = read_text(path, display, max_bytes)
    data = fast_data(text)
    if data is UNSUITED:
        return _slow_loads(text, display).data  # raises with a line number
    return data


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
