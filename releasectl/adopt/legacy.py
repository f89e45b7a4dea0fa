"""The old framework's tree, read into data.

`DIR` is the repository that holds `scripts/migrations/`, or that directory itself:

```
scripts/migrations/
  migration-framework.sh                      the framework (replaced by releasectl)
  migrations/<component>/v<N>_<slug>.sh       or <NNN>_<slug>.sh: one script per version
  migrations/<component>/rollback_<N>_to_<M>.sh   (also in a subdirectory such as rollback/)
  state/<component>_version                   an integer: the version the environment is at
  state/migration_history.csv                 the audit log
  backups/                                    the framework's backups
scripts/version-management.sh                 (replaced by `releasectl version`)
```

Every file is either mapped or named in a note that says why not; problems that make the
import wrong (two scripts for one version, a gap, a version file that is not an integer, a
version above the last script) are errors, located by file and line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from releasectl.errors import InputError, Location, ReleasectlError
from releasectl.models.base import NAME_RE

SCRIPT_RE = re.compile(r"^(?:v(?P<v>\d+)|(?P<n>\d+))_(?P<slug>[A-Za-z0-9][A-Za-z0-9_.-]*)\.sh$")
ROLLBACK_RE = re.compile(r"^rollback_v?(?P<from>\d+)_to_v?(?P<to>\d+)\.sh$")
VERSION_FILE_SUFFIX = "_version"
HISTORY_FILE = "migration_history.csv"
MAX_SCRIPT_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Note:
    """A file the import leaves out, and why."""

    path: str  # as displayed: DIR/...
    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}{f':{self.line}' if self.line else ''}: {self.message}"


@dataclass(frozen=True, slots=True)
class Script:
    path: Path
    display: str
    number: int
    slug: str
    text: str


@dataclass
class LegacyComponent:
    name: str
    scripts: dict[int, Script] = field(default_factory=dict)
    rollbacks: dict[int, Script] = field(default_factory=dict)  # by the version it leaves
    version: int = 0
    version_file: str | None = None  # displayed path; None: no state file

    @property
    def latest(self) -> int:
        return max(self.scripts, default=0)


@dataclass
class LegacyTree:
    root: Path  # scripts/migrations
    display: str  # how messages name it
    components: dict[str, LegacyComponent] = field(default_factory=dict)
    history: Path | None = None
    history_display: str | None = None
    notes: list[Note] = field(default_factory=list)
    errors: list[ReleasectlError] = field(default_factory=list)


def locate(directory: Path) -> Path:
    """scripts/migrations inside `directory`, or `directory` itself when it is that."""
    for candidate in (directory / "scripts" / "migrations", directory):
        if (candidate / "migrations").is_dir() or (candidate / "state").is_dir():
            return candidate
    raise InputError(
        f"{directory}: not an old framework tree (no scripts/migrations/ with migrations/ or "
        "state/ in it)"
    )


def read_tree(directory: Path, display: str) -> LegacyTree:
    base = locate(directory)
    shown = display.rstrip("/") + (
        "/" + base.relative_to(directory).as_posix() if base != directory else ""
    )
    tree = LegacyTree(base, shown)
    _read_migrations(tree)
    _read_state(tree)
    _note_rest(tree, directory, display)
    return tree


def _show(tree: LegacyTree, path: Path) -> str:
    return f"{tree.display}/{path.relative_to(tree.root).as_posix()}"


def _read_migrations(tree: LegacyTree) -> None:
    top = tree.root / "migrations"
    if not top.is_dir():
        return
    for entry in sorted(top.iterdir()):
        if not entry.is_dir():
            tree.notes.append(Note(_show(tree, entry), "not in a component directory: not mapped"))
            continue
        if not NAME_RE.match(entry.name):
            tree.errors.append(
                InputError(
                    f"{entry.name!r} is not a valid component name (lowercase letters, digits "
                    "and '-', at most 63): rename the directory",
                    location=Location(_show(tree, entry)),
                )
            )
            continue
        component = LegacyComponent(entry.name)
        for path in sorted(_files(entry)):
            _read_script(tree, component, path)
        _check_numbers(tree, component, entry)
        tree.components[component.name] = component


def _files(directory: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / f for f in filenames if not f.startswith("."))
    return found


def _read_script(tree: LegacyTree, component: LegacyComponent, path: Path) -> None:
    shown = _show(tree, path)
    script = SCRIPT_RE.match(path.name)
    rollback = ROLLBACK_RE.match(path.name)
    if script is None and rollback is None:
        why = (
            "not named v<N>_<slug>.sh, <NNN>_<slug>.sh or rollback_<N>_to_<M>.sh"
            if path.suffix == ".sh"
            else "not a migration script"
        )
        tree.notes.append(Note(shown, f"{why}: not mapped"))
        return
    if path.is_symlink() or path.stat().st_size > MAX_SCRIPT_BYTES:
        tree.errors.append(
            InputError("a symlink or a script over 1 MiB: not imported", location=Location(shown))
        )
        return
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        tree.errors.append(InputError(f"not UTF-8 ({exc.reason})", location=Location(shown)))
        return
    if rollback is not None:
        from_, to = int(rollback["from"]), int(rollback["to"])
        if to != from_ - 1:
            tree.notes.append(
                Note(
                    shown,
                    f"rolls back {from_} -> {to}: releasectl goes down one version at a time "
                    f"(rollback_{from_}_to_{from_ - 1}.sh): not mapped",
                )
            )
            return
        other = component.rollbacks.get(from_)
        if other is not None:
            tree.errors.append(
                InputError(
                    f"a second rollback of version {from_} (also {other.display})",
                    location=Location(shown),
                )
            )
            return
        component.rollbacks[from_] = Script(path, shown, from_, f"rollback_{from_}", text)
        return
    assert script is not None
    number = int(script["v"] or script["n"])
    slug = re.sub(r"[^a-z0-9_]+", "_", script["slug"].lower()).strip("_") or "migration"
    if number < 1:
        tree.errors.append(InputError("versions start at 1", location=Location(shown)))
        return
    other = component.scripts.get(number)
    if other is not None:
        tree.errors.append(
            InputError(
                f"a second script for version {number} (also {other.display})",
                location=Location(shown),
            )
        )
        return
    component.scripts[number] = Script(path, shown, number, slug, text)


def _check_numbers(tree: LegacyTree, component: LegacyComponent, directory: Path) -> None:
    missing = [n for n in range(1, component.latest + 1) if n not in component.scripts]
    if missing:
        tree.errors.append(
            InputError(
                f"component {component.name}: no script for version "
                f"{', '.join(map(str, missing))} (versions run 1, 2, 3, ... without gaps)",
                location=Location(_show(tree, directory)),
            )
        )
    for number, rollback in sorted(component.rollbacks.items()):
        if number not in component.scripts:
            tree.notes.append(
                Note(rollback.display, f"rolls back version {number}, which has no script")
            )


def _read_state(tree: LegacyTree) -> None:
    state = tree.root / "state"
    if not state.is_dir():
        return
    for path in sorted(state.iterdir()):
        shown = _show(tree, path)
        if path.name == HISTORY_FILE and path.is_file():
            tree.history, tree.history_display = path, shown
            continue
        if not (path.is_file() and path.name.endswith(VERSION_FILE_SUFFIX)):
            tree.notes.append(Note(shown, "not a <component>_version file: not mapped"))
            continue
        name = path.name[: -len(VERSION_FILE_SUFFIX)]
        text = path.read_text(errors="replace").strip() if path.stat().st_size < 1024 else "?"
        if not text.isdigit():
            tree.errors.append(
                InputError(
                    f"{text[:40]!r} is not a version (an integer)", location=Location(shown, 1)
                )
            )
            continue
        version = int(text)
        component = tree.components.get(name)
        if component is None:
            if version:
                tree.errors.append(
                    InputError(
                        f"component {name} is at version {version}, but migrations/{name}/ "
                        "holds no scripts",
                        location=Location(shown, 1),
                    )
                )
            else:
                tree.notes.append(Note(shown, "version 0 of a component without scripts"))
            continue
        if version > component.latest:
            tree.errors.append(
                InputError(
                    f"version {version}, but migrations/{name}/ has scripts up to "
                    f"{component.latest}",
                    location=Location(shown, 1),
                )
            )
            continue
        component.version, component.version_file = version, shown


def _note_rest(tree: LegacyTree, directory: Path, display: str) -> None:
    """Everything else in the tree, named once: the framework itself, backups, other files."""
    for entry in sorted(tree.root.iterdir()):
        if entry.name in ("migrations", "state") or entry.name.startswith("."):
            continue
        shown = _show(tree, entry)
        if entry.name == "backups":
            count = len(_files(entry)) if entry.is_dir() else 1
            tree.notes.append(
                Note(
                    shown,
                    f"{count} backup file(s) of the old framework: not imported (releasectl "
                    "takes its own, scoped backups); keep them until you no longer need them",
                )
            )
        elif entry.name == "migration-framework.sh":
            tree.notes.append(Note(shown, "the old framework: replaced by releasectl"))
        else:
            tree.notes.append(Note(shown, "not mapped"))
    versioning = directory / "scripts" / "version-management.sh"
    if tree.root != directory and versioning.is_file():
        tree.notes.append(
            Note(
                f"{display.rstrip('/')}/scripts/version-management.sh",
                "replaced by `releasectl version` and `releasectl release`; record the services' "
                "deployed versions with `releasectl baseline SERVICE X.Y.Z`",
            )
        )
    for component in tree.components.values():
        if component.version_file is None and component.scripts:
            tree.notes.append(
                Note(
                    f"{tree.display}/state/{component.name}_version",
                    f"missing: component {component.name} is imported at version 0",
                )
            )
