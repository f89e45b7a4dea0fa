"""Redis keys a step deletes, renames or gives a shorter TTL, and operations outside the
migration's declared scope.

Statically, from `up.yaml` / `down.yaml`: every `del`, `rename` and `expire`, and every op
whose keys the declared `scope:` does not cover (the static checks already refuse an exact key
outside the scope; a pattern outside it passes them, and is flagged here). A `migration.py` can
only be judged by running it: the rehearsal's observations (keys gone, renamed or expiring on
the copy, counted by scope pattern, and commands the copy saw on keys outside the scope) are
merged in when a rehearsal was made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from releasectl.errors import ReleasectlError
from releasectl.models.analysis import KeyOperation, RedisChanges, StepAnalysis
from releasectl.targets.redis import ops, python

if TYPE_CHECKING:
    from releasectl.analysis.base import StepInput
    from releasectl.workspace.catalogue import Migration


def analyze(item: StepInput) -> StepAnalysis | None:
    step, migration = item.step, item.migration
    if migration is None or step.action not in ("up", "down"):
        return None
    notes: list[str] = []
    try:
        declared = list(migration.meta.scope or ())
        operations, outside = static_operations(migration, f"{step.action}.yaml", declared)
    except ReleasectlError as exc:
        declared, operations, outside = [], [], []
        notes.append(f"not analysed: {exc}")
    changes = RedisChanges(operations=operations, outside_scope=outside, scope=declared)
    observed = item.rehearsed.observed_redis if item.rehearsed else None
    if observed is not None:
        changes = merge(changes, observed)
    elif python.FILE in migration.files:
        notes.append(
            f"{migration.rel}/{python.FILE}: what it does is known only by running it "
            "(plan --rehearse)"
        )
    return StepAnalysis(
        index=item.index,
        component=step.component,
        type=step.type,
        action=step.action,
        migration=step.migration,
        redis=changes,
        notes=notes,
    )


def covered(scope: list[str], pattern: str) -> bool:
    """Whether the keys `pattern` (an exact key escaped, or a glob) names are inside `scope`:
    conservative, a glob counts as covered only when a scope pattern matches it as text."""
    key = ops.literal(pattern)
    return any(ops.matches(s, key if key is not None else pattern) or s == pattern for s in scope)


def static_operations(
    migration: Migration, part_name: str, scope: list[str]
) -> tuple[list[KeyOperation], list[KeyOperation]]:
    """(deletes, renames and expiries of the part; every op on keys outside `scope`)."""
    if part_name not in migration.files:
        return [], []
    part = ops.load_ops(migration.file(part_name), f"{migration.rel}/{part_name}")
    destructive: list[KeyOperation] = []
    outside: list[KeyOperation] = []
    for op in part.items:
        args = op.args
        line = op.where.line
        file = op.where.path
        named, _ = ops.touched(ops.Part(part.display, (op,)))
        if isinstance(args, ops.DelOp | ops.RenameOp | ops.ExpireOp):
            for pattern in named[:1] if isinstance(args, ops.RenameOp) else named:
                destructive.append(
                    KeyOperation(
                        command=op.name,
                        key=_shown(pattern),
                        write=True,
                        source="static",
                        outside_scope=bool(scope) and not covered(scope, pattern),
                        file=file,
                        line=line,
                    )
                )
        if not scope:
            continue  # no declared scope: the backup covers what the ops touch
        for pattern in named:
            if not covered(scope, pattern):
                outside.append(
                    KeyOperation(
                        command=op.name,
                        key=_shown(pattern),
                        write=True,
                        source="static",
                        outside_scope=True,
                        file=file,
                        line=line,
                    )
                )
    return destructive, outside


def _shown(pattern: str) -> str:
    key = ops.literal(pattern)
    return key if key is not None else pattern


def merge(static: RedisChanges, observed: RedisChanges) -> RedisChanges:
    seen = {(o.command.lower(), o.key) for o in static.outside_scope}
    extra = [o for o in observed.outside_scope if (o.command.lower(), o.key) not in seen]
    return static.model_copy(
        update={
            "deleted": observed.deleted,
            "renamed": observed.renamed,
            "ttl_shortened": observed.ttl_shortened,
            "created": observed.created,
            "outside_scope": [*static.outside_scope, *extra],
            "scope": observed.scope or static.scope,
            "observed": True,
        }
    )
