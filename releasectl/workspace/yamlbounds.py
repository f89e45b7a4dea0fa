"""The bounds of a YAML document, measured from libyaml's events before anything is built.

Building a document in Python costs about ten times more than parsing it in C, and the
round-trip loader (comments, lines) ten times more again. So `yamlio` first counts what a
large document holds from its events: its nodes, with every alias counted as the nodes it
repeats (the "billion laughs" expand to nothing here), and its depth; it stops at the first
bound passed, so this costs at most `MAX_NODES` events whatever the document claims. The
round-trip loader then only ever sees documents of up to `SLOW_MAX_NODES` nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from releasectl.errors import InputError, Location, clip

MAX_DEPTH = 64
MAX_NODES = 50_000  # nodes a document may expand to, aliases included
PRECHECK_BYTES = 16 * 1024  # larger documents are measured from their events first
SLOW_MAX_NODES = 20_000  # the largest document the round-trip loader takes


@dataclass(slots=True)
class Shape:
    """What libyaml's events say of a document before anything is built."""

    nodes: int = 0  # aliases expanded
    unusual: bool = False  # a tag or a merge key: the round-trip loader decides
    unusual_line: int | None = None


def shape_of(text: str, display: str) -> Shape:
    """Count the document's nodes (an alias counts the nodes of what it repeats) and its
    depth from libyaml's events, refusing it as soon as a bound is passed: the cost is at most
    `MAX_NODES` events, whatever the document would expand to."""
    import importlib

    from ruamel.yaml import events
    from ruamel.yaml.error import YAMLError

    try:
        parser: Any = importlib.import_module("_ruamel_yaml").CParser(text)
    except ImportError:  # pragma: no cover - ruamel.yaml.clib is a dependency on CPython
        return Shape(unusual=True)
    shape = Shape()
    anchors: dict[str, int] = {}
    open_nodes: list[tuple[int, str | None]] = []  # (nodes before it, its anchor)
    starts = (events.MappingStartEvent, events.SequenceStartEvent)
    ends = (events.MappingEndEvent, events.SequenceEndEvent)
    try:
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, events.ScalarEvent):
                shape.nodes += 1
                if event.anchor is not None:
                    anchors[event.anchor] = 1
                if event.tag is not None or (event.value == "<<" and event.style is None):
                    _unusual(shape, event)
            elif isinstance(event, starts):
                shape.nodes += 1
                if event.tag is not None:
                    _unusual(shape, event)
                open_nodes.append((shape.nodes - 1, event.anchor))
                if len(open_nodes) > MAX_DEPTH:
                    raise InputError(
                        f"nesting deeper than {MAX_DEPTH} levels",
                        location=Location(display, event.start_mark.line + 1),
                    )
            elif isinstance(event, ends):
                before, anchor = open_nodes.pop()
                if anchor is not None:
                    anchors[anchor] = shape.nodes - before
            elif isinstance(event, events.AliasEvent):
                shape.nodes += anchors.get(event.anchor, 1)
            else:
                continue
            if shape.nodes > MAX_NODES:
                raise InputError(
                    f"document expands to more than {MAX_NODES:,} nodes (alias expansion?)",
                    location=Location(display, event.start_mark.line + 1),
                )
    except YAMLError as exc:
        raise yaml_error(exc, display) from None
    return shape


def _unusual(shape: Shape, event: Any) -> None:
    if not shape.unusual:
        shape.unusual = True
        shape.unusual_line = event.start_mark.line + 1


def yaml_error(exc: BaseException, display: str) -> InputError:
    from ruamel.yaml.error import MarkedYAMLError

    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        return InputError(f"invalid YAML: {clip(problem, 160)}", location=Location(display, line))
    return InputError(f"invalid YAML: {clip(str(exc), 160)}", location=Location(display))
