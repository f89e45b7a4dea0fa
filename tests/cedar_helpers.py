"""Shared by the Cedar target tests: two policy snapshots, a target on a tmp workspace, and the
engine's call sequence for one step."""

from __future__ import annotations

import io
from pathlib import Path

from releasectl.models.plan import Step
from releasectl.models.workspace import CedarTarget as CedarSettings
from releasectl.targets.base import TargetContext
from releasectl.targets.cedar import CedarTarget
from releasectl.util.deadline import Deadline
from releasectl.workspace.catalogue import scan_component

SCHEMA_V1 = """\
entity Role;
entity User in [Role];
entity Environment;
action "view", "apply" appliesTo { principal: [User], resource: [Environment] };
"""
SCHEMA_V2 = SCHEMA_V1.replace('"view", "apply"', '"view", "apply", "unlock"')
ROLES = '@id("admins")\npermit (principal in Role::"admin", action, resource);\n'
VIEW = '@id("everyone-views")\npermit (principal, action == Action::"view", resource);\n'
UNLOCK = '@id("no-unlock")\nforbid (principal, action == Action::"unlock", resource);\n'
ENTITIES = """\
entities:
  - {uid: {type: Role, id: admin}}
  - {uid: {type: User, id: alice}, parents: [{type: Role, id: admin}]}
  - {uid: {type: User, id: bob}}
  - {uid: {type: Environment, id: prod}}
"""


def tests_yaml(*cases: tuple[str, str, str, str]) -> str:
    out = ENTITIES + "tests:\n"
    for name, principal, action, expect in cases:
        out += (
            f"  - name: {name}\n    principal: 'User::\"{principal}\"'\n"
            f"    action: 'Action::\"{action}\"'\n    resource: 'Environment::\"prod\"'\n"
            f"    expect: {expect}\n"
        )
    return out


V1 = {
    "roles.cedar": ROLES,
    "view.cedar": VIEW,
    "schema.cedarschema": SCHEMA_V1,
    "tests/basic.yaml": tests_yaml(
        ("admin applies", "alice", "apply", "allow"), ("bob views", "bob", "view", "allow")
    ),
}
V2 = {
    "roles.cedar": ROLES,
    "view.cedar": VIEW,
    "unlock.cedar": UNLOCK,
    "schema.cedarschema": SCHEMA_V2,
    "tests/basic.yaml": tests_yaml(
        ("admin applies", "alice", "apply", "allow"),
        ("nobody unlocks", "alice", "unlock", "deny"),
    ),
}


def write_migration(root: Path, name: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / "migrations" / "policies" / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def target(root: Path, path: str = "deploy/policies", **settings: str) -> CedarTarget:
    """A cedar target on `root`'s migrations; a dir store at `path`, or other `settings`."""
    found, errors = scan_component(root, "policies", "cedar", "migrations/policies")
    assert errors == []
    ctx = TargetContext(
        root=root,
        env="local",
        component="policies",
        type="cedar",
        settings=CedarSettings.model_validate(settings or {"store": "dir", "path": path}),
        migrations=found,
    )
    return CedarTarget(ctx)


def step(frm: int, to: int) -> Step:
    number = max(frm, to)
    return Step.model_validate(
        {
            "component": "policies",
            "type": "cedar",
            "action": "up" if to > frm else "down",
            "from": frm,
            "to": to,
            "migration": {1: "0001_base", 2: "0002_unlock"}[number],
        }
    )


def run_step(t: CedarTarget, s: Step) -> bytes:
    """check, backup, run, verify, as the engine does; returns the backup."""
    t.check(s, None)
    buf = io.BytesIO()
    t.backup(s, None, buf)
    t.run(s, None, Deadline(None))
    t.verify(s, None, Deadline(None))
    return buf.getvalue()


def stored(root: Path, store: str = "deploy/policies") -> dict[str, bytes]:
    base = root / store
    if not base.exists():
        return {}
    return {p.name: p.read_bytes() for p in sorted(base.iterdir()) if not p.name.startswith(".")}
