"""Where a Cedar policy set lives in an environment: a directory or a ConfigMap.

A store holds three keys (``policies.cedar``, ``schema.cedarschema``, ``manifest.json``) and
replaces them all at once or not at all.

The directory store uses the layout the kubelet gives a mounted ConfigMap, so a policy engine
reading it sees the same thing on a laptop as in a pod::

    path/..data -> ..v-<random>          the live version (a symlink, swapped atomically)
    path/..v-<random>/policies.cedar     the files of one version
    path/policies.cedar -> ..data/policies.cedar

A new set is written and fsynced into a fresh version directory, then one `rename` of a
symlink over ``..data`` switches every key at once. A crash before the rename leaves the old set
(and a stray version directory that the next write removes); after it, the new one. Readers
never see keys from two versions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from releasectl.cedarlib.snapshot import STORE_KEYS
from releasectl.errors import TargetError
from releasectl.util import failpoints
from releasectl.util.fsutil import fsync_dir

DATA = "..data"
VERSION_PREFIX = "..v-"


class Store(Protocol):
    def describe(self) -> str: ...

    def read(self) -> dict[str, bytes] | None:
        """The stored keys, or None when no set is stored."""

    def write(self, files: dict[str, bytes], check: Callable[[], None] | None = None) -> None:
        """Replace the stored set with `files`, all keys at once; `check()` runs just before
        the one change that makes them live (a step's deadline)."""

    def delete(self) -> None:
        """Remove the stored set (version 0: no policies)."""


class DirStore:
    def __init__(self, path: Path, display: str) -> None:
        self.path = path
        self.display = display

    def describe(self) -> str:
        return f"directory {self.display}"

    def read(self) -> dict[str, bytes] | None:
        out: dict[str, bytes] = {}
        for key in STORE_KEYS:
            try:
                out[key] = (self.path / key).read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise TargetError(f"{self.display}/{key}: cannot read: {exc.strerror}") from None
        return out or None

    def write(self, files: dict[str, bytes], check: Callable[[], None] | None = None) -> None:
        try:
            self._write(files, check)
        except OSError as exc:
            raise TargetError(f"{self.display}: cannot write the policy set: {exc}") from None

    def _write(self, files: dict[str, bytes], check: Callable[[], None] | None) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        version = self.path / f"{VERSION_PREFIX}{uuid.uuid4().hex[:16]}"
        version.mkdir()
        for key, data in sorted(files.items()):
            with (version / key).open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        fsync_dir(version)
        failpoints.hit("cedar-store-before-swap")
        if check is not None:
            try:
                check()
            except BaseException:
                shutil.rmtree(version, ignore_errors=True)
                raise
        self._swap_link(DATA, version.name)
        for key in files:
            # Created once; a regular file left by hand (or an older layout) becomes a link.
            link = self.path / key
            if not (link.is_symlink() and os.readlink(link) == f"{DATA}/{key}"):
                self._swap_link(key, f"{DATA}/{key}")
        for key in STORE_KEYS:
            if key not in files and (self.path / key).is_symlink():
                (self.path / key).unlink()
        fsync_dir(self.path)
        self._prune(keep=version.name)

    def _swap_link(self, name: str, target: str) -> None:
        tmp = self.path / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
        os.symlink(target, tmp)
        os.replace(tmp, self.path / name)

    def _prune(self, keep: str | None) -> None:
        for entry in self.path.iterdir():
            stray_link = entry.name.startswith(".") and ".tmp-" in entry.name
            old_version = entry.name.startswith(VERSION_PREFIX) and entry.name != keep
            if old_version and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            elif stray_link and entry.is_symlink():
                entry.unlink()

    def delete(self) -> None:
        if not self.path.exists():
            return
        try:
            # ..data first: from then on every key reads as absent.
            with contextlib.suppress(FileNotFoundError):
                (self.path / DATA).unlink()
            for key in STORE_KEYS:
                with contextlib.suppress(FileNotFoundError):
                    (self.path / key).unlink()
            self._prune(keep=None)
            fsync_dir(self.path)
            with contextlib.suppress(OSError):
                self.path.rmdir()  # only when nothing else lives there
        except OSError as exc:
            raise TargetError(f"{self.display}: cannot remove the policy set: {exc}") from None


class ConfigMapStore:
    """The three keys in one ConfigMap. One PUT replaces them all (atomic on the API server),
    guarded by the resourceVersion read just before, so a concurrent edit is not overwritten."""

    def __init__(self, client: Any, namespace: str, name: str, component: str) -> None:
        self.client = (
            client  # kubernetes.client.ApiClient (releasectl.clients.kubernetes.api_client)
        )
        self.namespace = namespace
        self.name = name
        self.component = component

    def describe(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name}"

    def _get(self) -> dict[str, Any] | None:
        from releasectl.clients import kubernetes as kube

        return kube.read_object(self.client, "v1", "ConfigMap", self.name, self.namespace)

    def read(self) -> dict[str, bytes] | None:
        obj = self._get()
        if obj is None:
            return None
        data = obj.get("data") or {}
        return {k: str(data[k]).encode() for k in STORE_KEYS if k in data} or None

    def write(self, files: dict[str, bytes], check: Callable[[], None] | None = None) -> None:
        from releasectl.clients import kubernetes as kube

        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {
                    kube.MANAGED_BY_LABEL: kube.MANAGED_BY,
                    kube.COMPONENT_LABEL: self.component,
                },
            },
            "data": {k: v.decode() for k, v in sorted(files.items())},
        }
        current = self._get()
        if check is not None:
            check()
        try:
            if current is None:
                kube.create_object(self.client, body, self.namespace)
            else:
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                kube.replace_object(self.client, body, self.namespace)
        except kube.KubeConflict:
            raise TargetError(
                f"{self.describe()} changed while releasectl was writing it; nothing was "
                "written (run again)"
            ) from None

    def delete(self) -> None:
        from releasectl.clients import kubernetes as kube

        kube.delete_object(self.client, "v1", "ConfigMap", self.name, self.namespace)
