"""Bad YAML cannot stall the runner: aliases, size, node count and depth are bounded before
anything is built, and finding the line of an error costs the document's size, not its
expansion."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from releasectl.errors import InputError
from releasectl.workspace import yamlio
from tests.conftest import run_cli


def with_aliases(fields: int, aliases: int) -> str:
    anchor = "".join(f"    f{i}: value-{i}\n" for i in range(fields))
    items = "".join("    - *base\n" for _ in range(aliases))
    return f"x-shared:\n  base: &base\n{anchor}  copies:\n{items}"


def timed(example: Path, *args: str) -> tuple[float, str, int]:
    started = time.process_time()
    result = run_cli(*args, cwd=example)
    return time.process_time() - started, result.err, result.code


def test_many_aliases_in_releasectl_yaml_validate_quickly(example: Path) -> None:
    # 900 aliases of a 50-field mapping: 45,900 nodes, within the bounds; the unknown field
    # makes validate look its line up (which copied every aliased field once per alias)
    path = example / "releasectl.yaml"
    path.write_text(path.read_text() + with_aliases(50, 900))
    seconds, err, code = timed(example, "validate")
    assert code == 1
    line = path.read_text().splitlines().index("x-shared:") + 1
    assert f"releasectl.yaml:{line}: x-shared: unknown field" in err
    assert seconds < 2.0, seconds


def test_an_alias_bomb_is_refused_from_its_events(example: Path) -> None:
    path = example / "releasectl.yaml"
    path.write_text(path.read_text() + with_aliases(50, 3000))  # 150,000 nodes, 80 KB
    seconds, err, code = timed(example, "validate")
    assert code == 1
    assert "releasectl.yaml:" in err and "expands to more than 50,000 nodes" in err
    assert seconds < 2.0, seconds


def test_a_field_under_an_alias_has_the_line_of_the_node_it_repeats() -> None:
    text = "base: &b\n  x: 1\n  inner:\n    y: 2\nlist:\n  - *b\n  - z: 3\nnested:\n  ref: *b\n"
    doc = yamlio.loads(text, "f.yaml")
    reference = yamlio._slow_loads(text, "f.yaml")
    for path in [("list", 0, "x"), ("list", 0, "inner", "y"), ("nested", "ref", "inner", "y")]:
        assert doc.line_of(path) == reference.line_of(path), path
    assert doc.line_of(("list", 0, "inner", "y")) == 4
    assert doc.line_of(("list", 1, "z")) == 7


def big(nodes: int) -> str:
    return "".join(f"key{i}: {i}\n" for i in range(nodes // 2))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (big(60_000), "expands to more than 50,000 nodes"),
        (big(40_000) + "tagged: !custom x\n", "YAML tags, merge keys (<<), timestamps"),
        (big(40_000) + "when: 2026-09-01\n", "allowed only in documents of up to 20,000 nodes"),
        (big(40_000) + "broken: [1, 2\n", "invalid YAML"),
        (big(40_000) + "key7: again\n", "duplicate key"),
        (
            "a:\n" + "".join("  " * i + f"- l{i}:\n" for i in range(1, 80)) + "x" * 17000,
            "nesting deeper",
        ),
    ],
)
def test_large_documents_are_refused_in_bounded_time(text: str, message: str) -> None:
    started = time.process_time()
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
        yamlio.loads(text, "big.yaml")
    assert raised.value.location is not None and raised.value.location.path == "big.yaml"
    assert time.process_time() - started < 1.5


def test_large_plain_documents_still_load() -> None:
    text = big(40_000) + "message: 'Hello !'\n"  # a '!' in a string is not a tag
    doc = yamlio.loads(text, "big.yaml")
    assert doc.data["message"] == "Hello !" and doc.data["key19999"] == 19999
    assert doc.line_of(("key19999",)) == 20000
