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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from releasectl.errors import InputError, Location, ReleasectlError
from releasectl.util import safefiles
from releasectl.workspace import digests
from releasectl.workspace.digests import Digest, Finding, Meta, Task, digest_many
from releasectl.workspace.scancache import ScanCache

if TYPE_CHECKING:
    from releasectl.models.migration import MigrationMeta

normalise = digests.normalise  # BOM and CRLF, as the checksum sees a file

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
    """One migration directory. Its metadata (`migration.yaml`) is read on first use, unless
    the scan already has it (see `releasectl.workspace.digests`)."""

    __slots__ = (
        "_dir",
        "_meta",
        "_meta_data",
        "_path",
        "checksum",
        "component",
        "files",
        "findings",
        "has_down",
        "id",
        "number",
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
        path: Path | str,
        rel: str,
        files: tuple[str, ...],
        checksum: str,
        has_down: bool,
        meta: Meta = False,
        findings: tuple[Finding, ...] | None = None,
    ) -> None:
        self.component = component
        self.type = type
        self.number = number
        self.id = id
        # a Path per migration costs more than the rest of a warm scan: made on first use
        self._dir = str(path)
        self._path: Path | None = path if isinstance(path, Path) else None
        self.rel = rel
        self.files = files
        self.checksum = checksum
        self.has_down = has_down
        self._meta: MigrationMeta | None = None
        self._meta_data = meta
        # literal secrets in the files, as the scan found them; None: not scanned
        self.findings = findings

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = Path(self._dir)
        return self._path

    @property
    def meta(self) -> MigrationMeta:
        if self._meta is None:
            data = self._meta_data
            if data is None:
                self._meta = _no_meta()
            elif isinstance(data, dict):
                from releasectl.models.migration import MigrationMeta

                self._meta = MigrationMeta.model_validate(data)
            else:
                self._meta = load_meta(self)
        return self._meta

    def file(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"Migration({self.component}/{self.id})"


_NO_META: list[MigrationMeta] = []


def _no_meta() -> MigrationMeta:
    """The metadata of a migration without migration.yaml (one shared, frozen instance)."""
    if not _NO_META:
        from releasectl.models.migration import MigrationMeta

        _NO_META.append(MigrationMeta())
    return _NO_META[0]


def load_meta(migration: Migration) -> MigrationMeta:
    from releasectl.models.migration import MigrationMeta
    from releasectl.workspace.loading import validate_fast

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
    # where checks of the migrations keep their results (see releasectl.workspace.scancache)
    cache: ScanCache | None = field(default=None, repr=False, compare=False)

    def of(self, component: str) -> ComponentMigrations | None:
        return self.components.get(component)

    def count(self) -> int:
        return sum(len(c.migrations) for c in self.components.values())


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
        data = normalise(safefiles.read_bytes(os.path.join(directory, rel)))
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


def scan_component(
    root: Path, component: str, type_: str, directory: str
) -> tuple[ComponentMigrations, list[ReleasectlError]]:
    """Discover one component's migrations; problems are returned, not raised."""
    catalogue = scan_catalogue(root, [(component, type_, directory)], cache=None)
    return catalogue.components[component], catalogue.errors


ComponentSpec = tuple[str, str, str]  # name, type, migrations directory (workspace-relative)


@dataclass(slots=True)
class _Candidate:
    number: int
    name: str
    path: str
    rel: str
    digest: Digest | None = None


def scan_catalogue(
    root: Path, components: Sequence[ComponentSpec], cache: ScanCache | None = None
) -> Catalogue:
    """Discover the migrations of `components`, reading only what `cache` cannot vouch for.

    Problems are collected in `Catalogue.errors`, in the order of `components` and, within a
    component, of its directory names."""
    catalogue = Catalogue()
    listed: list[tuple[ComponentSpec, list[_Candidate | ReleasectlError]]] = []
    misses: list[_Candidate] = []
    tasks: list[Task] = []
    for spec in components:
        items = _list_component(root, spec[2])
        listed.append((spec, items))
        down = LAYOUTS[spec[1]].down
        for item in items:
            if isinstance(item, _Candidate):
                item.digest = cache.lookup(item.rel, item.path, spec[1]) if cache else None
                if item.digest is None:
                    misses.append(item)
                    tasks.append((item.path, spec[1], down))
    if misses:
        if cache is not None:
            cache.start_clock()
        for item, found in zip(misses, digest_many(tasks), strict=True):
            item.digest = found
            if cache is not None:
                cache.store(item.rel, found)
    for (name, type_, directory), items in listed:
        found_component, errors = _assemble(name, type_, directory, items)
        catalogue.components[name] = found_component
        catalogue.errors.extend(errors)
    if cache is not None:
        cache.save()
        catalogue.cache = cache
    return catalogue


def _list_component(root: Path, directory: str) -> list[_Candidate | ReleasectlError]:
    base = os.path.join(root, directory)
    if not safefiles.resolves_inside(base, root):
        return [
            safefiles.UnsafeFileError(
                f"migrations directory {safefiles.OUTSIDE}", location=Location(directory)
            )
        ]
    try:
        with os.scandir(base) as it:
            entries = sorted(
                ((e.name, e.path, e.is_symlink()) for e in it if e.is_dir()), key=lambda e: e[0]
            )
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        return [InputError("is not a directory", location=Location(directory))]
    items: list[_Candidate | ReleasectlError] = []
    for name, path, link in entries:
        if name.startswith("."):
            continue  # README.md and friends beside the migrations are fine
        rel = f"{directory}/{name}"
        if link and not safefiles.resolves_inside(path, root):
            items.append(safefiles.UnsafeFileError(safefiles.OUTSIDE, location=Location(rel)))
            continue
        match = DIR_RE.match(name)
        if match is None:
            items.append(
                InputError(
                    "migration directory name must be NNNN_slug (a number of at least 4 digits, "
                    "an underscore, a slug)",
                    location=Location(rel),
                )
            )
            continue
        number = int(match.group(1))
        if number == 0:
            items.append(InputError("migration numbers start at 0001", location=Location(rel)))
            continue
        items.append(_Candidate(number, name, path, rel))
    return items


def _assemble(
    component: str, type_: str, directory: str, items: list[_Candidate | ReleasectlError]
) -> tuple[ComponentMigrations, list[ReleasectlError]]:
    result = ComponentMigrations(component, type_, directory)
    errors: list[ReleasectlError] = []
    layout = LAYOUTS[type_]
    by_number: dict[int, Migration] = {}
    for item in items:
        if not isinstance(item, _Candidate):
            errors.append(item)
            continue
        found = item.digest
        assert found is not None
        files = found.files
        missing = [alts for alts in layout.required if not any(_matches(files, p) for p in alts)]
        if missing:
            wanted = " and ".join(" or ".join(alts) for alts in missing)
            errors.append(
                InputError(f"a {type_} migration needs {wanted}", location=Location(item.rel))
            )
            continue
        if item.number in by_number:
            errors.append(
                InputError(
                    f"duplicate migration number {item.number:04d}: "
                    f"{by_number[item.number].id} and {item.name}",
                    location=Location(item.rel),
                )
            )
            continue
        by_number[item.number] = Migration(
            component=component,
            type=type_,
            number=item.number,
            id=item.name,
            path=item.path,
            rel=item.rel,
            files=files,
            checksum=found.checksum,
            has_down=found.has_down,
            meta=found.meta,
            findings=found.findings,
        )
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
