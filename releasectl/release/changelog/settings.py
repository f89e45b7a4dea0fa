"""What a changelog is made of: sections, filters, release tags, links; defaults and files.

The configuration lives in the `changelog:` block of `releasectl.yaml` in a workspace; in a
plain git repository in `.releasectl.yaml` (a `changelog:` block) or in `pyproject.toml`
(`[tool.releasectl.changelog]`), the nearest one from the changelog's directory up to the top
of the work tree. Without one, the defaults below apply and pydantic is never imported: the
command stays as light as it was. A block that is present is validated by
`releasectl.models.changelog.ChangelogConfig` (the schema users see), errors naming the file,
line and field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from releasectl.errors import InputError, Location

if TYPE_CHECKING:
    from releasectl.models.changelog import ChangelogConfig

# (title, types, breaking, other), in the order sections appear; breaking first, other last.
DEFAULT_SECTIONS: tuple[tuple[str, tuple[str, ...], bool, bool], ...] = (
    ("Breaking Changes", (), True, False),
    ("Features", ("feat",), False, False),
    ("Bug Fixes", ("fix",), False, False),
    ("Performance", ("perf",), False, False),
    ("Documentation", ("docs",), False, False),
    ("Refactoring", ("refactor",), False, False),
    ("Build", ("build",), False, False),
    ("CI", ("ci",), False, False),
    ("Chores", ("chore",), False, False),
    ("Tests", ("test",), False, False),
    ("Style", ("style",), False, False),
    ("Reverts", ("revert",), False, False),
    ("Other", (), False, True),
)
WORKSPACE_FILE = "releasectl.yaml"
PLAIN_FILES = (".releasectl.yaml", "pyproject.toml")
_TITLES = tuple(s[0] for s in DEFAULT_SECTIONS)
_SLOT_OF = {t: i for i, s in enumerate(DEFAULT_SECTIONS) for t in s[1]}


class Settings(NamedTuple):
    titles: tuple[str, ...] = _TITLES
    slot_of: dict[str, int] = _SLOT_OF
    breaking_slot: int | None = 0
    other_slot: int | None = len(DEFAULT_SECTIONS) - 1
    """None: there is no such section (breaking commits stay with their type; other commits
    are left out)."""
    exclude_types: frozenset[str] = frozenset()
    exclude_authors: re.Pattern[str] | None = None
    exclude_subjects: re.Pattern[str] | None = None
    tag_pattern: str | None = None
    include_merges: bool = False
    links: bool = True
    forge: str | None = None
    repository_url: str | None = None
    source: str | None = None
    """The file the settings came from (None: defaults)."""

    @property
    def filters(self) -> bool:
        return bool(self.exclude_types or self.exclude_authors or self.exclude_subjects)


DEFAULT = Settings()


def from_config(config: ChangelogConfig, source: str) -> Settings:
    titles: tuple[str, ...] = DEFAULT.titles
    slot_of = DEFAULT.slot_of
    breaking: int | None = DEFAULT.breaking_slot
    other: int | None = DEFAULT.other_slot
    if config.sections is not None:
        titles = tuple(s.title for s in config.sections)
        slot_of = {t: i for i, s in enumerate(config.sections) for t in s.types}
        breaking = next((i for i, s in enumerate(config.sections) if s.breaking), None)
        other = next((i for i, s in enumerate(config.sections) if s.other), None)
    authors = None
    if config.exclude_authors:
        alternatives = "|".join(
            ".*".join(re.escape(part) for part in a.split("*")) for a in config.exclude_authors
        )
        authors = re.compile(f"(?:{alternatives})")
    subjects = None
    if config.exclude_subjects:
        subjects = re.compile("|".join(f"(?:{s})" for s in config.exclude_subjects))
    return Settings(
        titles=titles,
        slot_of=slot_of,
        breaking_slot=breaking,
        other_slot=other,
        exclude_types=frozenset(config.exclude_types),
        exclude_authors=authors,
        exclude_subjects=subjects,
        tag_pattern=config.tag_pattern,
        include_merges=config.include_merges,
        links=config.links,
        forge=config.forge,
        repository_url=config.repository_url.rstrip("/") if config.repository_url else None,
        source=source,
    )


def author_excluded(settings: Settings, author: str) -> bool:
    """`author` is "Name <email>"; an entry matches the whole name or the whole address."""
    pattern = settings.exclude_authors
    if pattern is None:
        return False
    name, _, email = author.rpartition(" <")
    return bool(pattern.fullmatch(name) or pattern.fullmatch(email.removesuffix(">")))


def for_workspace(ws: Path, data: Any) -> Settings:
    """The settings of the workspace whose `releasectl.yaml` holds `data` (already loaded)."""
    block = data.get("changelog") if isinstance(data, dict) else None
    if block is None:
        return DEFAULT
    from releasectl.models.changelog import ChangelogConfig
    from releasectl.workspace import loading, yamlio

    doc = yamlio.load(ws / WORKSPACE_FILE, WORKSPACE_FILE)
    return from_config(
        loading.validate(ChangelogConfig, doc, prefix=("changelog",)), WORKSPACE_FILE
    )


def for_plain(start: Path, toplevel: Path) -> Settings:
    """The nearest `.releasectl.yaml` / `pyproject.toml` with a changelog block, from `start`
    up to the top of the work tree; defaults when there is none."""
    for directory in (start, *start.parents):
        yaml_file = directory / PLAIN_FILES[0]
        if yaml_file.is_file():
            found = _from_yaml(yaml_file, _display(yaml_file, toplevel))
            if found is not None:
                return found
        toml_file = directory / PLAIN_FILES[1]
        if toml_file.is_file():
            found = _from_pyproject(toml_file, _display(toml_file, toplevel))
            if found is not None:
                return found
        if directory == toplevel:
            break
    return DEFAULT


def _display(path: Path, toplevel: Path) -> str:
    try:
        return path.relative_to(toplevel).as_posix()
    except ValueError:
        return str(path)


def _from_yaml(path: Path, display: str) -> Settings | None:
    from releasectl.workspace import yamlio

    doc = yamlio.load(path, display)
    if not isinstance(doc.data, dict):
        raise InputError("expected a mapping at the top of the file", location=Location(display, 1))
    if doc.data.get("changelog") is None:
        return None
    from releasectl.models.changelog import ChangelogConfig
    from releasectl.workspace import loading

    return from_config(loading.validate(ChangelogConfig, doc, prefix=("changelog",)), display)


def _from_pyproject(path: Path, display: str) -> Settings | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", location=Location(display)) from None
    if "releasectl" not in text:  # most pyproject.toml files: no need for a TOML parser
        return None
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", location=Location(display)) from None
    table = data.get("tool", {}).get("releasectl", {})
    if not isinstance(table, dict) or table.get("changelog") is None:
        return None
    from releasectl.models.changelog import ChangelogConfig
    from releasectl.workspace import loading, yamlio

    prefix = ("tool", "releasectl", "changelog")
    lines: dict[yamlio.FieldPath, int] = {}
    block = table["changelog"]
    for key in [None, *(block if isinstance(block, dict) else ())]:
        line = _toml_line(text, key)
        if line is not None:
            lines[(*prefix, key) if key is not None else prefix] = line
    doc = yamlio.Document(display, data, lines)
    return from_config(loading.validate(ChangelogConfig, doc, prefix=prefix), display)


def _toml_line(text: str, key: str | None) -> int | None:
    """The line of `key` in the [tool.releasectl.changelog] table (or of the table)."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\s*tool\s*\.\s*releasectl\s*\.\s*changelog\s*\]")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return None
    if key is not None:
        entry = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for i in range(start + 1, len(lines)):
            if lines[i].lstrip().startswith("["):
                break
            if entry.match(lines[i]):
                return i + 1
    return start + 1
