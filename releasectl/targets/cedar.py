"""The `cedar` target: Cedar policy sets as migrations.

Migration N is a snapshot of the whole set at version N (policies, schema, tests). Moving to
version V, up or down, stores snapshot V (nothing for V = 0), after checking that every policy
parses, validates against the schema and passes the snapshot's tests: a step that fails any of
these changes nothing in the store. `verify` reads the stored set back, checks its checksums
and runs the tests of snapshot V against what was stored. The backup is the stored set as it
is (or "absent") and `restore` puts it back byte for byte.
"""

from __future__ import annotations

import base64
import json
from typing import IO, TYPE_CHECKING, Any

from releasectl.cedarlib.snapshot import Snapshot, compile_stored, read_stored
from releasectl.cedarlib.stores import ConfigMapStore, DirStore, Store
from releasectl.errors import InputError, TargetError
from releasectl.targets.base import BackupInfo, BaseTarget, Failure, TargetContext
from releasectl.util.deadline import Deadline

if TYPE_CHECKING:
    from releasectl.models.plan import Step
    from releasectl.workspace.catalogue import Migration

BACKUP_FORMAT = "releasectl.cedar-backup/1"


class CedarTarget(BaseTarget):
    def __init__(self, ctx: TargetContext) -> None:
        super().__init__(ctx)
        self._store: Store | None = None
        self._prepared: dict[int, tuple[Snapshot, dict[str, bytes], int]] = {}

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.ctx)
        return self._store

    # --- the engine's steps ---------------------------------------------------------------

    def check(self, step: Step | None, migration: Migration | None) -> None:
        """The store is reachable and holds what the state says; the new set is sound."""
        files = self.store.read()
        if step is None:
            return
        if files is not None:
            stored = read_stored(files, self.store.describe())
            expected = {_version(step.from_), _version(step.to)}
            if stored.version not in expected:
                raise TargetError(
                    f"{self.store.describe()} holds version {stored.version} of the policies, "
                    f"but the step moves {step.from_} -> {step.to} (changed outside releasectl?)"
                )
        version = _version(step.to)
        if version:
            self._prepare(version, migration)  # parse, validate, test before anything runs

    def recorded_version(self) -> int | None:
        """The version of the policy set in the store (None: the store holds none)."""
        files = self.store.read()
        if files is None:
            return None
        return read_stored(files, self.store.describe()).version

    def backup(self, step: Step | None, migration: Migration | None, out: IO[bytes]) -> BackupInfo:
        files = self.store.read()
        version = None
        if files is not None:
            try:
                version = read_stored(files, self.store.describe()).version
            except TargetError:
                version = None  # a damaged set is still backed up exactly as it is
        doc: dict[str, Any] = {
            "format": BACKUP_FORMAT,
            "component": self.ctx.component,
            "store": self.store.describe(),
            "present": files is not None,
            "version": version,
            "files": {k: base64.b64encode(v).decode() for k, v in sorted((files or {}).items())},
        }
        out.write(json.dumps(doc, indent=1, sort_keys=True).encode())
        return BackupInfo(
            items=len(files or {}),
            scope=[self.store.describe()],
            detail={"present": files is not None, "version": version},
        )

    def restore(self, src: IO[bytes]) -> BackupInfo:
        try:
            doc = json.loads(src.read().decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TargetError(f"not a Cedar policy backup: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != BACKUP_FORMAT:
            raise TargetError("not a Cedar policy backup (unknown format)")
        if not doc.get("present"):
            self.store.delete()
            return BackupInfo(items=0, scope=[self.store.describe()], detail={"present": False})
        files = {k: base64.b64decode(v) for k, v in doc["files"].items()}
        self.store.write(files)
        return BackupInfo(
            items=len(files),
            scope=[self.store.describe()],
            detail={"present": True, "version": doc.get("version")},
        )

    def run(self, step: Step, migration: Migration | None, deadline: Deadline) -> str:
        version = _version(step.to)
        if version == 0:
            deadline.check(f"removing the policy set from {self.store.describe()}")
            self.store.delete()
            return f"removed the policy set from {self.store.describe()}"
        snapshot, files, count = self._prepare(version, migration)
        deadline.check(f"storing {snapshot.display}")
        self.store.write(files, lambda: deadline.check(f"storing {snapshot.display}"))
        manifest = json.loads(files["manifest.json"])
        return (
            f"stored {count} policies of {snapshot.migration_id} in "
            f"{self.store.describe()} (checksum {manifest['checksum'][:12]})"
        )

    def verify(self, step: Step, migration: Migration | None, deadline: Deadline) -> None:
        version = _version(step.to)
        files = self.store.read()
        if version == 0:
            if files is not None:
                raise TargetError(f"{self.store.describe()} still holds a policy set")
            return
        if files is None:
            raise TargetError(f"{self.store.describe()} holds no policy set")
        stored = read_stored(files, self.store.describe())
        if stored.version != version:
            raise TargetError(
                f"{self.store.describe()} holds version {stored.version}, expected {version}"
            )
        try:
            compiled = compile_stored(stored)
        except InputError as exc:
            raise TargetError(f"the stored policy set is not valid: {exc}") from None
        snapshot = self._snapshot(version, migration)
        compiled.suites = snapshot.compile().suites
        deadline.check(f"verifying {self.store.describe()}")
        failed = [o for o in compiled.run_tests() if not o.passed]
        if failed:
            raise TargetError(
                f"the stored set fails {len(failed)} policy test(s):"
                + "".join(f"\n{o.error()}" for o in failed)
            )

    def rollback(
        self, step: Step, migration: Migration | None, backup: IO[bytes] | None, failure: Failure
    ) -> str:
        if backup is not None:
            info = self.restore(backup)
            if not info.detail.get("present"):
                return "restored the backup: no policy set was stored"
            return f"restored the backup ({info.items} keys) in {self.store.describe()}"
        # No backup: a snapshot's previous version is its own undo.
        self.run(step.model_copy(update={"to": step.from_}), None, Deadline(None))
        return f"stored version {step.from_} again in {self.store.describe()}"

    # --- helpers --------------------------------------------------------------------------

    def _prepare(
        self, version: int, migration: Migration | None
    ) -> tuple[Snapshot, dict[str, bytes], int]:
        """Compile and test snapshot `version`; the keys to store. Raises on any problem."""
        if version not in self._prepared:
            snapshot = self._snapshot(version, migration)
            compiled = snapshot.compile()
            failed = [o for o in compiled.run_tests() if not o.passed]
            if failed:
                raise InputError(
                    f"{snapshot.display}: {len(failed)} policy test(s) failed:"
                    + "".join(f"\n{o.error()}" for o in failed)
                )
            self._prepared[version] = (snapshot, snapshot.render(compiled), len(compiled.policies))
        return self._prepared[version]

    def _snapshot(self, version: int, migration: Migration | None) -> Snapshot:
        found = self.ctx.migrations.get(version) if self.ctx.migrations else None
        if found is None and migration is not None and migration.number == version:
            found = migration
        if found is None:
            raise InputError(f"no migration {version:04d} for component {self.ctx.component!r}")
        return Snapshot.from_migration(found)


def _version(value: int | str | None) -> int:
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        raise InputError(f"{value!r} is not a schema version") from None


def open_store(ctx: TargetContext) -> Store:
    """The store an environment's settings name: a directory, or a ConfigMap in a cluster."""
    from releasectl.models.workspace import CedarTarget as CedarSettings

    settings = ctx.settings
    if not isinstance(settings, CedarSettings):
        raise InputError(f"no target settings for component {ctx.component!r} in {ctx.env}")
    where = f"environments.{ctx.env}.targets.{ctx.component}"
    if settings.store == "dir":
        if not settings.path:
            raise InputError(f"{where}: store: dir needs a path")
        return DirStore(ctx.path(settings.path), settings.path)
    if not settings.namespace or not settings.name:
        raise InputError(f"{where}: store: configmap needs a namespace and a name")
    from releasectl.clients import kubernetes as kube

    client = kube.api_client(settings, root=ctx.root)
    return ConfigMapStore(client, settings.namespace, settings.name, ctx.component)
