"""Component and platform versions: list them, set them, bump them, create releases.

Every edit goes through `manifests.ManifestText`, so the diff of `version set` or `version
bump` is the one scalar that changed, and `release create` copies the newest manifest with its
comments. Nothing here prints; the CLI renders what these functions return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import semver

from releasectl.errors import InputError, ReleasectlError
from releasectl.models import constraints
from releasectl.models.base import SEMVER_RE
from releasectl.models.release import Release
from releasectl.models.state import State
from releasectl.models.workspace import MIGRATED_TYPES
from releasectl.release.manifests import CreatedRelease, ManifestText, create_release
from releasectl.workspace import LoadedRelease, Workspace, yamlio
from releasectl.workspace.loading import validate

Part = Literal["major", "minor", "patch", "prerelease"]
PARTS: tuple[Part, ...] = ("major", "minor", "patch", "prerelease")
PLATFORM = "platform"


@dataclass(frozen=True, slots=True)
class VersionRow:
    name: str
    type: str | None  # None: pinned by the manifest but unknown to the workspace
    version: int | str | None  # in the manifest (None: not pinned)
    recorded: int | str | None = None
    differs: bool = False


@dataclass(frozen=True, slots=True)
class VersionList:
    release: str | None
    manifest: str | None
    env: str | None
    recorded_release: str | None
    rows: list[VersionRow]

    def as_json(self) -> dict[str, Any]:
        components: dict[str, Any] = {}
        for row in self.rows:
            item: dict[str, Any] = {"type": row.type, "version": row.version}
            if self.env is not None:
                item["recorded"] = row.recorded
                item["differs"] = row.differs
            components[row.name] = item
        out: dict[str, Any] = {"release": self.release, "manifest": self.manifest}
        if self.env is not None:
            out["env"] = self.env
            out["recorded_release"] = self.recorded_release
        out["components"] = components
        return out


@dataclass(frozen=True, slots=True)
class VersionChange:
    component: str
    release: str
    manifest: str  # path relative to the workspace
    old: int | str | None
    new: int | str
    changed: bool
    warnings: list[str] = field(default_factory=list)


# --- list ----------------------------------------------------------------------------------


def list_versions(
    workspace: Workspace, *, env: str | None = None, state: State | None = None
) -> VersionList:
    """Every component's version in the newest manifest and, for `env`, the recorded one."""
    latest = workspace.latest_release()
    pins = latest.manifest.components if latest else {}
    names = [*workspace.order, *sorted(set(pins) - set(workspace.components))]
    rows: list[VersionRow] = []
    for name in names:
        spec = workspace.components.get(name)
        pin = pins.get(name)
        version = pin.version if pin else None
        recorded: int | str | None = None
        differs = False
        if env is not None:
            entry = state.components.get(name) if state else None
            recorded = entry.version if entry else None
            if recorded is None and spec is not None and spec.type in MIGRATED_TYPES:
                recorded = 0
            differs = str(recorded) != str(version)
        rows.append(VersionRow(name, spec.type if spec else None, version, recorded, differs))
    return VersionList(
        release=latest.version if latest else None,
        manifest=latest.rel if latest else None,
        env=env,
        recorded_release=state.release if state else None,
        rows=rows,
    )


# --- set -----------------------------------------------------------------------------------


def parse_component_version(workspace: Workspace, component: str, text: str) -> int | str:
    """Check `text` against the component's family: a semantic version for a service, a
    migration number that has a migration for a migrated component."""
    spec = workspace.component(component)
    if spec.type not in MIGRATED_TYPES:
        if not SEMVER_RE.match(text):
            raise InputError(
                f"{text!r} is not a semantic version (X.Y.Z): {component} is a service"
            )
        return text
    if not text.isdigit():
        raise InputError(
            f"{text!r} is not a migration number: {component} is a {spec.type} component "
            "whose version is the number of its latest applied migration"
        )
    number = int(text)
    found = workspace.catalogue.of(component)
    latest = found.latest if found else 0
    if number > latest:
        raise InputError(
            f"{component} has no migration {number:04d}: {workspace.migrations_dir(component)}/ "
            f"goes up to {latest:04d}" + ("" if latest else " (no migrations yet)")
        )
    return number


def _target_release(workspace: Workspace, release: str | None) -> LoadedRelease:
    if release is not None:
        return workspace.release(release)
    latest = workspace.latest_release()
    if latest is None:
        raise InputError(
            f"no release manifests in {workspace.spec.releases}/ "
            "(write the first one by hand or run `releasectl init`)"
        )
    return latest


