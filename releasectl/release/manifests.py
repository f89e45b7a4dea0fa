"""In-place editing of YAML manifests: the diff of an edit is exactly the changed scalar.

ruamel's round-trip dumper keeps comments, key order and quoting, but it re-flows multi-line
flow mappings, re-indents sequences, re-aligns comments, drops ``---`` and turns CRLF into LF,
so a dumped file differs from the original in places nobody edited. Reviewers read the diff of
a version bump, so this editor does not dump: it asks ruamel's composer where each node starts
and ends (exact character offsets) and splices the new scalar into the original text. Every
other byte -- comments, indentation, flow/block style, quoting, line endings, a byte-order
mark -- is left alone.

Each edit is checked: the new text must load (bounded, through `yamlio.loads`) to exactly the
old data with the edit applied, or the edit is refused; nothing is written half-right.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from releasectl.errors import InputError, Location
from releasectl.models.base import SEMVER_RE
from releasectl.models.release import Release
from releasectl.util.fsutil import atomic_write
from releasectl.workspace import Workspace, yamlio
from releasectl.workspace.loading import validate

BOM = "\ufeff"
Scalar = str | int


@dataclass(frozen=True, slots=True)
class _Found:
    node: Any  # ruamel Node
    parent: Any | None  # the MappingNode holding it
    key: Any | None  # its key node
    in_flow: bool  # inside a flow collection: plain scalars may not hold ,[]{}


class ManifestText:
    """The text of one YAML file and the edits made to it."""

    def __init__(self, text: str, display: str, *, bom: bool = False) -> None:
        self.display = display
        self.bom = bom
        self.text = text
        self.expected: Any = yamlio.loads(text, display).data  # bounds + located errors first
        self.newline = "\r\n" if "\r\n" in text else "\n"

    @classmethod
    def read(cls, path: Path, display: str) -> ManifestText:
        text = yamlio.read_text(path, display)
        with path.open("rb") as fh:
            bom = fh.read(3) == BOM.encode()
        return cls(text, display, bom=bom)

    def data(self) -> Any:
        """The plain data of the current text (what the models see)."""
        return copy.deepcopy(self.expected)

    def encoded(self) -> bytes:
        return ((BOM if self.bom else "") + self.text).encode("utf-8")

    def write(self, path: Path) -> None:
        atomic_write(path, self.encoded())

    # --- edits ----------------------------------------------------------------------------

    def set_scalar(self, path: yamlio.FieldPath, value: Scalar) -> bool:
        """Replace the scalar at `path` in place; its quoting style is kept. Returns whether
        anything changed."""
        found = self._find(path)
        node = found.node
        if type(node).__name__ != "ScalarNode":
            raise self._error(path, "expected a single value here, found a mapping or list")
        rendered = _render(value, node.style, found.in_flow, self._block_indent(node))
        start, end = node.start_mark.index, node.end_mark.index
        if self.text[start:end] == rendered:
            return False
        new_text = self.text[:start] + rendered + self.text[end:]
        expected = copy.deepcopy(self.expected)
        # A quoted number is text to YAML, and stays text.
        _assign(expected, path, str(value) if node.style else value)
        self._commit(new_text, expected, path)
        return True

    def insert(
        self,
        mapping: yamlio.FieldPath,
        key: str,
        value: Scalar | dict[str, Scalar],
        *,
        after: str | None = None,
        style: str | None = None,
    ) -> None:
        """Add `key: value` to the mapping at `mapping`, after the key `after` (default: last).
        `style` quotes a scalar value (`"` or `'`; None: plain where that reads back the same).

        In a block mapping the entry gets its own line at the siblings' indentation (a mapping
        value is written in flow style when the siblings' values are); in a flow mapping it is
        inserted before the closing brace.
        """
        found = self._find(mapping)
        node = found.node
        if type(node).__name__ != "MappingNode":
            raise self._error(mapping, "expected a mapping")
        if any(k.value == key for k, _ in node.value):
            raise self._error((*mapping, key), "already present")
        entries = node.value
        anchor_entry = entries[-1] if entries else None
        if after is not None:
            for k, v in entries:
                if k.value == after:
                    anchor_entry = (k, v)
        flow = bool(node.flow_style) or found.in_flow
        if flow or anchor_entry is None:
            new_text = self._insert_flow(node, key, value, style, anchor_entry)
        else:
            new_text = self._insert_block(node, anchor_entry, key, value, style)
        if style and not isinstance(value, dict):
            value = str(value)
        expected = copy.deepcopy(self.expected)
        target = _get(expected, mapping)
        target[key] = value
        if after is not None and after in target:
            reordered = {}
            for k, v in target.items():
                if k != key:
                    reordered[k] = v
                if k == after:
                    reordered[key] = value
            target.clear()
            target.update(reordered)
        self._commit(new_text, expected, (*mapping, key))

    def remove(self, mapping: yamlio.FieldPath, key: str) -> bool:
        """Remove `key` from the mapping at `mapping` (its whole line in block style)."""
        found = self._find(mapping)
        node = found.node
        entry = next(((k, v) for k, v in node.value if k.value == key), None)
        if entry is None:
            return False
        knode, vnode = entry
        text = self.text
        if node.flow_style or found.in_flow:
            start, end = knode.start_mark.index, vnode.end_mark.index
            tail = re.match(r"\s*,\s*", text[end:])
            if tail:
                end += tail.end()
            else:
                head = re.search(r",\s*$", text[:start])
                if head:
                    start = head.start()
            new_text = text[:start] + text[end:]
        else:
            start = knode.start_mark.index - knode.start_mark.column
            end = self._line_after(vnode)
            new_text = text[:start] + text[end:]
        expected = copy.deepcopy(self.expected)
        del _get(expected, mapping)[key]
        self._commit(new_text, expected, (*mapping, key))
        return True

    # --- internals ------------------------------------------------------------------------

    def _compose(self) -> Any:
        from ruamel.yaml import YAML

        root = YAML(typ="rt").compose(self.text)
        if root is None:
            raise InputError("the file is empty", location=Location(self.display, 1))
        return root

    def _find(self, path: yamlio.FieldPath) -> _Found:
        node = self._compose()
        parent = key_node = None
        in_flow = False
        walked: list[str | int] = []
        for part in path:
            walked.append(part)
            kind = type(node).__name__
            in_flow = in_flow or bool(getattr(node, "flow_style", False))
            if kind == "MappingNode":
                entry = next(((k, v) for k, v in node.value if k.value == str(part)), None)
                if entry is None:
                    raise self._error(tuple(walked), "not found")
                key_node, child = entry
                if child.start_mark.index < key_node.end_mark.index:
                    raise self._error(
                        tuple(walked), "is a YAML alias; edit the anchored value by hand"
                    )
                parent, node = node, child
            elif kind == "SequenceNode" and isinstance(part, int) and part < len(node.value):
                parent, key_node, node = None, None, node.value[part]
            else:
                raise self._error(tuple(walked), "not found")
            if getattr(node, "anchor", None):
                raise self._error(
                    tuple(walked),
                    "carries a YAML anchor (&); edit it by hand so aliases stay right",
                )
        return _Found(node, parent, key_node, in_flow or bool(getattr(node, "flow_style", False)))

    def _line_after(self, node: Any) -> int:
        """Where the line after `node`'s last character starts. A block collection's own end
        mark sits at the next token (perhaps on the next entry's line), so its last leaf
        decides."""
        last = node
        while not getattr(last, "flow_style", True) and last.value:
            last = last.value[-1][1] if type(last).__name__ == "MappingNode" else last.value[-1]
        end = int(last.end_mark.index)
        if last.end_mark.column == 0 and end > 0 and self.text[end - 1] == "\n":
            return end  # block scalars end at the start of a line
        eol = self.text.find("\n", end)
        return len(self.text) if eol < 0 else eol + 1

    def _block_indent(self, node: Any) -> int:
        """Column of a block scalar's content (for replacing `|` and `>` scalars)."""
        start = node.start_mark.index
        first = self.text.find("\n", start) + 1
        line = self.text[first : self.text.find("\n", first)] if first else ""
        content = len(line) - len(line.lstrip(" "))
        return content or node.start_mark.column + 2

    def _insert_block(
        self,
        node: Any,
        anchor_entry: tuple[Any, Any],
        key: str,
        value: Scalar | dict[str, Scalar],
        style: str | None,
    ) -> str:
        knode, vnode = anchor_entry
        column = knode.start_mark.column
        text = self.text
        end = self._line_after(vnode)
        # A block value's span runs on over trailing blank lines and comments; the new entry
        # goes before those that sit at its own level or further out (they introduce what
        # follows), and after deeper ones (they belong to the previous entry).
        floor = text.rfind("\n", 0, vnode.start_mark.index) + 1
        while end > floor:
            line_start = text.rfind("\n", 0, end - 1) + 1
            line = text[line_start:end].rstrip("\r\n")
            stripped = line.lstrip(" ")
            blank = not stripped
            outer_comment = stripped.startswith("#") and len(line) - len(stripped) <= column
            if line_start <= floor or not (blank or outer_comment):
                break
            end = line_start
        nl = self.newline
        prefix = "" if end == 0 or text[end - 1] == "\n" else nl
        if isinstance(value, dict):
            sibling_flow = [bool(getattr(v, "flow_style", False)) for _, v in node.value]
            if any(sibling_flow) or not node.value:
                line = f"{' ' * column}{_key(key)}: {_flow_mapping(value)}{nl}"
            else:
                step = self._indent_step(node)
                inner = "".join(
                    f"{' ' * (column + step)}{_key(k)}: {_render(v, None, False, 0)}{nl}"
                    for k, v in value.items()
                )
                line = f"{' ' * column}{_key(key)}:{nl}{inner}"
        else:
            line = f"{' ' * column}{_key(key)}: {_render(value, style, False, 0)}{nl}"
        return text[:end] + prefix + line + text[end:]

    def _indent_step(self, node: Any) -> int:
        """The file's mapping indentation: how far a nested block mapping's keys sit from their
        parent key (2 unless the file says otherwise)."""
        for _, value in node.value:
            if type(value).__name__ == "MappingNode" and not value.flow_style and value.value:
                parent_col = node.value[0][0].start_mark.column
                step = int(value.value[0][0].start_mark.column) - int(parent_col)
                if step > 0:
                    return step
        found = re.findall(r"^( +)\S", self.text, re.MULTILINE)
        widths = sorted({len(w) for w in found})
        return widths[0] if widths else 2

    def _insert_flow(
        self,
        node: Any,
        key: str,
        value: Scalar | dict[str, Scalar],
        style: str | None,
        anchor_entry: tuple[Any, Any] | None,
    ) -> str:
        if not node.flow_style:
            raise InputError(
                f"cannot add {key!r} to an empty block mapping; edit the file by hand",
                location=Location(self.display, node.start_mark.line + 1),
            )
        rendered = (
            _flow_mapping(value) if isinstance(value, dict) else _render(value, style, True, 0)
        )
        entry = f"{_key(key)}: {rendered}"
        text = self.text
        if anchor_entry is None:
            close = node.end_mark.index - 1  # the '}'
            return text[:close] + entry + text[close:]
        at = anchor_entry[1].end_mark.index
        return text[:at] + ", " + entry + text[at:]

    def _commit(self, new_text: str, expected: Any, path: yamlio.FieldPath) -> None:
        try:
            got = yamlio.loads(new_text, self.display).data
        except InputError as exc:
            raise self._error(path, f"the edit would break the file ({exc.message})") from None
        if got != expected:
            raise self._error(path, "cannot edit this value in place; edit the file by hand")
        self.text = new_text
        self.expected = expected

    def _error(self, path: yamlio.FieldPath, message: str) -> InputError:
        line = yamlio.loads(self.text, self.display).line_of(path)
        return InputError(message, location=Location(self.display, line, yamlio.dotted(path)))


# --- release create: a new manifest from the newest one --------------------------------


@dataclass(frozen=True, slots=True)
class CreatedRelease:
    version: str
    manifest: str  # path relative to the workspace
    source: str  # the release it was made from
    upgrades_from: str
    date: str


SCHEMA_DIRECTIVE = "# yaml-language-server: $schema="


def schema_comment(workspace: Workspace, manifest: Path) -> str:
    """The first line that points an editor (the YAML language server: VS Code, Neovim, ...)
    at the release schema in the workspace's schemas/, relative to the manifest."""
    import os

    target = workspace.root / "schemas" / "release.schema.json"
    return SCHEMA_DIRECTIVE + Path(os.path.relpath(target, manifest.parent)).as_posix()


def today_utc() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def create_release(
    workspace: Workspace, version: str, *, message: str | None = None, today: str | None = None
) -> CreatedRelease:
    """Write releases/VERSION.yaml from the newest manifest, comments kept.

    `version`, `date` (today, UTC) and `upgrades_from` (the release it was made from and its
    patches, ``>=FROM,<VERSION``) are set; `description` becomes `message`, and without one
    the copied description and `notes` are dropped rather than left describing the old release.
    """
    if not SEMVER_RE.match(version):
        raise InputError(f"{version!r} is not a semantic version (X.Y.Z)")
    rel = f"{workspace.spec.releases}/{version}.yaml"
    path = workspace.root / rel
    if path.exists() or version in workspace.release_versions:
        raise InputError(f"release {version} already exists: {rel}")
    latest = workspace.latest_release()
    if latest is None:
        raise InputError(
            f"no release manifest in {workspace.spec.releases}/ to start from "
            "(write the first one by hand or run `releasectl init`)"
        )
    import semver

    if semver.Version.parse(version).compare(latest.version) <= 0:
        raise InputError(
            f"release {version} is not greater than the newest release {latest.version} "
            f"({latest.rel})"
        )
    date = today or today_utc()
    upgrades_from = f">={latest.version},<{version}"
    text = ManifestText.read(latest.path, latest.rel)
    data = text.data()
    text.set_scalar(("version",), version)
    if message is not None:
        _set_or_insert(text, data, "description", message, after="version")
    else:
        text.remove((), "description")
    text.remove((), "notes")
    after = "description" if message is not None else "version"
    _set_or_insert(text, data, "date", date, after=after, style='"')
    _set_or_insert(text, data, "upgrades_from", upgrades_from, after=None, style='"')
    if SCHEMA_DIRECTIVE not in text.text:
        text.text = schema_comment(workspace, path) + text.newline + text.text
    doc = yamlio.loads(text.text, rel)
    manifest = validate(Release, doc)
    if manifest.version != version:  # pragma: no cover - set_scalar checked the edit
        raise InputError("internal: version was not set", location=Location(rel))
    if path.exists():  # created while we were editing
        raise InputError(f"release {version} already exists: {rel}")
    text.write(path)
    workspace.__dict__.pop("release_versions", None)
    return CreatedRelease(version, rel, latest.version, upgrades_from, date)


def _set_or_insert(
    text: ManifestText,
    data: dict[str, Any],
    key: str,
    value: str,
    *,
    after: str | None,
    style: str | None = None,
) -> None:
    if key in data and isinstance(data[key], str | int | float) and not isinstance(data[key], bool):
        text.set_scalar((key,), value)
    elif key in data:  # null or a structure: replace by removing and adding
        text.remove((), key)
        text.insert((), key, value, after=after, style=style)
    else:
        text.insert((), key, value, after=after if after in text.data() else None, style=style)


# --- rendering scalars ---------------------------------------------------------------------


def _render(value: Scalar, style: str | None, in_flow: bool, block_indent: int) -> str:
    """`value` as YAML text in the given style (None: plain when that reads back the same)."""
    if isinstance(value, bool):  # pragma: no cover - manifests hold no booleans we edit
        raise TypeError("booleans are not edited")
    text = str(value)
    if style == '"':
        return _double(text)
    if style == "'":
        return _single(text) if "\n" not in text else _double(text)
    if style in ("|", ">"):
        return _block(text, style, block_indent)
    if isinstance(value, int) or _plain_ok(text, in_flow):
        return text
    return _double(text)


def _plain_ok(text: str, in_flow: bool) -> bool:
    if not text or text != text.strip() or "\n" in text:
        return False
    # Read it back the way releasectl reads files (dates stay text, `1.3` becomes a float).
    probe = f"{{k: {text}}}" if in_flow else f"k: {text}\n"
    try:
        loaded = yamlio.loads(probe, "<probe>").data
    except InputError:
        return False
    return isinstance(loaded, dict) and list(loaded) == ["k"] and loaded["k"] == text


def _double(text: str) -> str:
    import json

    # A YAML double-quoted scalar accepts every JSON string escape.
    return json.dumps(text, ensure_ascii=False)


def _single(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _block(text: str, style: str, indent: int) -> str:
    if style == ">" and "\n" in text.rstrip("\n"):
        style = "|"  # folding would join the lines; a literal keeps them
    chomp = "" if text.endswith("\n") and not text.endswith("\n\n") else "-"
    lines = text.rstrip("\n").split("\n")
    body = "".join((" " * indent + line if line else "") + "\n" for line in lines)
    return f"{style}{chomp}\n{body}"


def _key(key: str) -> str:
    return key if _plain_ok(key, True) else _double(key)


def _flow_mapping(value: dict[str, Scalar]) -> str:
    return (
        "{" + ", ".join(f"{_key(k)}: {_render(v, None, True, 0)}" for k, v in value.items()) + "}"
    )


def _get(data: Any, path: yamlio.FieldPath) -> Any:
    for part in path:
        data = data[part]
    return data


def _assign(data: Any, path: yamlio.FieldPath, value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value
