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

from releasectl.errors import InputError, Location, clip
from releasectl.workspace import yamlevents
from releasectl.workspace.yamlbounds import (
    MAX_DEPTH,
    MAX_NODES,
    PRECHECK_BYTES,
    SLOW_MAX_NODES,
    Shape,
    shape_of,
    yaml_error,
)

MAX_BYTES = 4 * 1024 * 1024
MAX_BYTES_ENV = "RELEASECTL_MAX_YAML_BYTES"

FieldPath = tuple[str | int, ...]
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:str", "!!str"})


class Document:
    """A loaded YAML document: plain data plus the line of each field.

    A document loaded by the fast path keeps its text and finds the lines on first use
    (`lines`, `line_of`): only a document that has a problem to report pays for them. Its
    aliases are not expanded there: `line_of` looks a field under an alias up in the node the
    alias repeats (so a document with many aliases costs its size, not its expansion).
    """

    __slots__ = ("_aliases", "_lines", "_source", "data", "display")

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
        self._aliases: dict[FieldPath, FieldPath] = {}
        self._source = source if lines is None else None

    @property
    def lines(self) -> dict[FieldPath, int]:
        """The line of each field found in the text (under an alias: see `line_of`)."""
        if self._source is not None:
            text, self._source = self._source, None
            found = _event_lines(text)
            if found is None:
                # the fast path accepted this text, so the round-trip loader does too
                with contextlib.suppress(InputError):
                    self._lines = _slow_loads(text, self.display).lines
            else:
                self._lines, self._aliases = found
        return self._lines

    def line_of(self, loc: FieldPath) -> int | None:
        """The line of the longest prefix of `loc` that the document knows."""
        lines = self.lines
        for end in range(len(loc), -1, -1):
            line = self._known(loc[:end], lines, MAX_DEPTH)
            if line is not None:
                return line
        return None

    def _known(self, path: FieldPath, lines: dict[FieldPath, int], hops: int) -> int | None:
        line = lines.get(path)
        if line is not None or not self._aliases or hops <= 0:
            return line
        for end in range(len(path) - 1, 0, -1):  # the alias this path lies under, if any
            source = self._aliases.get(path[:end])
            if source is not None:
                return self._known((*source, *path[end:]), lines, hops - 1)
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


def read_text(path: Path, display: str, max_bytes: int | None = None) -> str:
    """A YAML file's text, read through `releasectl.util.safefiles` (no link out of the
    workspace, no device, no hard link) and capped at `max_bytes` (default `max_yaml_bytes()`)."""
    from releasectl.util import safefiles

    if max_bytes is None:
        raw = safefiles.read_bytes(path, display, limit=max_yaml_bytes(), setting=MAX_BYTES_ENV)
    else:
        raw = safefiles.read_bytes(path, display, limit=max_bytes)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 ({exc.reason} at byte {exc.start})", location=Location(display)
        ) from None
    return text


def max_yaml_bytes() -> int:
    """The cap on a YAML document: `RELEASECTL_MAX_YAML_BYTES`, default 4 MiB."""
    from releasectl.util.safefiles import byte_limit

    return byte_limit(MAX_BYTES_ENV, MAX_BYTES)


def load(path: Path, display: str | None = None, *, max_bytes: int | None = None) -> Document:
    """Load one YAML document from `path` with line numbers (found on first use)."""
    display = display or str(path)
    return loads(read_text(path, display, max_bytes), display)


def loads(text: str, display: str) -> Document:
    """Parse one YAML document. Plain documents take the libyaml path and get their line
    numbers only when asked; anything unusual (tags, merge keys, timestamps, non-text keys,
    errors, bounds) goes through the round-trip loader, which reports it with its line.

    Bounds come first, from libyaml's events, before anything is built: a document past
    `PRECHECK_BYTES` is refused if it expands (aliases included) past `MAX_NODES` nodes or
    nests deeper than `MAX_DEPTH`; and the round-trip loader, ten times slower, only takes
    documents of up to `SLOW_MAX_NODES` nodes."""
    shape = shape_of(text, display) if len(text) > PRECHECK_BYTES else None
    built = _built(text, shape)
    if built is not None:
        return Document(display, built[0], built[1])
    data, error = _fast_load(text, shape)
    if data is not UNSUITED:
        return Document(display, data, source=text)
    if shape is not None and shape.nodes > SLOW_MAX_NODES:
        raise _too_unusual(error, shape, text, display)
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
    shape = None
    if len(text) > PRECHECK_BYTES:
        try:
            shape = shape_of(text, "")
        except InputError:
            return UNSUITED  # `loads` reports it with its line
    built = _built(text, shape)
    return _fast_load(text, shape)[0] if built is None else built[0]


