"""The service target: `deploy` steps that move a service to a semantic version.

- `record` (or no `image` template): nothing but the version recorded in the state.
- `render`: a Deployment `deployment-<name>.yaml` under `path`, image from the template
  (`{version}` replaced), in the same stable format as the kubernetes target's render.
- `apply`: the Deployment's container image in the cluster, by server-side apply of just that
  field (field manager `releasectl`); a Deployment that does not exist yet is created in full,
  labelled as releasectl's, so that undeploying or rolling back a first deploy deletes it.

Rollback redeploys the version the step started from, or removes what the step created when
it started from nothing.
"""

from __future__ import annotations

import base64
import contextlib
import json
from typing import IO, TYPE_CHECKING, Any

from releasectl.clients.kubernetes import (
    COMPONENT_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    VERSION_ANNOTATION,
)
from releasectl.errors import InputError, TargetError
from releasectl.models.workspace import ServiceTarget as Settings
from releasectl.targets.base import BackupInfo, BaseTarget, Failure, TargetContext
from releasectl.util.deadline import Deadline
from releasectl.util.fsutil import atomic_write

if TYPE_CHECKING:
    from pathlib import Path

    from releasectl.models.plan import Step
    from releasectl.workspace.catalogue import Migration

BACKUP_FORMAT = "releasectl-service/1"
NAME_LABEL = "app.kubernetes.io/name"


