"""`yamlevents.build` gives what ruamel.yaml's safe loader gives, with the lines `yamlio` found
before, or declines: never other data."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from ruamel.yaml import YAML

from releasectl.workspace import yamlevents, yamlio
from releasectl.workspace.yamlbounds import MAX_DEPTH, MAX_NODES

SCALARS = [
    "x",
    "hello world",
    "on",
    "off",
    "yes",
    "no",
    "y",
    "n",
    "Yes",
    "ON",
    "true",
    "True",
    "TRUE",
    "false",
    "False",
    "FALSE",
    "tRUE",
    "null",
    "Null",
    "NULL",
    "~",
    "",
    "nil",
    "None",
    "0",
    "-0",
    "+0",
    "7",
    "+7",
    "-7",
    "42",
    "1000000000000000000000",
    "007",
    "0o17",
    "0x1F",
    "0b101",
    "1_000",
    "1:30",
    "1.5",
    "-1.5",
    ".5",
    "1e3",
    "1E-3",
    ".inf",
    "-.inf",
    ".nan",
    "2026-12-01",
    "2026-12-01T10:00:00Z",
    "<<",
    "=",
    "-",
    "+",
    "a:b",
    "http://example.com/x",
    "${env:X}",
    "c0000:schema",
    "a b c",
    "é",
    "日本",
    "@at",
    "`tick",
    "%pct",
    "x#y",
    "x - y",
    "-x",
    "+x",
    ".x",
    "0x",
    "1a",
    "12abc",
]
QUOTED = ['"1"', "'2'", '"true"', "'null'", '""', '"a\\tb"', "'it''s'", '"\\u00e9"']


def safe(text: str) -> Any:
    return YAML(typ="safe", pure=False).load(text)


@pytest.mark.parametrize("scalar", SCALARS + QUOTED)
def test_scalars_are_what_the_safe_loader_makes_or_declined(scalar: str) -> None:
    for text in (f"key: {scalar}\n", f"- {scalar}\n", f"{scalar}\n"):
        built = yamlevents.build(text)
        if built is None:
            continue
        expected = safe(text)
        assert built[0] == expected and type(built[0]) is type(expected), text


def test_common_scalars_are_decided() -> None:
    decided = {
        "x": "x", "on": "on", "yes": "yes", "true": True, "FALSE": False, "~": None,
        "": None, "42": 42, "-7": -7, "c0000:schema": "c0000:schema", '"1"': "1",
    }  # fmt: skip
    for scalar, value in decided.items():
        built = yamlevents.build(f"k: {scalar}\n")
        assert built is not None, scalar
        assert built[0] == {"k": value}
    for scalar in ("1.5", "007", "0x1F", "2026-12-01", ".inf", "1_000"):
        assert yamlevents.build(f"k: {scalar}\n") is None, scalar


DOCUMENTS = [
    'ops:\n  - set: {key: "a:b", value: "1"}\n  - hset: {key: h, fields: {a: "1", b: on}}\n',
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  labels: {a: b}\n"
    "data:\n  k: |\n    text\n    more\n",
    "a:\n  - 1\n  - [2, 3]\n  - {b: c}\n  -\n    - nested\nd: >\n  folded\n  text\n",
    "",
    "---\n",
    "# only a comment\n",
    "a: 1\n# trailing\n",
    "list:\n- a\n- b\n",
    "empty: {}\nnone: []\nnull_value:\n",
]
DECLINED = [
    "a: &x 1\nb: *x\n",
    "a: !!str 1\n",
    "%YAML 1.1\n---\na: yes\n",
    "a: 1\n---\nb: 2\n",
    "a: 1\na: 2\n",
    "? [a, b]\n: c\n",
    "1: a\n",
    "true: a\n",
    "<<: {a: 1}\n",
    "a: [1\n",
    "a: 1.5\n",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_documents_match_data_and_lines(text: str) -> None:
    built = yamlevents.build(text)
    assert built is not None
    assert built[0] == safe(text)
    lines = yamlio._event_lines(text)
    assert lines is not None
    assert built[1] == lines[0]


@pytest.mark.parametrize("text", DECLINED)
def test_documents_declined(text: str) -> None:
    assert yamlevents.build(text) is None


def test_deep_and_large_documents_are_declined() -> None:
    deep = "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 2)) + "  " * 70 + "v\n"
    assert yamlevents.build(deep) is None
    many = "".join(f"k{i}: v\n" for i in range(MAX_NODES))
    assert yamlevents.build(many) is None


def test_mixed_documents_agree_with_the_safe_loader() -> None:
    """Every combination of a few keys and scalars, nested in maps and lists."""
    values = ["x", "42", "true", "~", '"q"', "on", "-3"]
    for a, b in itertools.product(values, repeat=2):
        text = f"top:\n  a: {a}\n  list:\n    - {b}\n    - {{inner: {a}}}\n"
        built = yamlevents.build(text)
        assert built is not None, text
        assert built[0] == safe(text), text


def test_loads_reports_errors_and_lines_as_before() -> None:
    doc = yamlio.loads("ops:\n  - set: {key: a}\n  - frob: {key: b}\n", "up.yaml")
    assert doc.line_of(("ops", 1, "frob")) == 3
    assert doc.location(("ops", 0)).line == 2
