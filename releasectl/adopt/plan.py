"""`import-legacy DIR`, first phase: everything the import will do, decided without writing.

`plan_import` reads the old tree and decides the migration directories
(`migrations/<component>/<NNNN>_<slug>/` with `up.sh`, `down.sh` from the matching rollback
script and `migration.yaml` with the script's description; or the native parts where a
component is imported as `redis` or `sql`), the additions to `releasectl.yaml`, the release
manifest of the state files' versions, the history rows, and a note for every file it leaves
out. Any problem is an error before anything is written. `releasectl.adopt.run` carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from releasectl.adopt import convert, shell
from releasectl.adopt.csvmap import Row, read_history
from releasectl.adopt.legacy import LegacyComponent, Note, Script, read_tree
from releasectl.adopt.wsfile import manifest_text, workspace_text
from releasectl.errors import InputError, Location, ReleasectlError, bundle, flatten
from releasectl.models.base import SEMVER_RE
from releasectl.workspace import WORKSPACE_FILE, Workspace, semver_key, yamlio

IMPORTABLE_TYPES = ("script", "redis", "sql")
DEFAULT_URLS = {"redis": "${REDIS_URL}", "sql": "${DATABASE_URL}"}


@dataclass
class PlannedMigration:
    component: str
    number: int
    id: str
    files: dict[str, bytes]
    source: str  # the old script, displayed
    down_source: str | None
    status: str = "new"  # new | unchanged


@dataclass
class PlannedComponent:
    name: str
    type: str
    version: int
    version_file: str | None
    migrations: list[PlannedMigration]
    target: dict[str, Any] | None  # settings to add to the environment (None: it has them)
    offer: str | None = None  # the native type its scripts plainly are


@dataclass
class ImportPlan:
    root: Path
    env: str
    source: str
    components: dict[str, PlannedComponent]
    workspace_text: str | None
    release: str
    release_text: str | None  # None: the manifest exists already
    rows: list[Row]
    history_source: str | None
    notes: list[Note] = field(default_factory=list)

    @property
    def release_rel(self) -> str:
        return f"releases/{self.release}.yaml"

    def files(self) -> list[tuple[str, str]]:
        """(path relative to the workspace, new | unchanged | edited) of every file it writes."""
        out: list[tuple[str, str]] = []
        if self.workspace_text is not None:
            edited = (self.root / WORKSPACE_FILE).is_file()
            out.append((WORKSPACE_FILE, "edited" if edited else "new"))
        if self.release_text is not None:
            out.append((self.release_rel, "new"))
        for component in self.components.values():
            for migration in component.migrations:
                for name in sorted(migration.files):
                    rel = f"migrations/{component.name}/{migration.id}/{name}"
                    out.append((rel, migration.status))
        return out


# --- planning ----------------------------------------------------------------------------


def plan_import(
    root: Path,
    directory: Path,
    display: str,
    env: str,
    *,
    types: dict[str, str] | None = None,
    release: str | None = None,
) -> ImportPlan:
    """Everything the import would do; raises (nothing written) on any error."""
    tree = read_tree(directory, display)
    errors: list[ReleasectlError] = list(tree.errors)
    rows: list[Row] = []
    if tree.history is not None and tree.history_display is not None:
        try:
            rows = read_history(tree.history, tree.history_display)
        except ReleasectlError as exc:
            errors.extend(flatten(exc))
    workspace = Workspace.load(root) if (root / WORKSPACE_FILE).is_file() else None
    types = dict(types or {})
    for name in sorted(set(types) - set(tree.components)):
        errors.append(InputError(f"--type {name}=...: the old tree has no component {name!r}"))
    notes = list(tree.notes)
    components: dict[str, PlannedComponent] = {}
    for name, legacy in sorted(tree.components.items()):
        try:
            components[name] = _plan_component(legacy, workspace, env, types.get(name), notes)
        except ReleasectlError as exc:
            errors.extend(flatten(exc))
    if errors:
        raise bundle(errors)
    chosen, text = _plan_release(workspace, components, release, display)
    targets = {c.name: c.target for c in components.values() if c.target is not None}
    new_workspace = workspace_text(
        root,
        source=display,
        env=env,
        components={c.name: c.type for c in components.values()},
        targets=targets,
    )
    return ImportPlan(
        root=root,
        env=env,
        source=tree.display,
        components=components,
        workspace_text=new_workspace,
        release=chosen,
        release_text=text,
        rows=rows,
        history_source=tree.history_display,
        notes=notes,
    )


def _plan_component(
    legacy: LegacyComponent,
    workspace: Workspace | None,
    env: str,
    asked: str | None,
    notes: list[Note],
) -> PlannedComponent:
    name = legacy.name
    existing = workspace.components.get(name) if workspace else None
    ctype = asked or (existing.type if existing else "script")
    if existing is not None and existing.type != ctype:
        raise InputError(
            f"component {name!r} is type {existing.type} in {WORKSPACE_FILE}, not {ctype}",
            location=workspace.doc.location(("components", name)) if workspace else None,
        )
    if ctype not in IMPORTABLE_TYPES:
        raise InputError(
            f"component {name!r} is type {ctype}: the old scripts import as script, redis or "
            "sql (import into a new component, then move to the native type by hand)"
        )
    errors: list[ReleasectlError] = []
    migrations: list[PlannedMigration] = []
    connection: str | None = None
    for number in sorted(legacy.scripts):
        script = legacy.scripts[number]
        rollback = legacy.rollbacks.get(number)
        files: dict[str, bytes] = {}
        for part, source in (("up", script), ("down", rollback)):
            if source is None:
                continue
            found = _part(ctype, part, source)
            if isinstance(found, ReleasectlError):
                errors.append(found)
                continue
            parts, url, more = found
            files.update(parts)
            connection = connection or url
            notes.extend(Note(source.display, text) for text in more if text)
        if rollback is None:
            notes.append(
                Note(
                    script.display,
                    f"no rollback_{number}_to_{number - 1}.sh: migration {number} has no down "
                    "part (it cannot be rolled back or gone below)",
                )
            )
        description = shell.description(script.text) or script.slug.replace("_", " ")
        meta = f"# Imported from {script.display} by releasectl import-legacy.\n"
        files["migration.yaml"] = (meta + yamlio.dump({"description": description})).encode()
        migrations.append(
            PlannedMigration(
                name,
                number,
                f"{number:04d}_{script.slug}",
                files,
                script.display,
                rollback.display if rollback else None,
            )
        )
    if errors:
        raise bundle(errors)
    if workspace is not None and existing is not None:
        _compare_existing(workspace, name, migrations)
    offer = _offer(legacy, notes) if ctype == "script" else None
    if ctype == "script":
        names = sorted({v for s in _sources(legacy) for v in shell.unset_variables(s.text)})
        if names:
            notes.append(
                Note(
                    f"migrations/{name}",
                    f"the scripts read {', '.join(names)}: releasectl passes its own environment "
                    f"through; set them there or under environments.{env}.targets.{name}.env",
                )
            )
    target: dict[str, Any] | None = None
    env_spec = workspace.spec.environments.get(env) if workspace else None
    if env_spec is None or name not in env_spec.targets:
        target = {} if ctype == "script" else {"url": connection or DEFAULT_URLS[ctype]}
        if ctype != "script" and connection is None:
            notes.append(
                Note(
                    f"{WORKSPACE_FILE}",
                    f"environments.{env}.targets.{name}.url: the scripts name no connection; "
                    f"set to {DEFAULT_URLS[ctype]}",
                )
            )
    return PlannedComponent(
        name, ctype, legacy.version, legacy.version_file, migrations, target, offer
    )


def _sources(legacy: LegacyComponent) -> list[Script]:
    return [*legacy.scripts.values(), *legacy.rollbacks.values()]


def _part(
    ctype: str, part: str, source: Script
) -> tuple[dict[str, bytes], str | None, list[str]] | ReleasectlError:
    if ctype == "script":
        return {f"{part}.sh": source.text.encode()}, None, []
    found = convert.convert(ctype, source.text, part)
    if isinstance(found, convert.NotPlain):
        return InputError(
            f"not plainly {ctype}: {found.reason}; import the component as type script "
            f"(without --type) or convert this script by hand",
            location=Location(source.display, found.line or None),
        )
    return {k: v.encode() for k, v in found.files.items()}, found.connection, found.notes


def _offer(legacy: LegacyComponent, notes: list[Note]) -> str | None:
    sources = _sources(legacy)
    kinds = {convert.guess(s.text) for s in sources}
    if len(kinds) != 1 or None in kinds:
        return None
    (kind,) = kinds
    assert kind is not None
    where = f"{legacy.scripts[min(legacy.scripts)].display.rsplit('/', 1)[0]}"
    if kind in convert.NATIVE:
        parts = [convert.convert(kind, s.text, "up") for s in sources]
        blocked = next((p for p in parts if isinstance(p, convert.NotPlain)), None)
        if blocked is not None:
            return None
        notes.append(
            Note(
                where,
                f"every script is plainly {kind}: `--type {legacy.name}={kind}` imports the "
                f"component as type {kind} (backups, verification, the target's own record)",
            )
        )
        return kind
    notes.append(
        Note(
            where,
            "the scripts kubectl-apply manifests: type kubernetes would hold each version's "
            "objects as a snapshot (copy them into the migration directories by hand)",
        )
    )
    return kind


def _compare_existing(workspace: Workspace, name: str, planned: list[PlannedMigration]) -> None:
    found = workspace.catalogue.of(name)
    have = {m.number: m for m in (found.migrations if found else [])}
    errors: list[ReleasectlError] = []
    for migration in planned:
        current = have.get(migration.number)
        if current is None:
            continue
        same = current.id == migration.id and set(current.files) == set(migration.files)
        if same:
            same = all(current.file(f).read_bytes() == b for f, b in migration.files.items())
        if not same:
            errors.append(
                InputError(
                    f"exists and differs from what the import of {migration.source} would "
                    "write: move it aside, or import into another component",
                    location=Location(current.rel),
                )
            )
        else:
            migration.status = "unchanged"
    if errors:
        raise bundle(errors)


def _plan_release(
    workspace: Workspace | None,
    components: dict[str, PlannedComponent],
    asked: str | None,
    source: str,
) -> tuple[str, str | None]:
    imported = {c.name: c.version for c in components.values()}
    versions = workspace.release_versions if workspace else []

    def matches(version: str) -> bool:
        assert workspace is not None
        pins = workspace.release(version).manifest.components
        return all((pins[n].version if n in pins else 0) == v for n, v in imported.items())

    if asked is not None:
        if not SEMVER_RE.match(asked):
            raise InputError(f"--release {asked!r} is not a semantic version (X.Y.Z)")
        if asked in versions:
            if not matches(asked):
                raise InputError(
                    f"releases/{asked}.yaml exists and pins other versions than the old state "
                    f"files ({_listed(imported)}): choose another --release"
                )
            return asked, None
    else:
        found = [v for v in versions if matches(v)]
        if found:
            return found[-1], None
        if versions:
            raise InputError(
                f"no release in releases/ pins the old state files' versions ({_listed(imported)})"
                ": give --release X.Y.Z for the manifest the import writes (it must not be the "
                "newest release if other environments are ahead of this one)"
            )
        asked = "1.0.0"
    pins: dict[str, tuple[int | str, dict[str, str]]] = {}
    if workspace is not None:
        older = [v for v in versions if semver_key(v) < semver_key(asked)]
        if older:  # the services and their requires as the release before it had them
            base = workspace.release(older[-1]).manifest
            pins = {n: (p.version, dict(p.requires)) for n, p in base.components.items()}
    for name, version in imported.items():
        if version or name in pins:  # a release named it before: this one must too
            pins[name] = (version, pins.get(name, (0, {}))[1])
    return asked, manifest_text(asked, pins, source=source)


def _listed(versions: dict[str, int]) -> str:
    return ", ".join(f"{n} {v}" for n, v in sorted(versions.items()))