def _built(text: str, shape: Shape | None) -> yamlevents.Built | None:
    """Data and lines from one pass over libyaml's events, where `yamlevents` decides."""
    if shape.unusual if shape is not None else _UNSUITED_TEXT.search(text):
        return None
    return yamlevents.build(text)


def _fast_load(text: str, shape: Shape | None) -> tuple[Any, BaseException | None]:
    """(data or UNSUITED, the exception libyaml's loader raised, if any)."""
    if shape.unusual if shape is not None else _UNSUITED_TEXT.search(text):
        return UNSUITED, None
    yaml = getattr(_fast_loader, "yaml", None)
    if yaml is None:
        from ruamel.yaml import YAML

        yaml = _fast_loader.yaml = YAML(typ="safe", pure=False)
    try:
        data = yaml.load(text)
    except Exception as exc:  # any problem: the round-trip loader finds it again and locates it
        return UNSUITED, exc
    return (data if _is_plain(data) else UNSUITED), None


def _too_unusual(error: BaseException | None, shape: Shape, text: str, display: str) -> InputError:
    """Why a document too large for the round-trip loader is refused."""
    from ruamel.yaml.error import YAMLError

    if isinstance(error, YAMLError):
        return yaml_error(error, display)
    if isinstance(error, RecursionError):
        return InputError(f"nesting deeper than {MAX_DEPTH} levels", location=Location(display))
    if isinstance(error, ValueError) and "digits" in str(error):
        return _unreadable_number(text, display, error)
    return InputError(
        f"YAML tags, merge keys (<<), timestamps and non-text keys are allowed only in "
        f"documents of up to {SLOW_MAX_NODES:,} nodes; this one has {shape.nodes:,}",
        location=Location(display, shape.unusual_line),
    )


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


def _event_lines(text: str) -> tuple[dict[FieldPath, int], dict[FieldPath, FieldPath]] | None:
    """The lines the round-trip loader would record, from libyaml's parse events (a tenth of
    its time): a mapping key's line, and a sequence item's first line (for an alias, the line
    of the anchored node). Fields under an alias are not copied: the second dict maps each
    alias's path to the anchored node's path, where `Document.line_of` finds them. None
    without libyaml."""
    import importlib

    try:
        from ruamel.yaml import events

        parser: Any = importlib.import_module("_ruamel_yaml").CParser(text)
    except ImportError:  # pragma: no cover - ruamel.yaml.clib is a dependency on CPython
        return None
    lines: dict[FieldPath, int] = {}
    aliases: dict[FieldPath, FieldPath] = {}
    anchors: dict[str, tuple[FieldPath, int]] = {}

    def node(path: FieldPath) -> int:
        """Consume one node's events; record its fields' lines; return its first line."""
        event = parser.get_event()
        line: int = event.start_mark.line + 1
        if isinstance(event, events.AliasEvent):
            source, line = anchors[event.anchor]
            aliases[path] = source
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
            return lines, aliases
        parser.get_event()  # document start
        node(())
    except Exception:  # anything unexpected: the round-trip loader decides
        return None
    return lines, aliases


def _slow_loads(text: str, display: str) -> Document:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        raw = yaml.load(text)
    except YAMLError as exc:
        raise yaml_error(exc, display) from None
    except RecursionError:
        raise InputError(
            f"nesting deeper than {MAX_DEPTH} levels", location=Location(display)
        ) from None
    except ValueError as exc:  # a number Python will not read (over 4,300 digits)
        raise _unreadable_number(text, display, exc) from None
    doc = Document(display, None)
    doc.data = _Converter(doc).convert(raw, (), 0)
    return doc


def _unreadable_number(text: str, display: str, exc: ValueError) -> InputError:
    digits = re.search(r"\d{1000,}", text)
    if digits is None:
        return InputError(f"invalid YAML: {clip(str(exc), 160)}", location=Location(display))
    line = text.count("\n", 0, digits.start()) + 1
    return InputError(
        f"a number of {digits.end() - digits.start():,} digits: too large to read (quote it "
        "if it is text)",
        location=Location(display, line),
    )


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
                f"document expands to more than {MAX_NODES:,} nodes (alias expansion?)",
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


def load_fast(path: Path, display: str, *, max_bytes: int | None = None) -> Any:
    """The data of a small, usually valid file (libyaml when available), without line
    numbers; a caller that finds a problem calls `load` again to get them."""
    return loads(read_text(path, display, max_bytes), display).data


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
