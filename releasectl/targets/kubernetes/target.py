"""The kubernetes target: ConfigMaps, Secrets (by reference) and ExternalSecrets of a
component, one snapshot per migration.

Migration N holds every object of the component at version N; a step to version V (up or
down) makes the world hold snapshot V (nothing below 1). Two modes:

- `render` (the embedded default): stable YAML files under `path` for Argo CD or Flux
  (see kube_render); backup and restore are the directory's files.
- `apply`: server-side apply to a cluster (see kube_apply); backup and restore are the live
  objects the step touches, "absent" included, so a rollback deletes what the step created.

Objects carry `app.kubernetes.io/managed-by: releasectl`, `releasectl.dev/component` and a
`releasectl.dev/version` annotation; pruning only ever deletes objects that carry them and were
written by releasectl's field manager.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from releasectl.errors import InputError, TargetError, bundle
from releasectl.models.workspace import KubernetesTarget as Settings
from releasectl.targets.base import BackupInfo, BaseTarget, Failure, TargetContext
from releasectl.targets.kubernetes.objects import Declared, labelled, load_snapshot
from releasectl.util.deadline import Deadline

if TYPE_CHECKING:
    from pathlib import Path

    from releasectl.models.plan import Step
    from releasectl.workspace.catalogue import Migration


class KubernetesTarget(BaseTarget):
    def __init__(self, ctx: TargetContext) -> None:
        super().__init__(ctx)
        self.settings = ctx.settings if isinstance(ctx.settings, Settings) else Settings()
        self._client: Any = None
        self._snapshots: dict[int, list[Declared]] = {}
        self._pruned: list[Any] = []

    # --- static checks ------------------------------------------------------------------

    # --- shared -------------------------------------------------------------------------

    @property
    def render_mode(self) -> bool:
        return self.settings.mode == "render"

    @property
    def namespace(self) -> str:
        return self.settings.namespace or "default"

    def snapshot(self, version: int) -> list[Declared]:
        """The objects of the component at `version` (none below 1)."""
        if version <= 0:
            return []
        if version not in self._snapshots:
            migration = self._migration(version)
            objects, errors = load_snapshot(migration)
            if errors:
                raise bundle(errors)
            self._snapshots[version] = objects
        return self._snapshots[version]

    def _migration(self, version: int) -> Migration:
        found = self.ctx.migrations.get(version) if self.ctx.migrations else None
        if found is None:
            raise TargetError(f"{self.ctx.component}: no migration for version {version}")
        return found

    def _all_snapshots(self) -> list[Declared]:
        latest = self.ctx.migrations.latest if self.ctx.migrations else 0
        return [obj for v in range(1, latest + 1) for obj in self.snapshot(v)]

    @staticmethod
    def _target_version(step: Step) -> int:
        try:
            return int(step.to or 0)
        except (TypeError, ValueError):
            raise TargetError(f"{step.component}: version {step.to!r} is not a number") from None

    def _environ(self) -> Mapping[str, str]:
        return self.ctx.environ if self.ctx.environ else os.environ

    def _directory(self) -> tuple[Path, str]:
        if not self.settings.path:
            raise InputError(
                f"environment {self.ctx.env}: target {self.ctx.component}: mode render needs "
                "`path` (the output directory)"
            )
        return self.ctx.path(self.settings.path), self.settings.path

    def client(self) -> Any:
        if self._client is None:
            from releasectl.clients.kubernetes import api_client

            self._client = api_client(self.settings, root=self.ctx.root)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- check --------------------------------------------------------------------------

    def check(self, step: Step | None, migration: Migration | None) -> None:
        if self.render_mode:
            directory, shown = self._directory()
            if directory.exists() and not directory.is_dir():
                raise InputError(f"{shown}: exists and is not a directory")
            if step is not None:
                self.snapshot(self._target_version(step))
            return
        from releasectl.clients.kubernetes import server_version
        from releasectl.targets.kubernetes.apply import check_served

        client = self.client()
        server_version(client, timeout=10)
        if step is not None:
            objects = self.snapshot(self._target_version(step))
            self._bodies(objects, self._target_version(step))  # every ${env:VAR} is set
            check_served(client, {(o.api_version, o.kind) for o in objects})

    def recorded_version(self) -> int | None:
        """The version releasectl wrote on the component's objects: the header of the rendered
        files (render), the `releasectl.dev/version` annotation of the managed objects (apply).
        None when there are none; objects that disagree are an error."""
        found: dict[int, list[str]] = {}
        if self.render_mode:
            from releasectl.targets.kubernetes.render import rendered_versions

            directory, shown = self._directory()
            found = rendered_versions(directory, self.ctx.component)
            where = shown
        else:
            from releasectl.clients.kubernetes import VERSION_ANNOTATION

            client = self.client()
            for obj in self._managed(client):
                meta = obj.get("metadata") or {}
                text = str((meta.get("annotations") or {}).get(VERSION_ANNOTATION, ""))
                name = f"{obj.get('kind')}/{meta.get('name')}"
                if not text.isdigit():
                    raise TargetError(
                        f"{self.ctx.component}: {name} has no usable {VERSION_ANNOTATION} "
                        f"annotation ({text!r})"
                    )
                found.setdefault(int(text), []).append(name)
            where = f"namespace {self.namespace}"
        if not found:
            return None
        if len(found) > 1:
            listed = "; ".join(f"{v}: {', '.join(sorted(n))}" for v, n in sorted(found.items()))
            raise TargetError(
                f"{self.ctx.component}: the objects in {where} carry different versions ({listed})"
            )
        return next(iter(found))

    # --- backup and restore -------------------------------------------------------------

    def backup(self, step: Step | None, migration: Migration | None, out: IO[bytes]) -> BackupInfo:
        if self.render_mode:
            from releasectl.targets.kubernetes.render import backup_directory

            directory, shown = self._directory()
            return backup_directory(directory, shown, out)
        from releasectl.targets.kubernetes.apply import scrub_secrets
        from releasectl.targets.kubernetes.backup import (
            ObjectRef,
            snapshot_objects,
            write_objects_backup,
        )

        client = self.client()
        declared = (
            self._all_snapshots() if step is None else self.snapshot(self._target_version(step))
        )
        refs = {ObjectRef.of(o.body, self.namespace) for o in declared}
        refs |= {ObjectRef.of(o, self.namespace) for o in self._managed(client)}
        entries = snapshot_objects(client, refs)
        scrubbed = 0 if self.ctx.protected else scrub_secrets(entries)
        write_objects_backup(out, entries, component=self.ctx.component, namespace=self.namespace)
        return BackupInfo(
            items=len(entries),
            scope=sorted(f"{r.kind}/{r.name}" for r in refs),
            detail={"mode": "apply", "namespace": self.namespace, "secrets_scrubbed": scrubbed},
        )

    def restore(self, src: IO[bytes]) -> BackupInfo:
        data = src.read()
        if self.render_mode:
            from releasectl.targets.kubernetes.render import restore_directory

            directory, _ = self._directory()
            return restore_directory(directory, data)
        from releasectl.targets.kubernetes.apply import unscrub_secrets
        from releasectl.targets.kubernetes.backup import read_objects_backup, restore_objects

        meta, entries = read_objects_backup(data)
        unresolved = unscrub_secrets(entries, self._all_snapshots(), self._environ())
        for line in unresolved:
            self.ctx.log(f"not restored (value unknown, backup holds no secret data): {line}")
        kept = [e for e in entries if not e.get("keep_live")]
        restored, deleted = restore_objects(self.client(), kept)
        return BackupInfo(
            items=restored + deleted,
            scope=[f"{e['ref']['kind']}/{e['ref']['name']}" for e in entries],
            detail={"restored": restored, "deleted": deleted, "unresolved": unresolved, **meta},
        )

    # --- run and verify -----------------------------------------------------------------

    def run(self, step: Step, migration: Migration | None, deadline: Deadline) -> str:
        version = self._target_version(step)
        objects = self.snapshot(version)
        if self.render_mode:
            return self._render(version, objects, deadline)
        return self._apply(version, objects, deadline)

    def _render(self, version: int, objects: list[Declared], deadline: Deadline) -> str:
        from releasectl.targets.kubernetes.render import write_files

        directory, shown = self._directory()
        files, skipped = self._rendered(version, objects)
        written, unchanged, removed = write_files(directory, files, shown, deadline.check)
        lines = [
            f"rendered version {version} into {shown}: {written} written, {unchanged} "
            f"unchanged, {removed} removed"
        ]
        lines += [
            f"left out {o.describe()}: render mode never writes Secret data (use an ExternalSecret)"
            for o in skipped
        ]
        return "\n".join(lines)

    def _rendered(
        self, version: int, objects: list[Declared]
    ) -> tuple[dict[str, bytes], list[Declared]]:
        from releasectl.targets.kubernetes.render import render_files

        source = self._migration(version).rel if version > 0 else None
        return render_files(
            objects,
            component=self.ctx.component,
            version=version,
            namespace=self.settings.namespace,
            source=source,
        )

    def _bodies(self, objects: list[Declared], version: int) -> list[dict[str, Any]]:
        """What apply sends: labelled objects, Secrets resolved (raises before any change)."""
        from releasectl.targets.kubernetes.objects import resolve_secrets

        resolved = resolve_secrets(objects, self._environ())
        return [
            labelled(resolved.get(i, obj.body), self.ctx.component, version, self.namespace)
            for i, obj in enumerate(objects)
        ]

    def _managed(self, client: Any) -> list[dict[str, Any]]:
        from releasectl.targets.kubernetes.apply import managed_objects

        # Every kind any version declares: a kind no version declares was never ours.
        declared = self._all_snapshots()
        kinds = {(o.api_version, o.kind) for o in declared}
        namespaces = {o.namespace(self.namespace) or self.namespace for o in declared}
        return managed_objects(client, kinds, namespaces | {self.namespace}, self.ctx.component)

    def _apply(self, version: int, objects: list[Declared], deadline: Deadline) -> str:
        from releasectl.targets.kubernetes.apply import apply_all, prune
        from releasectl.targets.kubernetes.backup import ObjectRef

        bodies = self._bodies(objects, version)
        client = self.client()
        self.ctx.progress.start(f"applying {self.ctx.component} version {version}", len(bodies))
        try:
            lines = apply_all(client, bodies, self.namespace, deadline, self.ctx.progress.advance)
        finally:
            self.ctx.progress.finish()
        keep = {ObjectRef.of(b, self.namespace) for b in bodies}
        live = self._managed(client)
        self._pruned = [ObjectRef.of(o, self.namespace) for o in live]
        self._pruned = [r for r in self._pruned if r not in keep]
        lines += prune(client, live, keep, self.namespace, deadline)
        if not lines:
            lines = [f"nothing to apply for version {version}"]
        return "\n".join(lines)

    def verify(self, step: Step, migration: Migration | None, deadline: Deadline) -> None:
        version = self._target_version(step)
        objects = self.snapshot(version)
        if self.render_mode:
            from releasectl.targets.kubernetes.render import differences

            directory, shown = self._directory()
            files, _ = self._rendered(version, objects)
            problems = differences(directory, files, shown)
        else:
            from releasectl.targets.kubernetes.apply import verify_objects

            bodies = self._bodies(objects, version)
            problems = verify_objects(self.client(), bodies, self._pruned, self.namespace)
        if problems:
            raise TargetError("verify failed: " + "; ".join(problems))

    def rollback(
        self, step: Step, migration: Migration | None, backup: IO[bytes] | None, failure: Failure
    ) -> str:
        if backup is not None:
            info = self.restore(backup)
            if self.render_mode:
                where = info.scope[0] if info.scope else "the directory"
                return f"restored {where} ({info.items} files)"
            return (
                f"restored the backup: {info.detail['restored']} object(s) put back, "
                f"{info.detail['deleted']} created by the step deleted"
            )
        # No backup: put the version the step started from back in place.
        previous = self._target_version(step.model_copy(update={"to": step.from_}))
        undo = step.model_copy(update={"to": previous, "from_": step.to})
        output = self.run(undo, migration, Deadline.after(self.timeout(migration)))
        return f"re-applied version {previous}: {output}"
