"""Static checks of migrations and manifests: literal secrets, and each target type's own
checks (Cedar policies validate, Kubernetes objects parse, ...). Used by `validate`, `plan`
and `release validate`; none of them needs a connection."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from releasectl.errors import InputError, Location, ReleasectlError
from releasectl.secrets import scan_text
from releasectl.util import safefiles
from releasectl.workspace import WORKSPACE_FILE, Workspace
from releasectl.workspace.catalogue import Migration
from releasectl.workspace.digests import is_binary, jobs, may_hold_secret
from releasectl.workspace.scancache import decode_errors, encode_errors

if TYPE_CHECKING:
    from releasectl.targets.base import StaticCheck


def _secret_error(name: str, line: int, column: int, display: str) -> ReleasectlError:
    return InputError(
        f"literal secret ({name}) at column {column}: reference it from "
        "the environment instead (${env:VAR}, ExternalSecret)",
        location=Location(display, line),
    )


def secret_problems_in(path: Path, display: str) -> list[ReleasectlError]:
    try:
        data = safefiles.read_bytes(path, display)
    except safefiles.UnsafeFileError as exc:
        return [exc]
    except InputError:  # absent or unreadable: reported where the file is loaded
        return []
    if is_binary(path.name, data):
        return []
    text = data.decode("utf-8", errors="replace")
    if not may_hold_secret(text):
        return []
    return [_secret_error(f.name, f.line, f.column, display) for f in scan_text(text)]


def secret_problems(migration: Migration) -> list[ReleasectlError]:
    if migration.findings is not None:  # the catalogue scan read the files already
        return [
            _secret_error(name, line, column, f"{migration.rel}/{rel}")
            for rel, _, name, line, column in migration.findings
        ]
    errors: list[ReleasectlError] = []
    for rel in migration.files:
        errors.extend(secret_problems_in(migration.path / rel, f"{migration.rel}/{rel}"))
    return errors


def manifest_secret_problems(workspace: Workspace) -> list[ReleasectlError]:
    errors = secret_problems_in(workspace.root / WORKSPACE_FILE, WORKSPACE_FILE)
    for version in workspace.release_versions:
        rel = f"{workspace.spec.releases}/{version}.yaml"
        errors.extend(secret_problems_in(workspace.root / rel, rel))
    return errors


def target_problems(workspace: Workspace, migrations: Iterable[Migration]) -> list[ReleasectlError]:
    """Each target type's static checks (`targets.base.CHECKS`), without connecting anywhere.

    Results come from the scan cache where a migration is unchanged; a large number of
    migrations to check is shared with forked helper processes (see `digests.jobs`)."""
    migrations = list(migrations)
    cache = workspace.catalogue.cache
    results: list[list[ReleasectlError] | None] = [
        cache.target_problems(m.rel) if cache is not None else None for m in migrations
    ]
    todo = [i for i, found in enumerate(results) if found is None]
    checker = _Checker()
    pending = [migrations[i] for i in todo]
    checked = _check_in_parallel(pending, checker)
    if not checked:
        checker.prepare(pending)
    for index, found in checked.items():
        results[todo[index]] = found
    errors: list[ReleasectlError] = []
    for migration, result in zip(migrations, results, strict=True):
        found = checker.problems(migration) if result is None else result
        if cache is not None:
            cache.store_target_problems(migration.rel, found)
        errors.extend(found)
    if cache is not None:
        cache.save()
    return errors


class _Checker:
    """Each type's static checks (`targets.base.CHECKS`), loaded on first use."""

    def __init__(self) -> None:
        self.checks: dict[str, StaticCheck | None] = {}

    def prepare(self, migrations: list[Migration]) -> None:
        """Each type's batch step (`targets.base.static_prepare`) over its migrations, before
        their checks run here or in forked helpers (which inherit what it found)."""
        from releasectl.targets.base import static_prepare

        by_type: dict[str, list[Migration]] = {}
        for migration in migrations:
            by_type.setdefault(migration.type, []).append(migration)
        for type_, found in by_type.items():
            prepare = static_prepare(type_)
            if prepare is not None:
                prepare(found)

    def problems(self, migration: Migration) -> list[ReleasectlError]:
        if migration.type not in self.checks:
            from releasectl.targets.base import static_check

            self.checks[migration.type] = static_check(migration.type)
        check = self.checks[migration.type]
        return [] if check is None else check(migration)


CHECKS_IN_HELPERS = 400  # fewer migrations to check: forking costs more than it saves
_SHARED: dict[str, Any] = {}  # what forked helpers inherit: the checker and the migrations


def _check_slice(bounds: tuple[int, int]) -> list[tuple[int, list[list[Any]] | None]]:
    checker: _Checker = _SHARED["checker"]
    migrations: list[Migration] = _SHARED["migrations"]
    checker.prepare(migrations[bounds[0] : bounds[1]])
    # errors travel as data: an exception's location does not survive pickling
    return [(i, encode_errors(checker.problems(migrations[i]))) for i in range(*bounds)]


def _check_in_parallel(
    migrations: list[Migration], checker: _Checker, processes: int | None = None
) -> dict[int, list[ReleasectlError]]:
    """Problems of `migrations` by index, checked by this process and forked helpers at the
    same time; empty when there are too few to be worth it. An index may be missing: its
    errors could not travel back, and the caller checks it again."""
    processes = jobs() if processes is None else processes
    if processes < 2 or len(migrations) < CHECKS_IN_HELPERS:
        return {}
    from releasectl.util import forkpool

    size = -(-len(migrations) // processes)
    bounds = [(i, min(i + size, len(migrations))) for i in range(size, len(migrations), size)]
    _SHARED.update(checker=checker, migrations=migrations)
    found: dict[int, list[ReleasectlError]] = {}
    try:
        with forkpool.pool(len(bounds)) as pool:
            pending = pool.map_async(_check_slice, bounds, chunksize=1)
            checker.prepare(migrations[:size])  # this process's share, meanwhile
            for index in range(size):
                found[index] = checker.problems(migrations[index])
            for part in pending.get():
                for index, encoded in part:
                    if encoded is not None:
                        found[index] = decode_errors(encoded)
    finally:
        _SHARED.clear()
    return found


def migration_problems(
    workspace: Workspace, migrations: Iterable[Migration] | None = None
) -> list[ReleasectlError]:
    """Secrets and target checks of `migrations` (default: every migration)."""
    if migrations is None:
        migrations = [
            m for found in workspace.catalogue.components.values() for m in found.migrations
        ]
    migrations = list(migrations)
    errors: list[ReleasectlError] = []
    for migration in migrations:
        errors.extend(secret_problems(migration))
    errors.extend(target_problems(workspace, migrations))
    return errors
