"""Static checks of a script migration (validate, plan): `up.sh` is not empty, the scope names
safe paths, and the shell parses every part (`sh -n`) without running anything."""

from __future__ import annotations

import functools
import shlex
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from releasectl.errors import InputError, Location, ReleasectlError
from releasectl.models.workspace import ScriptTarget as ScriptSettings
from releasectl.targets.script import syntax
from releasectl.targets.script.files import scope_problem
from releasectl.util import safefiles

if TYPE_CHECKING:
    from releasectl.workspace.catalogue import Migration

PARTS = ("up.sh", "down.sh", "verify.sh")
SYNTAX_SHELLS = frozenset({"bash", "sh", "dash", "zsh", "ksh"})
DEFAULT_SHELL = str(ScriptSettings.model_fields["shell"].default)


def problems(migration: Migration, shell: str = DEFAULT_SHELL) -> list[ReleasectlError]:
    """Everything wrong with one migration that can be told without running it."""
    errors: list[ReleasectlError] = []
    up = migration.file("up.sh")
    if "up.sh" in migration.files and not _has_text(up):
        errors.append(InputError("up.sh is empty", location=Location(f"{migration.rel}/up.sh")))
    try:
        scope = migration.meta.scope or ()
    except ReleasectlError as exc:
        return [*errors, exc]
    for entry in scope:
        problem = scope_problem(entry)
        if problem:
            where = Location(f"{migration.rel}/migration.yaml", None, "scope")
            errors.append(InputError(problem, location=where))
    errors.extend(_syntax_problems(migration, shell))
    return errors


def prepare(migrations: Sequence[Migration], shell: str = DEFAULT_SHELL) -> None:
    """Read and parse the parts of many migrations at once (`syntax.check_many`) ahead of
    `problems`, which then takes each part's verdict from here instead of reading the part
    again and starting a shell for it."""
    exe = _syntax_shell(shell)
    if exe is None:
        return
    _VERDICTS.update(syntax.check_many(exe, _parts(migrations)))


def _parts(migrations: Sequence[Migration]) -> Iterator[tuple[Path, bytes | None]]:
    """Each part of `migrations` with its bytes (None: unsafe or unreadable, which `problems`
    reads again and reports); notes on the way whether each `up.sh` holds anything."""
    for migration in migrations:
        for part in PARTS:
            if part not in migration.files:
                continue
            path = migration.file(part)
            try:
                data: bytes | None = safefiles.read_bytes(path)
            except InputError:
                data = None
            if data is not None and part == "up.sh":
                _HAS_TEXT[path] = bool(data.strip())
            yield path, data


# what `prepare` found, each taken once by `problems`
_VERDICTS: dict[Path, syntax.Verdict] = {}
_HAS_TEXT: dict[Path, bool] = {}


def _has_text(up: Path) -> bool:
    found = _HAS_TEXT.pop(up, None)
    return bool(safefiles.read_bytes(up).strip()) if found is None else found


@functools.cache
def _syntax_shell(shell: str) -> str | None:
    """The shell that parses the parts (`shell -n`), or None when it is not a known shell."""
    argv = shlex.split(shell)
    if not argv or Path(argv[0]).name not in SYNTAX_SHELLS:
        return None
    return shutil.which(argv[0])


def _syntax_problems(migration: Migration, shell: str) -> list[ReleasectlError]:
    """`shell -n` on each part: the shell parses it without running anything."""
    exe = _syntax_shell(shell)
    if exe is None:
        return []
    errors: list[ReleasectlError] = []
    for part in PARTS:
        if part not in migration.files:
            continue
        path = migration.file(part)
        verdict = _VERDICTS.pop(path, None) or syntax.check_one(exe, path)
        if verdict is None or verdict.ok:
            continue
        errors.append(
            InputError(
                f"{Path(exe).name} -n: {verdict.message}",
                location=Location(f"{migration.rel}/{part}", verdict.line),
            )
        )
    return errors
