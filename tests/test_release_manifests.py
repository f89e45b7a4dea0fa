"""In-place manifest edits: the bytes after an edit are the bytes before with exactly the
changed scalar replaced (or the one entry added/removed), whatever the file's style."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasectl.errors import InputError
from releasectl.release.manifests import ManifestText

STYLED = (
    "---\n"
    "# a release written by hand, every style at once\n"
    "apiVersion: releasectl/v1\n"
    "kind: Release\n"
    "version: '2.0.0'        # single-quoted\n"
    'description: "Big one"\n'
    "date: 2026-01-05\n"
    "components:\n"
    "    redis:   {  version: 3  }     # odd spacing inside the braces\n"
    "    api:\n"
    '        version: "2.0.0"\n'
    "        requires:\n"
    "            redis: '>=3'\n"
    "    web: {version: 1.0.0,\n"
    "          requires: {api: '>=2.0.0'}}\n"
    "notes: |\n"
    "    line one\n"
    "    line two\n"
    "...\n"
)


def replaced(before: str, old: str, new: str) -> str:
    assert before.count(old) == 1, f"{old!r} must be unique in the fixture"
    return before.replace(old, new)


@pytest.mark.parametrize(
    ("path", "value", "old", "new"),
    [
        (("version",), "2.1.0", "version: '2.0.0'", "version: '2.1.0'"),
        (("description",), "It's: done", 'description: "Big one"', 'description: "It\'s: done"'),
        (("date",), "2026-02-01", "date: 2026-01-05", "date: 2026-02-01"),
        (("components", "redis", "version"), 4, "version: 3  }", "version: 4  }"),
        (("components", "api", "version"), "2.1.0", 'version: "2.0.0"', 'version: "2.1.0"'),
        (("components", "web", "version"), "1.1.0", "version: 1.0.0,", "version: 1.1.0,"),
        (
            ("components", "api", "requires", "redis"),
            ">=4",
            "redis: '>=3'",
            "redis: '>=4'",
        ),
    ],
)
def test_set_scalar_changes_only_that_scalar(
    path: tuple[str, ...], value: str | int, old: str, new: str
) -> None:
    text = ManifestText(STYLED, "x.yaml")
    assert text.set_scalar(path, value) is True
    assert text.text == replaced(STYLED, old, new)


def test_plain_scalar_that_would_misread_gets_quoted_in_its_place() -> None:
    text = ManifestText("a: x\nb: {c: y}\n", "x.yaml")
    text.set_scalar(("a",), "a: b # c")  # plain would read as a mapping plus a comment
    text.set_scalar(("b", "c"), "p, q")  # a comma ends a plain scalar in a flow mapping
    text.set_scalar(("b", "c"), "p, q")  # unchanged the second time
    assert text.text == 'a: "a: b # c"\nb: {c: "p, q"}\n'
    assert text.data() == {"a": "a: b # c", "b": {"c": "p, q"}}


def test_number_like_text_stays_text() -> None:
    text = ManifestText("v: '1'\nw: x\n", "x.yaml")
    text.set_scalar(("v",), 2)  # quoted before: stays quoted, stays a string
    text.set_scalar(("w",), "1.5")  # would read as a float if left plain
    assert text.text == "v: '2'\nw: \"1.5\"\n"


def test_crlf_bom_and_block_scalars_survive(tmp_path: Path) -> None:
    raw = "\ufeffversion: 1.0.0\r\nnotes: |\r\n  one\r\n  two\r\n# tail\r\n".encode()
    path = tmp_path / "r.yaml"
    path.write_bytes(raw)
    text = ManifestText.read(path, "r.yaml")
    text.set_scalar(("version",), "1.0.1")
    text.write(path)
    assert path.read_bytes() == raw.replace(b"1.0.0", b"1.0.1")


def test_block_scalar_replaced_in_its_own_style() -> None:
    text = ManifestText(STYLED, "x.yaml")
    text.set_scalar(("notes",), "first\nsecond\n")
    assert text.text == replaced(
        STYLED, "notes: |\n    line one\n    line two\n", "notes: |\n    first\n    second\n"
    )


def test_insert_follows_the_siblings_indentation_and_style() -> None:
    text = ManifestText(STYLED, "x.yaml")
    text.insert(("components", "api"), "extra", "1")
    text.insert((), "upgrades_from", ">=1.0.0,<2.0.0", after="date", style='"')
    text.insert(("components", "web"), "note", "x")  # flow mapping: before the brace
    expected = replaced(
        STYLED, "date: 2026-01-05\n", 'date: 2026-01-05\nupgrades_from: ">=1.0.0,<2.0.0"\n'
    )
    expected = replaced(
        expected, "            redis: '>=3'\n", "            redis: '>=3'\n        extra: \"1\"\n"
    )
    expected = replaced(expected, "{api: '>=2.0.0'}}", "{api: '>=2.0.0'}, note: x}")
    assert text.text == expected


def test_insert_block_component_uses_the_files_indent_step() -> None:
    before = "components:\n    a:\n        version: 1\n# trailing comment\n"
    text = ManifestText(before, "x.yaml")
    text.insert(("components",), "b", {"version": 2})
    assert text.text == (
        "components:\n    a:\n        version: 1\n    b:\n        version: 2\n# trailing comment\n"
    )


def test_insert_into_flow_siblings_is_flow() -> None:
    before = "components:\n  a: {version: 1}  # one\n"
    text = ManifestText(before, "x.yaml")
    text.insert(("components",), "b", {"version": "1.0.0"})
    assert text.text == before + "  b: {version: 1.0.0}\n"


def test_remove_takes_the_whole_entry() -> None:
    text = ManifestText(STYLED, "x.yaml")
    assert text.remove((), "notes") is True
    assert text.remove((), "notes") is False
    assert text.remove(("components", "web"), "requires") is True
    assert text.remove(("components",), "api") is True  # a block value: up to its last line
    expected = replaced(STYLED, "notes: |\n    line one\n    line two\n", "")
    expected = replaced(
        expected,
        "    api:\n        version: \"2.0.0\"\n        requires:\n            redis: '>=3'\n",
        "",
    )
    expected = replaced(
        expected, "{version: 1.0.0,\n          requires: {api: '>=2.0.0'}}", "{version: 1.0.0}"
    )
    assert text.text == expected


def test_aliases_and_anchors_are_refused_with_their_place() -> None:
    text = ManifestText("base: &b {version: 1}\nother: *b\n", "x.yaml")
    with pytest.raises(InputError) as alias:
        text.set_scalar(("other", "version"), 2)
    assert "x.yaml:2: other" in str(alias.value)
    with pytest.raises(InputError, match="anchor"):
        text.set_scalar(("base", "version"), 2)


def test_missing_paths_and_non_scalars_are_located_errors() -> None:
    text = ManifestText(STYLED, "x.yaml")
    with pytest.raises(InputError, match=r"x\.yaml:\d+: components\.nope: not found"):
        text.set_scalar(("components", "nope", "version"), 1)
    with pytest.raises(InputError, match="expected a single value"):
        text.set_scalar(("components",), 1)
    with pytest.raises(InputError, match="already present"):
        text.insert(("components",), "redis", {"version": 1})
