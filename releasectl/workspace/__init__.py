"""A workspace: `releasectl.yaml`, the release manifests and the migration catalogue.

Loading checks each file against its model; `Workspace.problems()` adds the checks that span
files (unknown components, version kinds, constraints, targets) and the catalogue's findings.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from releasectl.errors import InputError, Location, ReleasectlError, bundle, flatten
from releasectl.models import constraints
from releasectl.models.base import SEMVER_RE
from releasectl.models.release import Release
from releasectl.models.workspace import (
    MIGRATED_TYPES,
    TARGET_MODELS,
    Component,
    Environment,
    WorkspaceFile,
)
from releasectl.util import safefiles
from releasectl.util.gcpause import paused_gc
from releasectl.workspace import yamlio
from releasectl.workspace.catalogue import Catalogue, normalise, scan_catalogue
from releasectl.workspace.graph import topological_order
from releasectl.workspace.loading import load_model, located_errors
from releasectl.workspace.scancache import ScanCache

WORKSPACE_FILE = "releasectl.yaml"
STATE_DIR = ".releasectl"
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
T = TypeVar("T", bound=BaseModel)


def find_root(start: Path) -> Path:
    """`start` or its nearest parent holding releasectl.yaml."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / WORKSPACE_FILE).is_file():
            return candidate
    raise InputError(
        f"no {WORKSPACE_FILE} in {start} or any parent directory "
        "(run `releasectl init` or pass --workspace DIR)"
    )


def semver_key(version: str) -> tuple[Any, ...]:
    import semver

    return (semver.Version.parse(version),)


@dataclass(frozen=True, slots=True)
class LoadedRelease:
    manifest: Release
    doc: yamlio.Document
    path: Path
    rel: str
    checksum: str

    @property
    def version(self) -> str:
        return self.manifest.version