def set_version(
    workspace: Workspace, component: str, version: str, *, release: str | None = None
) -> VersionChange:
    """Set `component`'s version in the newest manifest (or in `release`), in place."""
    value = parse_component_version(workspace, component, version)
    loaded = _target_release(workspace, release)
    text = ManifestText.read(loaded.path, loaded.rel)
    pin = loaded.manifest.components.get(component)
    if pin is None:
        text.insert(("components",), component, {"version": value})
        changed = True
    else:
        changed = text.set_scalar(("components", component, "version"), value)
    manifest = _check_edited(workspace, text, loaded.rel)
    if changed:
        text.write(loaded.path)
        workspace.__dict__.pop("_releases", None)  # the cached manifest is stale now
    return VersionChange(
        component=component,
        release=loaded.version,
        manifest=loaded.rel,
        old=pin.version if pin else None,
        new=value,
        changed=changed,
        warnings=[text for _, text in unsatisfied_requires(workspace, manifest)],
    )


def _check_edited(workspace: Workspace, text: ManifestText, rel: str) -> Release:
    doc = yamlio.loads(text.text, rel)
    return validate(Release, doc)


def unsatisfied_requires(workspace: Workspace, manifest: Release) -> list[tuple[str, str]]:
    """The `requires` constraints that the manifest's own versions break, as (the component
    that requires, what is wrong)."""
    found: list[tuple[str, str]] = []
    for name, pin in manifest.components.items():
        for other, rule in sorted(pin.requires.items()):
            spec = workspace.components.get(other)
            if spec is None:
                continue
            have = manifest.components.get(other)
            kind: constraints.Kind = "semver" if spec.type == "service" else "int"
            try:
                ok = have is not None and constraints.parse(rule, kind).admits(have.version)
            except constraints.ConstraintSyntaxError:
                continue  # reported by the workspace checks
            if not ok:
                shown = f"at {have.version}" if have else "not pinned"
                found.append(
                    (name, f"{name} {pin.version} requires {other} {rule} but {other} is {shown}")
                )
    return found


# --- bump ----------------------------------------------------------------------------------


def next_version(
    current: str, part: Part, *, pre: str | None = None, build: str | None = None
) -> str:
    """The next semantic version: `major`/`minor`/`patch` (finishing a pre-release of that
    part), or `prerelease`; `pre` makes the result a pre-release, `build` adds metadata."""
    if part not in PARTS:
        raise InputError(f"{part!r} is not one of {', '.join(PARTS)}")
    try:
        base = semver.Version.parse(current)
    except ValueError:
        raise InputError(f"{current!r} is not a semantic version") from None
    try:
        if part == "prerelease":
            result = base.next_version("prerelease", prerelease_token=pre or "rc")
        else:
            result = base.next_version(part)
            if pre:
                result = result.bump_prerelease(pre)
                if result <= base:  # 2.0.0-rc.1 --pre rc: the next rc of the same release
                    result = base.next_version("prerelease", prerelease_token=pre)
        if build:
            result = result.replace(build=build)
    except (ValueError, TypeError) as exc:
        raise InputError(f"cannot bump {current}: {exc}") from None
    text = str(result)
    if not SEMVER_RE.match(text):
        raise InputError(f"{text!r} is not a semantic version (check --pre and --build)")
    return text


def bump_component(
    workspace: Workspace,
    component: str,
    part: Part,
    *,
    pre: str | None = None,
    build: str | None = None,
) -> VersionChange:
    spec = workspace.component(component)
    if spec.type in MIGRATED_TYPES:
        raise InputError(
            f"{component} is a {spec.type} component: its version is a migration number, not a "
            f"semantic version; use `releasectl version set {component} N`"
        )
    latest = _target_release(workspace, None)
    pin = latest.manifest.components.get(component)
    if pin is None:
        raise InputError(
            f"{component} has no version in {latest.rel}; set one with "
            f"`releasectl version set {component} X.Y.Z`",
            location=latest.doc.location(("components",)),
        )
    new = next_version(str(pin.version), part, pre=pre, build=build)
    return set_version(workspace, component, new)


def bump_platform(
    workspace: Workspace,
    part: Part,
    *,
    pre: str | None = None,
    build: str | None = None,
    message: str | None = None,
    today: str | None = None,
) -> CreatedRelease:
    latest = _target_release(workspace, None)
    new = next_version(latest.version, part, pre=pre, build=build)
    return create_release(workspace, new, message=message, today=today)


def flatten(errors: list[ReleasectlError]) -> list[ReleasectlError]:
    from releasectl.errors import MultipleErrors

    out: list[ReleasectlError] = []
    for error in errors:
        out.extend(flatten(error.errors) if isinstance(error, MultipleErrors) else [error])
    return out