class ServiceTarget(BaseTarget):
    def __init__(self, ctx: TargetContext) -> None:
        super().__init__(ctx)
        self.settings = ctx.settings if isinstance(ctx.settings, Settings) else Settings()
        self._client: Any = None

    @property
    def mode(self) -> str:
        return "record" if self.settings.image is None else self.settings.mode

    @property
    def name(self) -> str:
        return self.settings.deployment or self.ctx.component

    @property
    def namespace(self) -> str:
        return self.settings.namespace or "default"

    def image(self, version: int | str) -> str:
        template = self.settings.image or ""
        return template.replace("{version}", str(version))

    def client(self) -> Any:
        if self._client is None:
            from releasectl.clients.kubernetes import api_client

            self._client = api_client(self.settings, root=self.ctx.root)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- the Deployment ------------------------------------------------------------------

    def deployment(self, version: int | str) -> dict[str, Any]:
        """The whole Deployment releasectl writes when it owns it (render, first apply)."""
        selector = {NAME_LABEL: self.name}
        meta: dict[str, Any] = {
            "name": self.name,
            "labels": {
                NAME_LABEL: self.name,
                "app.kubernetes.io/version": str(version),
                MANAGED_BY_LABEL: MANAGED_BY,
                COMPONENT_LABEL: self.ctx.component,
            },
            "annotations": {VERSION_ANNOTATION: str(version)},
        }
        if self.settings.namespace or self.mode == "apply":
            meta["namespace"] = self.namespace
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": {**selector, "app.kubernetes.io/version": str(version)}},
                    "spec": {
                        "containers": [
                            {
                                "name": self.settings.container or self.name,
                                "image": self.image(version),
                            }
                        ]
                    },
                },
            },
        }

    def _container(self, live: dict[str, Any]) -> str:
        containers = live.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        names = [str(c.get("name")) for c in containers]
        if self.settings.container:
            if self.settings.container not in names:
                raise TargetError(
                    f"Deployment {self.namespace}/{self.name} has no container "
                    f"{self.settings.container!r} (containers: {', '.join(names) or 'none'})"
                )
            return self.settings.container
        for candidate in (self.name, self.ctx.component):
            if candidate in names:
                return candidate
        if not names:
            raise TargetError(f"Deployment {self.namespace}/{self.name} has no containers")
        return names[0]

    # --- render files --------------------------------------------------------------------

    def _file(self) -> tuple[Path, str]:
        if not self.settings.path:
            raise InputError(
                f"environment {self.ctx.env}: target {self.ctx.component}: mode render needs "
                "`path` (the output directory)"
            )
        rel = f"{self.settings.path.rstrip('/')}/deployment-{self.name}.yaml"
        return self.ctx.path(rel), rel

    def rendered(self, version: int | str) -> bytes:
        from releasectl.targets.kubernetes.render import GENERATED_MARK, dump_object

        header = (
            f"{GENERATED_MARK.decode()}: service {self.ctx.component}, version {version}.\n"
            "# Do not edit: change the release manifest and render again.\n"
        )
        return (header + dump_object(self.deployment(version))).encode()

    def _check_file_is_ours(self) -> None:
        from releasectl.targets.kubernetes.render import is_generated

        path, rel = self._file()
        if path.exists() and not is_generated(path):
            raise InputError(f"{rel} exists and was not generated by releasectl; move it away")

    # --- protocol ------------------------------------------------------------------------

    def check(self, step: Step | None, migration: Migration | None) -> None:
        if self.mode == "render":
            self._check_file_is_ours()
        elif self.mode == "apply":
            from releasectl.clients.kubernetes import server_version

            server_version(self.client(), timeout=10)

    def backup(self, step: Step | None, migration: Migration | None, out: IO[bytes]) -> BackupInfo:
        doc: dict[str, Any] = {"format": BACKUP_FORMAT, "mode": self.mode}
        items = 0
        if self.mode == "render":
            path, rel = self._file()
            doc["path"] = rel
            with contextlib.suppress(FileNotFoundError):
                doc["data"] = base64.b64encode(path.read_bytes()).decode()
                items = 1
        elif self.mode == "apply":
            from releasectl.targets.kubernetes.backup import ObjectRef, snapshot_objects

            ref = ObjectRef("apps/v1", "Deployment", self.namespace, self.name)
            doc["objects"] = snapshot_objects(self.client(), [ref])
            items = sum(1 for e in doc["objects"] if e["live"] is not None)
        out.write(json.dumps(doc, sort_keys=True).encode())
        return BackupInfo(
            items=items, scope=[f"Deployment/{self.name}"], detail={"mode": self.mode}
        )

    def restore(self, src: IO[bytes]) -> BackupInfo:
        try:
            doc = json.loads(src.read())
        except ValueError:
            raise InputError("not a service backup (invalid JSON)") from None
        if not isinstance(doc, dict) or doc.get("format") != BACKUP_FORMAT:
            raise InputError(f"not a service backup (format {BACKUP_FORMAT})")
        mode = doc.get("mode")
        if mode == "render":
            path, _ = self._file()
            if "data" in doc:
                atomic_write(path, base64.b64decode(doc["data"], validate=True))
            else:
                path.unlink(missing_ok=True)
            return BackupInfo(items=1, scope=[f"Deployment/{self.name}"], detail={"mode": mode})
        if mode == "apply":
            from releasectl.targets.kubernetes.backup import restore_objects, valid_entries

            entries = valid_entries(doc.get("objects"))
            restored, deleted = restore_objects(self.client(), entries)
            return BackupInfo(
                items=restored + deleted, scope=[f"Deployment/{self.name}"], detail={"mode": mode}
            )
        return BackupInfo(items=0, detail={"mode": "record"})

    def run(self, step: Step, migration: Migration | None, deadline: Deadline) -> str:
        version = step.to
        if self.mode == "record":
            return f"recorded {self.ctx.component} {version}"
        if version is None:
            return self._undeploy()
        if self.mode == "render":
            self._check_file_is_ours()
            path, rel = self._file()
            data = self.rendered(version)
            with contextlib.suppress(FileNotFoundError):
                if path.read_bytes() == data:
                    return f"{rel} already at {version}"
            atomic_write(path, data)
            return f"rendered {rel} with image {self.image(version)}"
        return self._apply(version, deadline)

    def _apply(self, version: int | str, deadline: Deadline) -> str:
        from releasectl.clients.kubernetes import apply_object, read_object

        client = self.client()
        deadline.check(f"deploy {self.ctx.component}")
        live = read_object(client, "apps/v1", "Deployment", self.name, self.namespace)
        image = self.image(version)
        if live is None:
            apply_object(client, self.deployment(version), self.namespace)
            return f"created Deployment {self.namespace}/{self.name} with image {image}"
        if self._ours(live):
            # We applied the whole object before: apply it whole again, since server-side
            # apply removes the fields our manager owned and no longer sends.
            apply_object(client, self.deployment(version), self.namespace)
            return f"updated Deployment {self.namespace}/{self.name} to image {image}"
        container = self._container(live)
        patch = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "annotations": {VERSION_ANNOTATION: str(version)},
            },
            "spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}},
        }
        apply_object(client, patch, self.namespace)
        return f"set Deployment {self.namespace}/{self.name} container {container} to {image}"

    def _undeploy(self) -> str:
        if self.mode == "render":
            from releasectl.targets.kubernetes.render import is_generated

            path, rel = self._file()
            if path.exists() and is_generated(path):
                path.unlink()
                return f"removed {rel}"
            return f"{rel} not present"
        from releasectl.clients.kubernetes import created_by_us, delete_object, read_object

        client = self.client()
        live = read_object(client, "apps/v1", "Deployment", self.name, self.namespace)
        if live is None:
            return f"Deployment {self.namespace}/{self.name} not present"
        if not created_by_us(live):
            return (
                f"left Deployment {self.namespace}/{self.name} in place: releasectl did not "
                "create it"
            )
        delete_object(
            client,
            "apps/v1",
            "Deployment",
            self.name,
            self.namespace,
            resource_version=live["metadata"].get("resourceVersion"),
        )
        return f"deleted Deployment {self.namespace}/{self.name}"

    def verify(self, step: Step, migration: Migration | None, deadline: Deadline) -> None:
        version = step.to
        if self.mode == "record":
            return
        if self.mode == "render":
            path, rel = self._file()
            if version is None:
                if path.exists() and self._generated(path):
                    raise TargetError(f"verify failed: {rel} is still present")
                return
            try:
                ok = path.read_bytes() == self.rendered(version)
            except FileNotFoundError:
                ok = False
            if not ok:
                raise TargetError(f"verify failed: {rel} does not hold version {version}")
            return
        from releasectl.clients.kubernetes import read_object

        live = read_object(self.client(), "apps/v1", "Deployment", self.name, self.namespace)
        where = f"Deployment {self.namespace}/{self.name}"
        if version is None:
            if live is not None and self._ours(live):
                raise TargetError(f"verify failed: {where} is still present")
            return
        if live is None:
            raise TargetError(f"verify failed: {where} does not exist")
        container = self._container(live)
        containers = live["spec"]["template"]["spec"]["containers"]
        image = next(c.get("image") for c in containers if c.get("name") == container)
        if image != self.image(version):
            raise TargetError(
                f"verify failed: {where} container {container} runs {image}, not "
                f"{self.image(version)}"
            )

    @staticmethod
    def _generated(path: Path) -> bool:
        from releasectl.targets.kubernetes.render import is_generated

        return is_generated(path)

    @staticmethod
    def _ours(live: dict[str, Any]) -> bool:
        from releasectl.clients.kubernetes import created_by_us

        return created_by_us(live)

    def rollback(
        self, step: Step, migration: Migration | None, backup: IO[bytes] | None, failure: Failure
    ) -> str:
        if backup is not None:
            info = self.restore(backup)
            return f"restored the backup ({info.items} items)"
        if self.mode == "record":
            return "nothing to undo (version recorded only)"
        undo = step.model_copy(update={"from_": step.to, "to": step.from_})
        output = self.run(undo, migration, Deadline.after(self.timeout(migration)))
        if step.from_ is None:
            return f"removed what the first deploy created: {output}"
        return f"redeployed {step.from_}: {output}"