def interpolate(value: str, where: Location, environ: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}`` from the process environment."""

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise InputError(f"environment variable {name} is not set", location=where)

    return _VAR_RE.sub(sub, value)


class Workspace:
    def __init__(self, root: Path, spec: WorkspaceFile, doc: yamlio.Document) -> None:
        self.root = root
        self.spec = spec
        self.doc = doc
        safefiles.confine(root)  # every file read from here on must resolve inside root

    @classmethod
    def load(cls, root: Path) -> Workspace:
        safefiles.confine(root)
        spec, doc = load_model(WorkspaceFile, root / WORKSPACE_FILE, WORKSPACE_FILE)
        return cls(root, spec, doc)

    # --- components ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def components(self) -> dict[str, Component]:
        return self.spec.components

    def component(self, name: str) -> Component:
        try:
            return self.spec.components[name]
        except KeyError:
            raise InputError(
                f"unknown component {name!r} (known: {', '.join(sorted(self.components))})"
            ) from None

    @cached_property
    def order(self) -> list[str]:
        """Components in dependency order; raises on cycles and unknown `needs`."""
        try:
            return topological_order({n: c.needs for n, c in self.components.items()})
        except ReleasectlError as exc:
            exc.location = self.doc.location(("components",))
            raise

    def migrations_dir(self, name: str) -> str:
        return self.components[name].migrations or f"migrations/{name}"

    @cached_property
    def catalogue(self) -> Catalogue:
        specs = [
            (name, component.type, self.migrations_dir(name))
            for name, component in sorted(self.components.items())
            if component.type in MIGRATED_TYPES
        ]
        with paused_gc():
            return scan_catalogue(self.root, specs, ScanCache(self.root))

    # --- releases -----------------------------------------------------------------------

    @property
    def releases_dir(self) -> Path:
        return self.root / self.spec.releases

    @cached_property
    def release_versions(self) -> list[str]:
        """Versions of the manifests in releases/, ascending (by file name)."""
        try:
            names = os.listdir(self.releases_dir)
        except FileNotFoundError:
            return []
        versions = [n[: -len(".yaml")] for n in names if n.endswith(".yaml")]
        valid = [v for v in versions if SEMVER_RE.match(v)]
        return sorted(valid, key=semver_key)

    def release(self, version: str) -> LoadedRelease:
        cache: dict[str, LoadedRelease] = self.__dict__.setdefault("_releases", {})
        if version in cache:
            return cache[version]
        rel = f"{self.spec.releases}/{version}.yaml"
        path = self.root / rel
        if not path.is_file():
            known = ", ".join(self.release_versions) or "none"
            raise InputError(f"release {version} not found: no {rel} (releases: {known})")
        manifest, doc = load_model(Release, path, rel)
        if manifest.version != version:
            raise InputError(
                f"version {manifest.version!r} does not match the file name {version}.yaml",
                location=doc.location(("version",)),
            )
        raw = safefiles.read_bytes(path, rel, limit=yamlio.max_yaml_bytes())
        checksum = hashlib.sha256(normalise(raw)).hexdigest()
        loaded = LoadedRelease(manifest, doc, path, rel, checksum)
        cache[version] = loaded
        return loaded

    def latest_release(self) -> LoadedRelease | None:
        versions = self.release_versions
        return self.release(versions[-1]) if versions else None

    def previous_release(self, version: str) -> LoadedRelease | None:
        older = [v for v in self.release_versions if semver_key(v) < semver_key(version)]
        return self.release(older[-1]) if older else None

    def desired_release(self, env: str, version: str | None = None) -> LoadedRelease:
        if version is None:
            version = self.environment(env).release
        if version is None:
            latest = self.latest_release()
            if latest is None:
                raise InputError(f"no release manifests in {self.spec.releases}/")
            return latest
        return self.release(version)

    # --- environments -------------------------------------------------------------------

    def environment(self, name: str) -> Environment:
        try:
            return self.spec.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.spec.environments)) or "none"
            raise InputError(
                f"unknown environment {name!r} (environments: {known})",
                location=Location(
                    WORKSPACE_FILE, self.doc.line_of(("environments",)), "environments"
                ),
            ) from None

    def target(
        self, env: str, component: str, environ: Mapping[str, str] | None = None
    ) -> BaseModel | None:
        """Typed target settings of `component` in `env`, ``${VAR}`` resolved from `environ`."""
        raw = self.environment(env).targets.get(component)
        ctype = self.component(component).type
        if raw is None:
            return None
        path: yamlio.FieldPath = ("environments", env, "targets", component)
        data = _interpolate_tree(raw, path, self.doc, os.environ if environ is None else environ)
        try:
            return TARGET_MODELS[ctype].model_validate(data)
        except ValidationError as exc:
            raise located_errors(exc, self.doc, path) from None

    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    def resolve(
        self,
        env: str,
        field: yamlio.FieldPath,
        value: str,
        environ: Mapping[str, str] | None = None,
    ) -> str:
        """Interpolate one setting, naming its place in releasectl.yaml on error."""
        try:
            return interpolate(
                value, Location(WORKSPACE_FILE), os.environ if environ is None else environ
            )
        except InputError as exc:
            exc.location = self.doc.location(("environments", env, *field))
            raise

    # --- cross-file checks --------------------------------------------------------------

    def problems(self, *, releases: list[str] | None = None) -> list[ReleasectlError]:
        """Everything `validate` checks without touching an environment."""
        errors: list[ReleasectlError] = []
        try:
            _ = self.order
        except ReleasectlError as exc:
            errors.append(exc)
        errors.extend(self._environment_problems())
        errors.extend(self.catalogue.errors)
        for version in self.release_versions if releases is None else releases:
            try:
                loaded = self.release(version)
            except ReleasectlError as exc:
                errors.extend(flatten(exc))
                continue
            errors.extend(self.release_problems(loaded))
        return errors

    def _environment_problems(self) -> list[ReleasectlError]:
        errors: list[ReleasectlError] = []
        for env_name, env in self.spec.environments.items():
            base: yamlio.FieldPath = ("environments", env_name)
            if env.promote_from is not None and env.promote_from not in self.spec.environments:
                errors.append(
                    InputError(
                        f"unknown environment {env.promote_from!r}",
                        location=self.doc.location((*base, "promote_from")),
                    )
                )
            if env.protected and env.backups.encrypt is False:
                errors.append(self.unencrypted_protected(env_name))
            if env.promote_from == env_name:
                errors.append(
                    InputError(
                        "an environment cannot promote from itself",
                        location=self.doc.location((*base, "promote_from")),
                    )
                )
            for comp, raw in env.targets.items():
                where = (*base, "targets", comp)
                if comp not in self.components:
                    errors.append(
                        InputError(
                            f"target for unknown component {comp!r}",
                            location=self.doc.location(where),
                        )
                    )
                    continue
                model = TARGET_MODELS[self.components[comp].type]
                try:
                    model.model_validate(raw)
                except ValidationError as exc:
                    found = located_errors(exc, self.doc, where)
                    errors.extend(flatten(found))
            for comp, component in self.components.items():
                if component.type in MIGRATED_TYPES and comp not in env.targets:
                    errors.append(
                        InputError(
                            f"no target for {component.type} component {comp!r}",
                            location=self.doc.location((*base, "targets")),
                        )
                    )
        return errors

    def unencrypted_protected(self, env: str) -> InputError:
        return InputError(
            "a protected environment always encrypts its backups, and restores only "
            "authenticated encrypted ones: remove `encrypt: false`",
            location=self.doc.location(("environments", env, "backups", "encrypt")),
        )

    def release_problems(self, loaded: LoadedRelease) -> list[ReleasectlError]:
        """Checks of one manifest against the workspace: names, version kinds, constraints."""
        errors: list[ReleasectlError] = []
        doc = loaded.doc
        manifest = loaded.manifest
        for name, pin in manifest.components.items():
            where: yamlio.FieldPath = ("components", name)
            component = self.components.get(name)
            if component is None:
                errors.append(
                    InputError(
                        f"unknown component {name!r} (known: {', '.join(sorted(self.components))})",
                        location=doc.location(where),
                    )
                )
                continue
            kind: constraints.Kind = "semver" if component.type == "service" else "int"
            try:
                constraints.parse_version(pin.version, kind)
            except constraints.ConstraintSyntaxError as exc:
                errors.append(InputError(str(exc), location=doc.location((*where, "version"))))
            if kind == "int" and isinstance(pin.version, int):
                found = self.catalogue.of(name)
                latest = found.latest if found else 0
                if pin.version > latest:
                    errors.append(
                        InputError(
                            f"version {pin.version} has no migration: {self.migrations_dir(name)}/ "
                            f"goes up to {latest}",
                            location=doc.location((*where, "version")),
                        )
                    )
            for other, text in pin.requires.items():
                req_where = (*where, "requires", other)
                if other not in self.components:
                    errors.append(
                        InputError(
                            f"requires unknown component {other!r}",
                            location=doc.location(req_where),
                        )
                    )
                    continue
                other_kind: constraints.Kind = (
                    "semver" if self.components[other].type == "service" else "int"
                )
                try:
                    constraints.parse(text, other_kind)
                except constraints.ConstraintSyntaxError as exc:
                    errors.append(InputError(str(exc), location=doc.location(req_where)))
        for name in sorted(set(self.components) - set(manifest.components)):
            named_by = self._earlier_release_naming(name, loaded.version)
            if named_by is None:
                continue  # not deployed in this release: the component came later
            errors.append(
                InputError(
                    f"no version for component {name!r} (release {named_by} deploys it; a "
                    "release omits only components added after it)",
                    location=doc.location(("components",)),
                )
            )
        if manifest.upgrades_from is not None:
            try:
                constraints.parse(manifest.upgrades_from, "semver")
            except constraints.ConstraintSyntaxError as exc:
                errors.append(InputError(str(exc), location=doc.location(("upgrades_from",))))
        return errors

    def _earlier_release_naming(self, component: str, version: str) -> str | None:
        """The newest release older than `version` that names `component` (None: none does).

        A manifest that omits a component means "not deployed in this release", which is right
        for the releases made before the component existed; once a release has named it, a
        later release that forgets it is a mistake, not a removal."""
        key = semver_key(version)
        for older in reversed(self.release_versions):
            if semver_key(older) >= key:
                continue
            try:
                manifest = self.release(older).manifest
            except ReleasectlError:
                continue  # reported on its own
            if component in manifest.components:
                return older
        return None

    def check_release(self, loaded: LoadedRelease) -> None:
        errors = self.release_problems(loaded)
        if errors:
            raise bundle(errors)


def _interpolate_tree(
    node: Any, path: yamlio.FieldPath, doc: yamlio.Document, environ: Mapping[str, str]
) -> Any:
    if isinstance(node, str):
        if "${" not in node:
            return node
        try:
            return interpolate(node, Location(doc.display), environ)
        except InputError as exc:
            exc.location = doc.location(path)  # lines are looked up only for an error
            raise
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, (*path, k), doc, environ) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate_tree(v, (*path, i), doc, environ) for i, v in enumerate(node)]
    return node
