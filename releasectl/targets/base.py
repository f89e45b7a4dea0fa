"""The Target protocol: what the engine asks of a component type, and the registry of types.

Static checks of migrations (validate, plan) are not part of a Target: `CHECKS` names each
type's checks module, which needs no connection.

The engine drives every step the same way:

    target.check(step, migration)                  # pre-check: reachable, preconditions
    info = target.backup(step, migration, out)     # scoped backup, streamed into `out`
    output = target.run(step, migration, deadline) # up / down / deploy, within the deadline
    target.verify(step, migration)                 # post-check
    ... on any failure: target.rollback(step, migration, backup, failure)

`backup(None, None, out)` (and `restore`) serve the `backup COMPONENT` / `restore` commands:
the whole component (every scope its migrations name). A backup stream is self-describing:
`restore(src)` needs nothing but the bytes `backup` wrote.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from releasectl.errors import ReleasectlError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from releasectl.models.plan import Step
    from releasectl.util.deadline import Deadline
    from releasectl.workspace.catalogue import ComponentMigrations, Migration


class Progress(Protocol):
    """Progress of a long operation (keys backed up, objects applied)."""

    def start(self, label: str, total: int | None = None) -> None: ...
    def advance(self, amount: int = 1) -> None: ...
    def finish(self) -> None: ...


class NullProgress:
    def start(self, label: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class TargetContext:
    """Everything a target may use. Settings have ${VAR} already resolved."""

    root: Path  # workspace root; relative paths in settings are relative to it
    env: str
    component: str
    type: str
    settings: BaseModel | None
    migrations: ComponentMigrations | None
    protected: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)
    progress: Progress = field(default_factory=NullProgress)
    log: Callable[[str], None] = field(default=lambda _line: None)
    default_timeout: float | None = 600.0
    # a step's process group started (pgid, run id): the engine records it in the journal
    started: Callable[[int, str], None] = field(default=lambda _pgid, _run_id: None)

    def path(self, value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else self.root / p


@dataclass
class BackupInfo:
    """What a target says about a backup it wrote (stored in the backup's metadata)."""

    items: int = 0  # keys, rows, objects, files
    scope: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Failure:
    """Why a step failed, as the engine saw it: the phase (check, backup, run, verify) and the
    error. A transactional target whose `run` failed knows its transaction rolled back."""

    phase: str
    error: BaseException
    # after a crash (phase "crash"): whether the step's script had started; False when the
    # journal shows its process group was never recorded (its gate never opened). None: unknown
    started: bool | None = None


class Target(Protocol):
    ctx: TargetContext

    def check(self, step: Step | None, migration: Migration | None) -> None:
        """Pre-check before a step: the target is reachable and in the expected state."""

    def recorded_version(self) -> int | None:
        """The schema version the target itself records (the SQL history table, the Redis
        schema key, Kubernetes labels), or None where it records none. Connecting is the
        reachability check: raises TargetError when the target cannot be reached."""

    def backup(self, step: Step | None, migration: Migration | None, out: IO[bytes]) -> BackupInfo:
        """Write a self-describing backup of what the step touches (everything if None)."""

    def restore(self, src: IO[bytes]) -> BackupInfo:
        """Put back exactly what `backup` saw: delete what was created since, restore the rest."""

    def run(self, step: Step, migration: Migration | None, deadline: Deadline) -> str:
        """Run the step (up, down or deploy). Returns captured output for the history."""

    def verify(self, step: Step, migration: Migration | None, deadline: Deadline) -> None:
        """Post-check after the step; raise TargetError if the result is not as declared."""

    def rollback(
        self, step: Step, migration: Migration | None, backup: IO[bytes] | None, failure: Failure
    ) -> str:
        """Undo a failed step (restore the backup or run the reverse part); say what was done."""

    def close(self) -> None: ...


# type -> "module:Class"; modules load on first use so unused clients are never imported.
REGISTRY: dict[str, str] = {
    "redis": "releasectl.targets.redis.target:RedisTarget",
    "sql": "releasectl.targets.sql.target:SqlTarget",
    "script": "releasectl.targets.script.target:ScriptTarget",
    "kubernetes": "releasectl.targets.kubernetes.target:KubernetesTarget",
    "cedar": "releasectl.targets.cedar:CedarTarget",
    "service": "releasectl.targets.service:ServiceTarget",
}


# type -> "module:function": the static checks of one migration at validate/plan time. They
# need no connection and no environment, so they live apart from the targets and load none of
# their clients. A type that is not named has no migrations to check.
CHECKS: dict[str, str] = {
    "redis": "releasectl.targets.redis.checks:problems",
    "sql": "releasectl.targets.sql.checks:problems",
    "script": "releasectl.targets.script.checks:problems",
    "kubernetes": "releasectl.targets.kubernetes.checks:problems",
    "cedar": "releasectl.cedarlib.snapshot:migration_problems",
}


TargetFactory = Callable[[TargetContext], Target]
StaticCheck = Callable[["Migration"], list[ReleasectlError]]


def static_check(component_type: str) -> StaticCheck | None:
    """The static checks of a component type's migrations (None: it has none)."""
    entry = CHECKS.get(component_type)
    if entry is None:
        return None
    module_name, _, attr = entry.partition(":")
    check: StaticCheck = getattr(importlib.import_module(module_name), attr)
    return check


def static_prepare(component_type: str) -> Callable[[Sequence[Migration]], None] | None:
    """A type's batch step before its static checks (None: it has none): a checks module may
    define `prepare(migrations)` to do at once, for many migrations, what `problems` would do
    one by one (the script type parses many parts in one shell)."""
    entry = CHECKS.get(component_type)
    if entry is None:
        return None
    prepare: Callable[[Sequence[Migration]], None] | None = getattr(
        importlib.import_module(entry.partition(":")[0]), "prepare", None
    )
    return prepare


def target_class(component_type: str) -> TargetFactory:
    module_name, _, attr = REGISTRY[component_type].partition(":")
    factory: TargetFactory = getattr(importlib.import_module(module_name), attr)
    return factory


def open_target(ctx: TargetContext) -> Target:
    return target_class(ctx.type)(ctx)


class BaseTarget:
    """Defaults shared by the targets: no pre-check, backup-driven rollback."""

    def __init__(self, ctx: TargetContext) -> None:
        self.ctx = ctx

    def check(self, step: Step | None, migration: Migration | None) -> None:
        return None

    def recorded_version(self) -> int | None:
        return None

    def timeout(self, migration: Migration | None) -> float | None:
        if migration is not None and migration.meta.timeout is not None:
            return migration.meta.timeout
        return self.ctx.default_timeout

    def rollback(
        self, step: Step, migration: Migration | None, backup: IO[bytes] | None, failure: Failure
    ) -> str:
        if backup is not None:
            info = self.restore(backup)  # type: ignore[attr-defined]
            return f"restored the backup ({info.items} items)"
        return "nothing to undo"

    def close(self) -> None:
        return None
