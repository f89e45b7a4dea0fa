"""yamlio's libyaml path gives the same data, lines and errors as the round-trip loader, and
leaves to it everything it does not handle the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from releasectl.errors import InputError
from releasectl.workspace import yamlio

REPO = Path(__file__).resolve().parent.parent

PLAIN = [
    "a: 1\nb: [x, y]\nc: {d: true, e: null}\n",
    "# comment\nlist:\n  - one\n  - two: 2\n    three: 3.5\n  -\n    - nested\n",
    "text: |\n  multi\n  line\nfolded: >\n  a\n  b\nquoted: 'it''s'\n",
    "anchors:\n  base: &b {x: 1, y: [1, 2]}\n  copy: *b\n",
    "items:\n - &i {a: 1, b: [2]}\n - *i\n - x\nflow: {k: [a, {b: c}], 'q k': 1}\n",
    "octal: 0o17\nhex: 0x1f\nyes: yes\nver: 1.10\nneg: -3\ninf: .inf\n",
    "",
    "just a scalar\n",
    "- 1\n- two\n",
    "k: 'Hello!'\nurl: 'http://x'\n",
]
UNSUITED = [
    "d: 2026-09-01\n",  # a timestamp: the round-trip loader keeps its spelling
    "a: !!str 12\n",  # tags
    "a: !custom x\n",
    "base: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\n",  # merge keys
    "1: one\n",  # a key that is not text
    "b: !!binary aGVsbG8=\n",
]
BROKEN = [
    ("a: 1\na: 2\n", 2),  # duplicate key
    ("a: [1, 2\nb: 3\n", None),
    ("a:\n  - b\n c: d\n", 3),
]


def slow(text: str) -> yamlio.Document:
    return yamlio._slow_loads(text, "f.yaml")


@pytest.mark.parametrize("text", PLAIN)
def test_plain_documents_take_the_fast_path(text: str) -> None:
    assert yamlio.fast_data(text) is not yamlio.UNSUITED
    fast = yamlio.loads(text, "f.yaml")
    reference = slow(text)
    assert fast.data == reference.data
    # found on first use from libyaml's events, the same as the round-trip loader's (fields
    # under an alias are looked up in the node it repeats, not copied)
    assert yamlio._event_lines(text) is not None
    for path, line in reference.lines.items():
        assert fast.line_of(path) == line, path
    assert set(fast.lines) <= set(reference.lines)


@pytest.mark.parametrize("text", UNSUITED)
def test_unusual_documents_go_to_the_round_trip_loader(text: str) -> None:
    assert yamlio.fast_data(text) is yamlio.UNSUITED
    try:
        expected: Any = slow(text).data
    except InputError as exc:
        with pytest.raises(InputError) as raised:
            yamlio.loads(text, "f.yaml")
        assert str(raised.value) == str(exc)
    else:
        assert yamlio.loads(text, "f.yaml").data == expected


@pytest.mark.parametrize(("text", "line"), BROKEN)
def test_errors_keep_their_line(text: str, line: int | None) -> None:
    with pytest.raises(InputError) as raised:
        yamlio.loads(text, "f.yaml")
    assert raised.value.location is not None
    assert raised.value.location.path == "f.yaml"
    if line is not None:
        assert raised.value.location.line == line


def test_bounds_still_hold() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefg":
        prev = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, "
        bomb += f"*{prev}, *{prev}, *{prev}, *{prev}]\n"
    with pytest.raises(InputError, match="nodes"):
        yamlio.loads(bomb, "bomb.yaml")
    deep = "a: " + "[" * 100 + "]" * 100 + "\n"
    with pytest.raises(InputError, match="nesting"):
        yamlio.loads(deep, "deep.yaml")


def test_the_example_workspace_reads_the_same_both_ways() -> None:
    files = [REPO / "releasectl.yaml", *sorted((REPO / "releases").glob("*.yaml"))]
    assert files
    for path in files:
        text = path.read_text()
        fast = yamlio.loads(text, "f.yaml")
        reference = slow(text)
        assert fast.data == reference.data, path
        assert fast.lines == reference.lines, path
        assert fast.location(("components",)) == reference.location(("components",))


def test_a_document_made_with_lines_keeps_them() -> None:
    doc = yamlio.Document("x.yaml", {"a": 1}, {("a",): 7})
    assert doc.line_of(("a", "b")) == 7
    assert yamlio.Document("x.yaml", None).line_of(("a",)) is None
