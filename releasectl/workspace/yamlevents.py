"""Plain YAML documents built straight from libyaml's events: the data and every field's line
in one pass.

ruamel.yaml's safe loader parses in C but builds in Python, resolving each scalar through its
versioned resolver: 140 us for a four-line Redis `up.yaml`, plus 100 us more to find the
lines from the events when a check asks for one. Most workspace files are small and plain:
mappings with text keys, lists, quoted strings, words, small integers. `build` makes those
from the parser's events directly (about 45 us with the lines) and declines everything else,
which then takes the loaders it took before (`releasectl.workspace.yamlio`):

- a plain scalar becomes what YAML 1.2's core schema (ruamel's default) makes of it only in
  the cases decided here: `true`/`false` in their three spellings, `null`/`~`/empty, a
  decimal integer without leading zeros or underscores, and text that starts with none of
  `-+.0123456789<=` and is none of those words. A plain scalar that starts with one of those
  characters (a float, an octal, a timestamp, `<<`, `=`) declines the document;
- quoted and block scalars are text; a tag, an anchor or alias, a `%YAML` or `%TAG`
  directive, a key that is not text, a duplicate key, a second document, more than
  `MAX_NODES` nodes or `MAX_DEPTH` levels decline it.

tests/test_yamlevents.py compares `build` with ruamel's safe loader on a corpus of scalars
and documents: each either gives the same data or declines.
"""

from __future__ import annotations

import re
from typing import Any

from releasectl.workspace.yamlbounds import MAX_DEPTH, MAX_NODES

FieldPath = tuple[str | int, ...]
Built = tuple[Any, dict[FieldPath, int]]

_WORDS: dict[str, Any] = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
    "null": None,
    "Null": None,
    "NULL": None,
    "~": None,
    "": None,
}
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_UNDECIDED_START = frozenset("-+.0123456789<=")


class _Decline(Exception):
    """The document is not one `build` decides."""


def _plain(value: str) -> Any:
    if value in _WORDS:
        return _WORDS[value]
    if value[0] in _UNDECIDED_START:
        if _DECIMAL.fullmatch(value):
            return int(value)
        raise _Decline
    return value


def build(text: str) -> Built | None:
    """(data, the line of each field) of a plain one-document text, or None (see above)."""
    import importlib

    try:
        from ruamel.yaml import events

        parser: Any = importlib.import_module("_ruamel_yaml").CParser(text)
    except ImportError:  # pragma: no cover - ruamel.yaml.clib is a dependency on CPython
        return None
    scalar, mapping_start, mapping_end = (
        events.ScalarEvent,
        events.MappingStartEvent,
        events.MappingEndEvent,
    )
    sequence_start, sequence_end = events.SequenceStartEvent, events.SequenceEndEvent
    lines: dict[FieldPath, int] = {}
    budget = [MAX_NODES]

    def node(path: FieldPath, depth: int) -> tuple[Any, int]:
        """One node's data and first line, its fields' lines recorded."""
        event = parser.get_event()
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_DEPTH:
            raise _Decline
        kind = type(event)
        if event.anchor is not None or (kind is not scalar and event.tag is not None):
            raise _Decline
        line: int = event.start_mark.line + 1
        if kind is scalar:
            if event.tag is not None:
                raise _Decline
            value: str = event.value
            return (value if event.style else _plain(value)), line
        if kind is mapping_start:
            data: dict[str, Any] = {}
            while True:
                key_event = parser.get_event()
                key_kind = type(key_event)
                if key_kind is mapping_end:
                    return data, line
                if key_kind is not scalar or key_event.anchor is not None or key_event.tag:
                    raise _Decline
                key = key_event.value if key_event.style else _plain(key_event.value)
                if type(key) is not str or key in data:
                    raise _Decline
                where = (*path, key)
                lines[where] = key_event.start_mark.line + 1
                data[key] = node(where, depth + 1)[0]
        if kind is sequence_start:
            items: list[Any] = []
            while type(parser.peek_event()) is not sequence_end:
                where = (*path, len(items))
                item, lines[where] = node(where, depth + 1)
                items.append(item)
            parser.get_event()
            return items, line
        raise _Decline  # an alias

    try:
        parser.get_event()  # stream start
        if type(parser.peek_event()) is events.StreamEndEvent:
            return None, lines
        start = parser.get_event()
        if start.version is not None or start.tags:
            return None
        data, _ = node((), 0)
        parser.get_event()  # document end
        if type(parser.get_event()) is not events.StreamEndEvent:
            return None  # a second document: the loaders say what they make of it
    except (_Decline, RecursionError):
        return None
    except Exception:  # a syntax error: the loaders report it with its line
        return None
    return data, lines
