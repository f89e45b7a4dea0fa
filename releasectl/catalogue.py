"""Migration discovery and checksums.

A migrated component's migrations live in ``migrations/<component>/<NNNN>_<slug>/``. Numbers
start at 1 and have no gaps; migration N moves the component from schema version N-1 to N.

A migration's checksum is the SHA-256 over its files, in sorted order of their relative
POSIX paths; for each file the hash takes ``path NUL size NUL content`` where the content has
its UTF-8 byte-order mark removed and CRLF line endings turned into LF, so a checkout on
Windows does not look like drift. Hidden files and ``__pycache__`` are not part of a migration.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from releasectl.errors import InputError, Location, ReleasectlError

if TYPE_CHECKING:
    from releasectl.models.migration import MigrationMeta

DIR_RE = re.compile(r"^(\d{4,})_([A-Za-z0-9][A-Za-z0-9_.-]*)$")


@dataclass(frozen=True, slots=True)
class Layout:
    """What a migration of one component type must and may contain."""

    required: tuple[tuple[str, ...], ...]  # each tuple: at least one of these patterns
    down: tuple[str, ...]  # a file that makes a `down` possible; () means always reversible
    describe: str


LAYOUTS: dict[str, Layout] = {
    "redis": Layout(
        (("up.yaml", "migration.py"),),
        ("down.yaml", "migration.py:down"),
        "up.yaml or migration.py",
    ),
    "sql": Layout((("up.sql",),), ("down.sql",), "up.sql"),
    "script": Layout((("up.sh",),), ("down.sh",), "up.sh"),
    # Kubernetes and Cedar migrations are snapshots: version N-1 is the way down from N.
    "kubernetes": Layout((("*.yaml", "*.yml", "*.json"),), (), "at least one object file"),
    "cedar": Layout(
        (("*.cedar",), ("schema.cedarschema", "schema.cedarschema.json")),
        (),
        "*.cedar policies and schema.cedarschema",
    ),
}
META_FILE = "migration.yaml"


class Migration:
    """One migration directory. Its metadata (`migration.yaml`) is read on first use."""

    __slots__ = (
        "_meta",
        "checksum",
        "component",
        "files",
        "has_down",
        "id",
        "number",
        "path",
        "rel",
        "type",
    )

    def __init__(
        self,
        *,
        component: str,
        type: str,
        number: int,
        id: str,
        path: Path,
        rel: str,
        files: tuple[str, ...],
        checksum: str,
        has_down: bool,
    ) -> None:
        self.component = component
        self.type = type
        self.number = number
        self.id = id
        self.path = path
        self.rel = rel
        self.files = files
        self.checksum = checksum
        self.has_down = has_down
        self._meta: MigrationMeta | None = None

    @property
    def meta(self) -> MigrationMeta:
        if self._meta is None:
            self._meta = load_meta(self)
        return self._meta

    def file(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"Migration({self.component}/{self.id})"


def load_meta(migration: Migration) -> MigrationMeta:
    from releasectl.loading import validate_fast
    from releasectl.models.migration import MigrationMeta

    if META_FILE not in migration.files:
        return MigrationMeta()
    return validate_fast(MigrationMeta, migration.path / META_FILE, f"{migration.rel}/{META_FILE}")


@dataclass(slots=True)
class ComponentMigrations:
    component: str
    type: str
    directory: str  # relative to the workspace
    migrations: list[Migration] = field(default_factory=list)

    @property
    def latest(self) -> int:
        return len(self.migrations)

    def get(self, number: int) -> Migration | None:
        if 1 <= number <= len(self.migrations):
            return self.migrations[number - 1]
        return None


@dataclass(slots=True)
class Catalogue:
    components: dict[str, ComponentMigrations] = field(default_factory=dict)
    errors: list[ReleasectlError] = field(default_factory=list)

    def of(self, component: str) -> ComponentMigrations | None:
        return self.components.get(component)

    def count(self) -> int:
        return sum(len(c.migrations) for c in self.components.values())


def normalise(data: bytes) -> bytes:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\r\n" in data:
        data = data.replace(b"\r\n", b"\n")
    return data


def _walk(directory: str, prefix: str = "") -> list[str]:
    """Relative paths of the files under `directory`, hidden entries and caches excluded."""
    out: list[str] = []
    with os.scandir(directory) as it:
        for entry in it:
            name = entry.name
            if name.startswith(".") or name == "__pycache__":
                continue
            rel = prefix + name
            if entry.is_dir(follow_symlinks=False):
                out.extend(_walk(entry.path, rel + "/"))
            else:
                out.append(rel)
    return out


def checksum_files(directory: str, files: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for rel in files:
        with open(os.path.join(directory, rel), "rb") as fh:
            data = normalise(fh.read())
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def checksum_dir(directory: Path) -> str:
    return checksum_files(str(directory), sorted(_walk(str(directory))))


def _matches(files: Iterable[str], pattern: str) -> bool:
    if pattern.startswith("*"):
        suffix = pattern[1:]
        return any(f.endswith(suffix) and "/" not in f and f != META_FILE for f in files)
    return pattern in files


def _has_down(layout: Layout, path: Path, files: tuple[str, ...]) -> bool:
    if not layout.down:
        return True
    for part in layout.down:
        name, _, func = part.partition(":")
        if name not in files:
            continue
        if not func:
            return True
        text = (path / name).read_text(encoding="utf-8", errors="replace")
        if re.search(rf"^def {func}\(", text, re.MULTILINE):
            return True
    return False


def scan_component(
    root: Path, component: str, type_: str, directory: str
) -> tuple[ComponentMigrations, list[ReleasectlError]]:
    """Discover one component's migrations; problems are returned, not raised."""
    result = ComponentMigrations(component, type_, directory)
    errors: list[ReleasectlError] = []
    base = root / directory
    layout = LAYOUTS[type_]
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except FileNotFoundError:
        return result, errors
    except NotADirectoryError:
        return result, [InputError("is not a directory", location=Location(directory))]
    by_number: dict[int, Migration] = {}
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir():
            continue  # README.md and friends beside the migrations are fine
        rel = f"{directory}/{entry.name}"
        match = DIR_RE.match(entry.name)
        if match is None:
            errors.append(
                InputError(
                    "migration directory name must be NNNN_slug (a number of at least 4 digits, "
                    "an underscore, a slug)",
                    location=Location(rel),
                )
            )
            continue
        number = int(match.group(1))
        if number == 0:
            errors.append(InputError("migration numbers start at 0001", location=Location(rel)))
            continue
        files = tuple(sorted(_walk(entry.path)))
        missing = [alts for alts in layout.required if not any(_matches(files, p) for p in alts)]
        if missing:
            wanted = " and ".join(" or ".join(alts) for alts in missing)
            errors.append(InputError(f"a {type_} migration needs {wanted}", location=Location(rel)))
            continue
        path = Path(entry.path)
        migration = Migration(
            component=component,
            type=type_,
            number=number,
            id=entry.name,
            path=path,
            rel=rel,
            files=files,
            checksum=checksum_files(entry.path, files),
            has_down=_has_down(layout, path, files),
        )
        if number in by_number:
            errors.append(
                InputError(
                    f"duplicate migration number {number:04d}: "
                    f"{by_number[number].id} and {entry.name}",
                    location=Location(rel),
                )
            )
            continue
        by_number[number] = migration
    if by_number:
        top = max(by_number)
        gaps = [n for n in range(1, top + 1) if n not in by_number]
        if gaps:
            shown = ", ".join(f"{n:04d}" for n in gaps[:10]) + (" ..." if len(gaps) > 10 else "")
            errors.append(
                InputError(
                    f"migration numbers have gaps: missing {shown}", location=Location(directory)
                )
            )
        result.migrations = [by_number[n] for n in sorted(by_number)]
        if gaps:
            # keep the contiguous prefix usable so other problems still get reported
            result.migrations = result.migrations[: gaps[0] - 1]
    return result, errors
