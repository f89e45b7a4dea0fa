"""The change analysis as pure functions: SQL rules with exact lines on both dialects, Cedar
access gained and lost with cedarpy, Kubernetes field diffs with secrets masked, Redis ops
outside a declared scope, and the "What this changes" section under its size limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasectl.analysis.cedar import access_changes, parse_actions
from releasectl.analysis.kubernetes import MASK, diff_objects
from releasectl.analysis.markdown import changes_section
from releasectl.analysis.redis import covered, static_operations
from releasectl.analysis.sql import lint
from releasectl.cedarlib.snapshot import Snapshot
from releasectl.models.analysis import (
    AccessChange,
    AccessChanges,
    Analysis,
    AnalysisSummary,
    SqlFinding,
    StepAnalysis,
)
from releasectl.targets.sql.script import parse
from releasectl.workspace.catalogue import scan_component
from tests.builders import add_migration
from tests.conftest import REPO

SCRIPT = """-- a migration with everything a reviewer must see
CREATE TABLE audit_archive (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE INDEX audit_archive_idx ON audit_archive (body);
ALTER TABLE users DROP COLUMN password_hash;
ALTER TABLE users
    ALTER COLUMN email TYPE TEXT;
ALTER TABLE users ADD COLUMN tenant INTEGER NOT NULL;
ALTER TABLE users ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';
CREATE INDEX users_tenant_idx ON users (tenant);
CREATE INDEX CONCURRENTLY users_locale_idx ON users (locale);
ALTER TABLE sessions RENAME TO user_sessions;
ALTER TABLE roles RENAME COLUMN name TO title;
DELETE FROM audit_log;
DELETE FROM audit_log WHERE occurred < '2020-01-01';
UPDATE users SET disabled = FALSE;
TRUNCATE oauth_clients;
DROP TABLE legacy_tokens;
DROP INDEX sessions_user_idx;
ALTER TABLE sessions ADD CONSTRAINT sessions_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE sessions ADD CONSTRAINT fk2 FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
"""


def findings(dialect: str) -> list[tuple[int, str, str]]:
    script = parse(SCRIPT, "sqlite" if dialect == "sqlite" else "postgresql")
    found, notes = lint(script.statements, "up.sql", dialect)
    assert notes == []
    return [(f.line, f.rule, f.severity) for f in found]


def test_sql_rules_on_postgresql_with_lines() -> None:
    assert findings("postgresql") == [
        (4, "ban-drop-column", "destructive"),
        (5, "changing-column-type", "locking"),
        (7, "adding-required-field", "breaking"),
        (9, "require-concurrent-index-creation", "locking"),
        (11, "renaming-table", "breaking"),
        (12, "renaming-column", "breaking"),
        (13, "delete-without-where", "destructive"),
        (15, "update-without-where", "destructive"),
        (16, "ban-truncate", "destructive"),
        (17, "ban-drop-table", "destructive"),
        (18, "require-concurrent-index-deletion", "locking"),
        (19, "adding-foreign-key-constraint", "locking"),
    ]


def test_sql_rules_on_sqlite_skip_the_postgresql_lock_rules() -> None:
    assert findings("sqlite") == [
        (4, "ban-drop-column", "destructive"),
        (5, "changing-column-type", "locking"),
        (7, "adding-required-field", "breaking"),
        (11, "renaming-table", "breaking"),
        (12, "renaming-column", "breaking"),
        (13, "delete-without-where", "destructive"),
        (15, "update-without-where", "destructive"),
        (16, "ban-truncate", "destructive"),
        (17, "ban-drop-table", "destructive"),
    ]


def test_a_statement_sqlglot_cannot_parse_is_noted_not_guessed() -> None:
    script = parse("ALTER TABLE users DROP COLUMN x;\nFROBNICATE THE users;\n", "postgresql")
    found, notes = lint(script.statements, "m/up.sql", "postgresql")
    assert [f.rule for f in found] == ["ban-drop-column"]
    assert len(notes) == 1 and notes[0].startswith("m/up.sql:2: not analysed (sqlglot:")


# --- Cedar -----------------------------------------------------------------------------------


def rbac() -> Snapshot:
    migration = scan_component(REPO, "policies", "cedar", "migrations/policies")[0].get(1)
    assert migration is not None
    return Snapshot.from_migration(migration)


def changed_rbac(tmp_path: Path, roles_extra: str, schema_extra: str = "") -> Snapshot:
    source = REPO / "migrations/policies/0001_rbac_framework"
    files = {
        str(p.relative_to(source)): p.read_text() for p in sorted(source.rglob("*")) if p.is_file()
    }
    files["roles.cedar"] += roles_extra
    files["schema.cedarschema"] += schema_extra
    add_migration(tmp_path, "policies", "0001_changed", files)
    migration = scan_component(tmp_path, "policies", "cedar", "migrations/policies")[0].get(1)
    assert migration is not None
    return Snapshot.from_migration(migration)


def triples(changes: list[AccessChange]) -> list[tuple[str, str, str]]:
    return [(c.principal, c.action, c.resource) for c in changes]


def test_the_same_policy_set_changes_no_access() -> None:
    compiled = rbac().compile()
    changes, notes = access_changes(compiled, compiled)
    assert changes.gained == [] and changes.lost == [] and notes == []
    assert changes.requests > 100


def test_a_new_permit_lists_who_gains_what(tmp_path: Path) -> None:
    new = changed_rbac(
        tmp_path,
        '\n@id("viewer-deploy-staging")\npermit (principal in Role::"viewer", action == '
        'Action::"deploy", resource) when { !resource.environment.protected };\n',
    )
    changes, _ = access_changes(rbac().compile(), new.compile())
    assert triples(changes.gained) == [
        ('User::"ines"', 'Action::"deploy"', 'Service::"staging/auth-service"'),
        ('User::"vera"', 'Action::"deploy"', 'Service::"staging/auth-service"'),
    ]
    assert changes.lost == []


def test_removing_a_permit_lists_who_loses_what(tmp_path: Path) -> None:
    old = rbac().compile()
    source = REPO / "migrations/policies/0001_rbac_framework"
    files = {
        str(p.relative_to(source)): p.read_text() for p in sorted(source.rglob("*")) if p.is_file()
    }
    start = files["roles.cedar"].index('@id("owners-rollback")')
    end = files["roles.cedar"].index("// CI deploys")
    files["roles.cedar"] = files["roles.cedar"][:start] + files["roles.cedar"][end:]
    tests = files["tests/roles.yaml"]
    cut = tests.index("  - name: the owning team rolls back its own service")
    files["tests/roles.yaml"] = tests[:cut] + tests[tests.index("  - name: another team") :]
    add_migration(tmp_path, "policies", "0001_no_owner_rollback", files)
    new = scan_component(tmp_path, "policies", "cedar", "migrations/policies")[0].get(1)
    assert new is not None
    changes, _ = access_changes(old, Snapshot.from_migration(new).compile())
    assert changes.gained == []
    assert triples(changes.lost) == [
        ('User::"ines"', 'Action::"rollback"', 'Service::"prod/auth-service"'),
        ('User::"ines"', 'Action::"rollback"', 'Service::"staging/auth-service"'),
    ]


def test_a_first_policy_set_gains_what_it_permits() -> None:
    changes, _ = access_changes(None, rbac().compile())
    gained = triples(changes.gained)
    assert ('User::"alice"', 'Action::"deploy"', 'Service::"prod/auth-service"') in gained
    assert not any(p == 'User::"dan"' for p, _, _ in gained)  # disabled: forbidden everything
    assert changes.lost == []


def test_schema_actions_are_read_with_their_groups_and_types() -> None:
    schema = rbac().compile().schema
    assert schema is not None
    actions = parse_actions(str(schema.handle))
    view = actions['Action::"view"']
    assert view.parents == [{"type": "Action", "id": "read"}]
    assert view.principals == {"User", "ServiceAccount"}
    assert view.resources == {"Environment", "Service", "PolicyStore", "AuditLog"}
    assert actions['Action::"read"'].principals == set()


# --- Kubernetes --------------------------------------------------------------------------


def test_object_diff_masks_secret_values() -> None:
    old = {
        ("ConfigMap", "", "app"): {"kind": "ConfigMap", "data": {"level": "info", "gone": "x"}},
        ("Secret", "", "creds"): {"kind": "Secret", "data": {"password": "c2VjcmV0"}},
        ("ConfigMap", "", "old"): {"kind": "ConfigMap", "data": {}},
    }
    new = {
        ("ConfigMap", "", "app"): {"kind": "ConfigMap", "data": {"level": "debug", "new": "y"}},
        ("Secret", "", "creds"): {"kind": "Secret", "data": {"password": "b3RoZXI="}},
        ("ConfigMap", "", "fresh"): {"kind": "ConfigMap", "data": {}},
    }
    changes = {(c.change, c.name): c for c in diff_objects(old, new)}
    assert set(changes) == {
        ("changed", "app"),
        ("changed", "creds"),
        ("pruned", "old"),
        ("created", "fresh"),
    }
    app = [(f.path, f.old, f.new) for f in changes[("changed", "app")].fields]
    assert app == [
        ("data.gone", "x", None),
        ("data.level", "info", "debug"),
        ("data.new", None, "y"),
    ]
    creds = [(f.path, f.old, f.new) for f in changes[("changed", "creds")].fields]
    assert creds == [("data.password", MASK, MASK)]
    assert "c2VjcmV0" not in repr(diff_objects(old, new))


# --- Redis -------------------------------------------------------------------------------


def test_redis_ops_outside_the_declared_scope(tmp_path: Path) -> None:
    add_migration(
        tmp_path,
        "redis",
        "0001_prune",
        {
            "migration.yaml": 'scope: ["cache:*"]\n',
            "up.yaml": """
            ops:
              - del: {pattern: "cache:*"}
              - del: {pattern: "session:*"}
              - expire: {pattern: "cache:hot:*", seconds: 60}
            """,
        },
    )
    migration = scan_component(tmp_path, "redis", "redis", "migrations/redis")[0].get(1)
    assert migration is not None
    ops, outside = static_operations(migration, "up.yaml", ["cache:*"])
    assert [(o.command, o.key, o.outside_scope, o.line) for o in ops] == [
        ("del", "cache:*", False, 2),
        ("del", "session:*", True, 3),
        ("expire", "cache:hot:*", False, 4),
    ]
    assert [(o.command, o.key) for o in outside] == [("del", "session:*")]


@pytest.mark.parametrize(
    ("pattern", "inside"),
    [("cache:a", True), ("cache:*", True), ("cache:a:*", True), ("session:*", False), ("*", False)],
)
def test_scope_coverage(pattern: str, inside: bool) -> None:
    assert covered(["cache:*"], pattern) is inside


# --- the comment section -------------------------------------------------------------------


def big_analysis(n: int) -> Analysis:
    finding = SqlFinding(
        rule="ban-drop-column",
        severity="destructive",
        file="migrations/database/0002_x/up.sql",
        line=1,
        statement="ALTER TABLE t DROP COLUMN c",
        message="drops column t.c and its values " + "x" * 100,
    )
    gained = [
        AccessChange(
            principal=f'User::"u{i}"', action='Action::"apply"', resource='Env::"prod"', source="t"
        )
        for i in range(n)
    ]
    step = StepAnalysis(
        index=1,
        component="database",
        type="sql",
        action="up",
        migration="0002_x",
        sql=[finding] * n,
    )
    policy = StepAnalysis(
        index=2,
        component="policies",
        type="cedar",
        action="up",
        migration="0002_p",
        cedar=AccessChanges(requests=n, gained=gained),
    )
    return Analysis(summary=AnalysisSummary(destructive=n, access_gained=n), steps=[step, policy])


def test_the_section_fits_its_limit_and_keeps_the_headline() -> None:
    analysis = big_analysis(2_000)
    full = changes_section(analysis, None, limit=10_000_000)
    assert full.count("**ban-drop-column**") == 2_000
    cut = changes_section(analysis, None, limit=8_000)
    assert len(cut) <= 8_000
    assert ":boom: **2,000** destructive SQL statement(s)" in cut
    assert ":unlock: **2,000** access right(s) gained" in cut
    assert "more: the full list is in `releasectl plan --format json`" in cut
    # destructive SQL is kept longer than access changes when space runs out
    assert cut.count("**ban-drop-column**") >= cut.count("gains")


def test_the_section_escapes_table_and_html_characters() -> None:
    analysis = big_analysis(1)
    step = analysis.steps[1]
    assert step.cedar is not None
    weird = step.cedar.gained[0].model_copy(update={"resource": 'Env::"a|b<c>`d"'})
    cedar = step.cedar.model_copy(update={"gained": [weird]})
    analysis = analysis.model_copy(
        update={"steps": [analysis.steps[0], step.model_copy(update={"cedar": cedar})]}
    )
    text = changes_section(analysis, None)
    assert '``Env::"a\\|b<c>`d"``' in text


def test_the_section_in_the_pr_comment_leaves_room_for_the_steps() -> None:
    from releasectl.analysis.markdown import section_parts
    from releasectl.cli.markdown import LIMIT, PlanFacts, Section, plan_part, render
    from releasectl.models.plan import Plan

    steps = [
        {
            "component": "redis",
            "type": "redis",
            "action": "up",
            "from": i,
            "to": i + 1,
            "migration": f"{i + 1:04d}_step",
            "backup": True,
        }
        for i in range(3_000)
    ]
    plan = Plan.model_validate(
        {
            "env": "prod",
            "digest": "d" * 64,
            "release": {"from": "1.0.0", "to": "2.0.0"},
            "state": {"lineage": "l", "serial": 3},
            "steps": steps,
            "rollback": [],
        }
    )
    title, head, items = section_parts(big_analysis(2_000), None, 20_000)
    assert sum(len(line) + 1 for line in [*head, *items]) <= 20_000
    section = Section(title, tuple(items), head=tuple(head), unit="lines", priority=5, open=True)
    comment = render([plan_part(PlanFacts(plan, sections_before_steps=[section]))])
    assert len(comment) < LIMIT
    assert comment.index("<summary>What this changes</summary>") < comment.index(
        "<summary>Steps (3000)</summary>"
    )
    assert ":boom: **2,000** destructive SQL statement(s)" in comment
    assert comment.count("| `redis` | up |") > 100  # the steps keep their share
