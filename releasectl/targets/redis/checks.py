"""Static checks of a Redis migration (validate, plan): its parts parse, `migration.py` declares a
scope and defines its functions, no op sets a credential, no op names a key outside the scope.
No server is needed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from releasectl.errors import InputError, Location, ReleasectlError, flatten
from releasectl.targets.redis import ops, python

if TYPE_CHECKING:
    from releasectl.workspace.catalogue import Migration

# CONFIG parameters that hold credentials: a migration must not set them from a file
SECRET_PARAMETERS = frozenset({"requirepass", "masterauth", "masteruser"})


def _load(migration: Migration, name: str) -> ops.Part | None:
    if name not in migration.files:
        return None
    loader = ops.load_checks if name == "verify.yaml" else ops.load_ops
    return loader(migration.file(name), f"{migration.rel}/{name}")


def problems(migration: Migration) -> list[ReleasectlError]:
    """Everything wrong with one migration that can be told without a server."""
    errors: list[ReleasectlError] = []
    has_python = python.FILE in migration.files
    if has_python and "up.yaml" in migration.files:
        errors.append(
            InputError(
                "has both up.yaml and migration.py: keep one",
                location=Location(migration.rel),
            )
        )
    parts: list[ops.Part] = []
    for name in ("up.yaml", "down.yaml", "verify.yaml"):
        try:
            part = _load(migration, name)
        except ReleasectlError as exc:
            errors.extend(flatten(exc))
            continue
        if part is not None and name != "verify.yaml":
            parts.append(part)
    try:
        meta_scope = migration.meta.scope
    except ReleasectlError as exc:
        return [*errors, exc]
    if has_python:
        errors.extend(python.problems(migration))
        if not meta_scope:
            errors.append(
                InputError(
                    "a migration.py migration must declare `scope:` (the key patterns it "
                    "touches) in migration.yaml, so that its backup covers them",
                    location=Location(f"{migration.rel}/migration.yaml"),
                )
            )
    for part in parts:
        for item in part.items:
            args = item.args
            if isinstance(args, ops.ConfigSetOp) and args.parameter in SECRET_PARAMETERS:
                errors.append(
                    InputError(
                        f"config_set {args.parameter} would put a credential in a file; "
                        "set it outside releasectl",
                        location=item.where,
                    )
                )
        if meta_scope:
            errors.extend(_outside_scope(part, list(meta_scope)))
    return errors


def _outside_scope(part: ops.Part, scope: list[str]) -> list[ReleasectlError]:
    """Exact keys an op names that the declared scope does not cover (their rollback would
    lose them)."""
    errors: list[ReleasectlError] = []
    for item in part.items:
        patterns, _ = ops.touched(ops.Part(part.display, (item,)))
        for pattern in patterns:
            key = ops.literal(pattern)
            if key is not None and not any(ops.matches(s, key) for s in scope):
                errors.append(
                    InputError(
                        f"key {key!r} is outside the migration's scope {scope}: its backup "
                        "would not cover it",
                        location=item.where,
                    )
                )
    return errors
