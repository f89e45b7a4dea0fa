"""Static checks of a script migration (validate, plan): `up.sh` is not empty, the scope names
safe paths, and the shell parses every part (`sh -n`) without running anything."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from releasectl.errors import InputError, Location, ReleasectlError
from releasectl.models.workspace import ScriptTarget as ScriptSettings
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
    if "up.sh" in migration.files and not safefiles.read_bytes(up).strip():
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


def _syntax_problems(migration: Migration, shell: str) -> list[ReleasectlError]:
    """`shell -n` on each part: the shell parses it without running anything."""
    argv = shlex.split(shell)
    if not argv:
        return []
    exe = shutil.which(argv[0])
    if exe is None or Path(argv[0]).name not in SYNTAX_SHELLS:
        return []
    errors: list[ReleasectlError] = []
    for part in PARTS:
        if part not in migration.files:
            continue
        try:
            proc = subprocess.run(
                [exe, "-n", str(migration.file(part))],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode == 0:
            continue
        message = proc.stderr.strip().splitlines()[0] if proc.stderr.strip() else "syntax error"
        found = re.search(r"line (\d+):\s*(.*)", message)
        line = int(found.group(1)) if found else None
        text = found.group(2) if found else message
        errors.append(
            InputError(
                f"{Path(argv[0]).name} -n: {text}",
                location=Location(f"{migration.rel}/{part}", line),
            )
        )
    return errors
