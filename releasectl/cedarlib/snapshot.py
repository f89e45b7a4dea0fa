"""A Cedar migration is a snapshot: policy files, a schema and policy tests. This module loads
one, checks it (parse, validate, test) and renders the three keys a store holds:

- ``policies.cedar``: the policy files concatenated in sorted path order, each after a
  ``// --- <file> ---`` comment, so the set has one stable order and text;
- ``schema.cedarschema``: the schema in Cedar's human format;
- ``manifest.json``: version, migration id and checksums (of the set and of each file).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from releasectl.cedarlib import testing
from releasectl.cedarlib.policies import (
    PolicySet,
    Schema,
    SourceFile,
    load_policies,
    load_schema,
    raise_all,
    validate,
)
from releasectl.errors import (
    InputError,
    Location,
    ReleasectlError,
    TargetError,
    flatten,
)
from releasectl.workspace.catalogue import normalise

if TYPE_CHECKING:
    from releasectl.workspace.catalogue import Migration

POLICIES_KEY = "policies.cedar"
SCHEMA_KEY = "schema.cedarschema"
MANIFEST_KEY = "manifest.json"
STORE_KEYS = (POLICIES_KEY, SCHEMA_KEY, MANIFEST_KEY)
SCHEMA_FILES = ("schema.cedarschema", "schema.cedarschema.json")
MANIFEST_FORMAT = 1


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_source(path: Path, display: str) -> SourceFile:
    from releasectl.workspace.yamlio import read_text

    text = read_text(path, display).replace("\r\n", "\n")
    return SourceFile(display, text)


@dataclass
class Compiled:
    policies: PolicySet
    schema: Schema | None
    suites: list[testing.Suite] = field(default_factory=list)

    def run_tests(self) -> list[testing.Outcome]:
        return testing.run_tests(self.policies, self.schema, self.suites)


@dataclass
class Snapshot:
    """The files of one Cedar migration (or of any directory laid out the same way)."""

    component: str
    version: int
    migration_id: str
    checksum: str  # the migration's checksum
    root: Path
    display: str  # the directory relative to the workspace
    policy_files: list[str]  # relative to root, sorted
    schema_file: str | None
    test_files: list[str]

    @classmethod
    def from_migration(cls, migration: Migration) -> Snapshot:
        return cls.from_dir(
            migration.path,
            migration.rel,
            component=migration.component,
            version=migration.number,
            migration_id=migration.id,
            checksum=migration.checksum,
            files=migration.files,
        )

    @classmethod
    def from_dir(
        cls,
        root: Path,
        display: str,
        *,
        component: str = "",
        version: int = 0,
        migration_id: str = "",
        checksum: str = "",
        files: tuple[str, ...] | None = None,
    ) -> Snapshot:
        if files is None:
            from releasectl.workspace.catalogue import checksum_dir

            files = tuple(
                sorted(str(p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file())
            )
            checksum = checksum or checksum_dir(root)
        policy_files = sorted(f for f in files if f.endswith(".cedar") and not _hidden(f))
        schema = next((s for s in SCHEMA_FILES if s in files), None)
        tests = sorted(
            f
            for f in files
            if f.startswith("tests/") and f.count("/") == 1 and f.endswith((".yaml", ".yml"))
        )
        return cls(
            component, version, migration_id, checksum, root, display, policy_files, schema, tests
        )

    def where(self, rel: str) -> str:
        return f"{self.display}/{rel}"

    def sources(self) -> list[SourceFile]:
        return [read_source(self.root / rel, self.where(rel)) for rel in self.policy_files]

    def compile(self, *, with_tests: bool = True) -> Compiled:
        """Parse the policies and the schema, validate, load the tests; raise every problem."""
        errors: list[ReleasectlError] = []
        policies: PolicySet | None = None
        schema: Schema | None = None
        if not self.policy_files:
            errors.append(InputError("no *.cedar policy file", location=Location(self.display)))
        else:
            try:
                sources = self.sources()
                policies = load_policies(sources, joined=render_policies(self, sources))
            except ReleasectlError as exc:
                errors.extend(flatten(exc))
        if self.schema_file is None:
            errors.append(
                InputError(
                    "no schema (schema.cedarschema or schema.cedarschema.json)",
                    location=Location(self.display),
                )
            )
        else:
            try:
                schema = load_schema(
                    read_source(self.root / self.schema_file, self.where(self.schema_file))
                )
            except ReleasectlError as exc:
                errors.extend(flatten(exc))
        if policies is not None and schema is not None:
            errors.extend(validate(policies, schema))
        suites: list[testing.Suite] = []
        if with_tests:
            for rel in self.test_files:
                try:
                    suites.append(testing.load_tests(self.root / rel, self.where(rel)))
                except ReleasectlError as exc:
                    errors.extend(flatten(exc))
        if errors:
            raise_all(errors)
        assert policies is not None
        return Compiled(policies, schema, suites)

    def problems(self) -> list[ReleasectlError]:
        """Everything wrong with the snapshot: syntax, schema, validation, failing tests."""
        try:
            compiled = self.compile()
        except ReleasectlError as exc:
            return flatten(exc)
        return [outcome.error() for outcome in compiled.run_tests() if not outcome.passed]

    def render(self, compiled: Compiled) -> dict[str, bytes]:
        """The three keys of the stored set."""
        policies = compiled.policies.text.encode()
        schema = (compiled.schema.cedar_text() if compiled.schema else "").encode()
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "component": self.component,
            "version": self.version,
            "migration": self.migration_id,
            "migration_checksum": self.checksum,
            "checksum": set_checksum(policies, schema),
            "files": {POLICIES_KEY: sha256(policies), SCHEMA_KEY: sha256(schema)},
            "sources": {
                rel: sha256(normalise((self.root / rel).read_bytes()))
                for rel in [*self.policy_files, *([self.schema_file] if self.schema_file else [])]
            },
            "policies": [p.name for p in compiled.policies.policies],
            "written_by": "releasectl",
        }
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        return {POLICIES_KEY: policies, SCHEMA_KEY: schema, MANIFEST_KEY: text.encode()}


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/")) or rel.startswith("tests/")


def set_checksum(policies: bytes, schema: bytes) -> str:
    """SHA-256 of the stored set: the policies, a NUL, the schema."""
    return sha256(policies + b"\0" + schema)


def render_policies(snapshot: Snapshot, sources: list[SourceFile]) -> str:
    what = f"{snapshot.component} version {snapshot.version}" if snapshot.component else "policies"
    head = [
        f"// Cedar policy set: {what}"
        + (f" ({snapshot.migration_id})" if snapshot.migration_id else ""),
        "// Written by releasectl from the files below, in this order; do not edit here.",
    ]
    parts = ["\n".join(head) + "\n"]
    for rel, src in zip(snapshot.policy_files, sources, strict=True):
        body = src.text if src.text.endswith("\n") or not src.text else src.text + "\n"
        parts.append(f"\n// --- {rel} ---\n{body}")
    return "".join(parts)


# --- reading a stored set back -----------------------------------------------------------


@dataclass
class Stored:
    """A set as a store holds it, checked against its own manifest."""

    files: dict[str, bytes]
    manifest: dict[str, Any]
    where: str

    @property
    def version(self) -> int | None:
        value = self.manifest.get("version")
        return value if isinstance(value, int) else None

    @property
    def checksum(self) -> str | None:
        value = self.manifest.get("checksum")
        return value if isinstance(value, str) else None


def read_stored(files: dict[str, bytes], where: str) -> Stored:
    """Check the keys and their checksums against the manifest; TargetError if anything is off
    (the store was changed outside releasectl)."""
    missing = [k for k in STORE_KEYS if k not in files]
    if missing:
        raise TargetError(f"{where}: the stored set lacks {', '.join(missing)}")
    try:
        manifest = json.loads(files[MANIFEST_KEY].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TargetError(f"{where}/{MANIFEST_KEY}: not a JSON manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise TargetError(f"{where}/{MANIFEST_KEY}: unknown manifest format")
    wanted = manifest.get("files") or {}
    for key in (POLICIES_KEY, SCHEMA_KEY):
        if wanted.get(key) != sha256(files[key]):
            raise TargetError(
                f"{where}/{key}: checksum mismatch: the manifest says {wanted.get(key)}, the "
                f"stored file has {sha256(files[key])} (edited outside releasectl?)"
            )
    if manifest.get("checksum") != set_checksum(files[POLICIES_KEY], files[SCHEMA_KEY]):
        raise TargetError(f"{where}/{MANIFEST_KEY}: the set checksum does not match")
    return Stored(files, manifest, where)


def compile_stored(stored: Stored) -> Compiled:
    """Parse and validate the stored policies and schema (no tests)."""
    policies_src = SourceFile(f"{stored.where}/{POLICIES_KEY}", stored.files[POLICIES_KEY].decode())
    schema_src = SourceFile(f"{stored.where}/{SCHEMA_KEY}", stored.files[SCHEMA_KEY].decode())
    policies = load_policies([policies_src])
    schema = load_schema(schema_src)
    errors = validate(policies, schema)
    if errors:
        raise_all(errors)
    return Compiled(policies, schema)


def migration_problems(migration: Migration) -> list[ReleasectlError]:
    """Static checks of a cedar migration (validate, plan): every policy parses and validates
    against the schema, and the snapshot's policy tests pass."""
    return Snapshot.from_migration(migration).problems()
