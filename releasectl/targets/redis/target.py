"""The `redis` target: declarative (`up.yaml`/`down.yaml`/`verify.yaml`) and `migration.py`
migrations, scoped streaming backups and restore.

Connections come from `releasectl.clients.redis` (URLs, clients, shards, deadlines) and
`releasectl.clients.redis_embedded` (the embedded server); the package's other modules are
listed in its `__init__`.

Verification: an `up` step runs the checks of `verify.yaml` and `verify(r)` of migration.py;
every declarative step also checks that what its part deleted or renamed away (and did not
write again) is gone. A `down` step has no verify.yaml of its own, so those implicit checks are
all it gets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from releasectl.clients.redis import Endpoint, Shards
from releasectl.errors import (
    InputError,
    Location,
    TargetError,
)
from releasectl.models.workspace import RedisTarget as RedisSettings
from releasectl.targets.base import BackupInfo, BaseTarget, TargetContext
from releasectl.targets.redis import backup as redis_backup
from releasectl.targets.redis import ops as redis_ops
from releasectl.targets.redis import python as redis_python
from releasectl.targets.redis import run as redis_run
from releasectl.util.deadline import Deadline, StepTimeout

if TYPE_CHECKING:
    from releasectl.models.plan import Step
    from releasectl.workspace.catalogue import Migration


class RedisTarget(BaseTarget):
    def __init__(self, ctx: TargetContext) -> None:
        super().__init__(ctx)
        # static checks (validate, plan) make targets without settings: connect lazily
        settings = ctx.settings if isinstance(ctx.settings, RedisSettings) else None
        self._settings = settings
        self._endpoint: Endpoint | None = None
        self._parts: dict[tuple[str, str], redis_ops.Part | None] = {}

    @property
    def settings(self) -> RedisSettings:
        if self._settings is None:
            raise InputError(f"component {self.ctx.component!r} has no Redis target settings")
        return self._settings

    @property
    def endpoint(self) -> Endpoint:
        if self._endpoint is None:
            self._endpoint = Endpoint(
                self.settings.url,
                self.ctx.root,
                name=f"redis target {self.ctx.component!r}",
                cluster=self.settings.cluster,
            )
        return self._endpoint

    # --- migrations' parts ----------------------------------------------------------------

    def part(self, migration: Migration, name: str) -> redis_ops.Part | None:
        """The parsed up.yaml, down.yaml or verify.yaml of a migration (None if absent)."""
        cache_key = (str(migration.path), name)
        if cache_key not in self._parts:
            if name not in migration.files:
                self._parts[cache_key] = None
            else:
                loader = redis_ops.load_checks if name == "verify.yaml" else redis_ops.load_ops
                self._parts[cache_key] = loader(migration.file(name), f"{migration.rel}/{name}")
        return self._parts[cache_key]

    def scope(self, migration: Migration) -> tuple[list[str], list[str]]:
        """Key patterns and CONFIG parameters a migration's backup covers."""
        patterns: list[str] = []
        params: list[str] = []
        for name in ("up.yaml", "down.yaml"):
            part = self.part(migration, name)
            if part is not None:
                touched, touched_params = redis_ops.touched(part)
                patterns.extend(touched)
                params.extend(touched_params)
        if migration.meta.scope:
            patterns = list(migration.meta.scope)
        elif redis_python.FILE in migration.files:
            raise TargetError(
                "a migration.py migration needs `scope:` in migration.yaml to be backed up",
                location=Location(f"{migration.rel}/migration.yaml"),
            )
        return redis_ops.unique(patterns), redis_ops.unique(params)

    def component_scope(self) -> tuple[list[str], list[str]]:
        patterns: list[str] = []
        params: list[str] = []
        found = self.ctx.migrations
        for migration in found.migrations if found is not None else []:
            more, more_params = self.scope(migration)
            patterns.extend(more)
            params.extend(more_params)
        return redis_ops.unique(patterns), redis_ops.unique(params)

    # --- the protocol ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        import redis
        from redis.exceptions import RedisClusterException

        try:
            yield
        except (redis.RedisError, RedisClusterException) as exc:
            raise self.endpoint.error(what, exc) from exc
        except OSError as exc:
            raise self.endpoint.error(what, exc) from exc

    def check(self, step: Step | None, migration: Migration | None) -> None:
        self.endpoint.ping()
        if migration is not None:
            # a parse error stops the step before its backup is taken
            for name in ("up.yaml", "down.yaml", "verify.yaml"):
                self.part(migration, name)

    def recorded_version(self) -> int | None:
        """The integer under the schema key (`version_key`, default
        schema:<component>:version), None when the key does not exist."""
        key = self.settings.version_key or f"schema:{self.ctx.component}:version"
        with self._errors(f"cannot read {key}"):
            self.endpoint.ping()
            value = self.endpoint.shards().router.get(key)
        if value is None:
            return None
        text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
        if not text.strip().isdigit():
            raise TargetError(
                f"{self.endpoint.describe()}: {key} holds {text[:40]!r}, not a schema version"
            )
        return int(text)

    def backup(self, step: Step | None, migration: Migration | None, out: IO[bytes]) -> BackupInfo:
        if migration is None:
            patterns, params = self.component_scope()
        else:
            patterns, params = self.scope(migration)
        with self._errors("backup failed"):
            result = redis_backup.backup(
                self.endpoint.shards(),
                patterns,
                params,
                out,
                scan_count=self.settings.scan_count,
                progress=self.ctx.progress,
            )
        return BackupInfo(
            items=result.keys,
            scope=patterns,
            detail={"bytes": result.bytes, "config": params},
        )

    def restore(self, src: IO[bytes]) -> BackupInfo:
        with self._errors("restore failed"):
            header, result = redis_backup.restore(
                self.endpoint.shards(),
                src,
                scan_count=self.settings.scan_count,
                progress=self.ctx.progress,
            )
        return BackupInfo(
            items=result.keys,
            scope=header.patterns,
            detail={
                "deleted": result.deleted,
                "delete_seconds": round(result.delete_seconds, 3),
                "config": sorted(header.config),
            },
        )

    def run(self, step: Step, migration: Migration | None, deadline: Deadline) -> str:
        if migration is None or step.action not in ("up", "down"):
            raise TargetError(f"a redis step needs a migration to run, got {step.action}")
        part = self.part(migration, f"{step.action}.yaml")
        if part is None and redis_python.FILE not in migration.files:
            raise TargetError(
                f"has no {step.action}.yaml or migration.py", location=Location(migration.rel)
            )
        with self._deadline_shards(deadline, decode=part is None) as shards:
            if part is not None:
                lines = redis_run.run_part(
                    shards, part, deadline, scan_count=self.settings.scan_count
                )
                return "\n".join(lines)
            value = redis_python.call(migration, step.action, shards.router, deadline)
            return "" if value is None else str(value)

    def verify(self, step: Step, migration: Migration | None, deadline: Deadline) -> None:
        if migration is None:
            return
        failures: list[str] = []
        part = self.part(migration, f"{step.action}.yaml")
        scan_count = self.settings.scan_count
        with self._deadline_shards(deadline, decode=False) as shards:
            if part is not None:
                failures.extend(redis_run.check_gone(shards, part, deadline, scan_count=scan_count))
            checks = self.part(migration, "verify.yaml") if step.action == "up" else None
            if checks is not None:
                failures.extend(
                    redis_run.run_checks(shards, checks, deadline, scan_count=scan_count)
                )
        if step.action == "up" and redis_python.FILE in migration.files:
            module = redis_python.load(migration)
            if callable(getattr(module, "verify", None)):
                with self._deadline_shards(deadline, decode=True) as shards:
                    ok = redis_python.call(migration, "verify", shards.router, deadline)
                if ok is False:
                    failures.append(f"{migration.rel}/{redis_python.FILE}: verify() returned False")
        if failures:
            raise TargetError("verification failed:\n  " + "\n  ".join(failures))

    @contextlib.contextmanager
    def _deadline_shards(self, deadline: Deadline, *, decode: bool) -> Iterator[Shards]:
        import redis
        from redis.exceptions import RedisClusterException

        shards = self.endpoint.shards(decode=decode, deadline=deadline)
        try:
            yield shards
        except redis.TimeoutError as exc:
            if deadline.expired():
                raise StepTimeout(f"{self.endpoint.describe()}: timed out") from exc
            raise self.endpoint.error("command timed out", exc) from exc
        except (redis.RedisError, RedisClusterException) as exc:
            raise self.endpoint.error("command failed", exc) from exc
        finally:
            shards.close()

    def close(self) -> None:
        if self._endpoint is not None:
            self._endpoint.close()
