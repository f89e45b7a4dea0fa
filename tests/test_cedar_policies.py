"""Cedar policy sets: parsing, schema validation and policy tests, with every problem located
(file, line, policy id or test name). Real cedarpy, real files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from releasectl.cedarlib import source
from releasectl.cedarlib.snapshot import Snapshot
from releasectl.errors import ReleasectlError

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "migrations" / "policies" / "0001_rbac_framework"

SCHEMA = """\
entity Role;
entity User in [Role] { email: String };
entity Environment { protected: Bool };
action "view" appliesTo { principal: [User], resource: [Environment] };
action "apply" appliesTo { principal: [User], resource: [Environment] };
"""
POLICIES = """\
// admins
@id("admins")
permit (principal in Role::"admin", action, resource);

@id("everyone-views")
permit (principal, action == Action::"view", resource);
"""
TESTS = """\
entities:
  - {uid: {type: Role, id: admin}}
  - uid: {type: User, id: alice}
    attrs: {email: a@example.com}
    parents: [{type: Role, id: admin}]
  - {uid: {type: User, id: bob}, attrs: {email: b@example.com}}
  - {uid: {type: Environment, id: prod}, attrs: {protected: true}}
tests:
  - name: admin applies
    principal: 'User::"alice"'
    action: 'Action::"apply"'
    resource: 'Environment::"prod"'
    expect: allow
  - name: bob may not apply
    principal: 'User::"bob"'
    action: 'Action::"apply"'
    resource: 'Environment::"prod"'
    expect: deny
"""


def make(tmp_path: Path, files: dict[str, str]) -> Snapshot:
    root = tmp_path / "0001_set"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return Snapshot.from_dir(root, "migrations/policies/0001_set")


def messages(snapshot: Snapshot) -> list[str]:
    return [str(e) for e in snapshot.problems()]


def base(**overrides: str) -> dict[str, str]:
    files = {"a.cedar": POLICIES, "schema.cedarschema": SCHEMA, "tests/basic.yaml": TESTS}
    files.update(overrides)
    return files


def test_a_sound_set_has_no_problems(tmp_path: Path) -> None:
    snap = make(tmp_path, base())
    assert messages(snap) == []
    outcomes = snap.compile().run_tests()
    assert [(o.name, o.actual, o.decided_by) for o in outcomes] == [
        ("admin applies", "allow", ("admins",)),
        ("bob may not apply", "deny", ()),
    ]


def test_the_example_rbac_framework_passes_its_tests() -> None:
    snap = Snapshot.from_dir(EXAMPLE, "migrations/policies/0001_rbac_framework")
    assert snap.problems() == []
    outcomes = snap.compile().run_tests()
    assert len(outcomes) >= 15
    assert all(o.passed for o in outcomes)
    assert {o.actual for o in outcomes} == {"allow", "deny"}
    assert len(snap.compile().policies) >= 10


def test_the_example_tests_can_fail(tmp_path: Path) -> None:
    # Drop the MFA guardrail: the test that relies on it must fail and say what decided instead.
    copy = tmp_path / "0001_rbac_framework"
    shutil.copytree(EXAMPLE, copy)
    guard = copy / "guardrails.cedar"
    text = guard.read_text()
    start = text.index('@id("protected-writes-need-mfa")')
    end = text.index(";", start) + 1
    guard.write_text(text[:start] + text[end:])
    problems = [str(e) for e in Snapshot.from_dir(copy, "m").problems()]
    assert len(problems) == 1
    assert 'test "a prod deploy without MFA is denied, even to an admin"' in problems[0]
    assert "expected deny, got allow" in problems[0]
    assert 'permitted by permit policy "admin-all" (m/roles.cedar:' in problems[0]


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = (
        POLICIES
        + '\n@id("broken")\npermit (principal, action, resource)\nwhen { context.x == "a };\n'
    )
    snap = make(tmp_path, base(**{"b.cedar": bad}))
    assert messages(snap) == [
        "migrations/policies/0001_set/b.cedar:10: syntax error: invalid token"
    ]


def test_missing_semicolon_points_at_the_end_of_the_policy(tmp_path: Path) -> None:
    bad = (
        '@id("x")\npermit (principal, action, resource)\n// next\n\n'
        '@id("y")\nforbid (principal, action, resource);\n'
    )
    snap = make(tmp_path, base(**{"b.cedar": bad}))
    assert messages(snap) == [
        "migrations/policies/0001_set/b.cedar:2: syntax error: expected `;` at the end of the "
        "policy (the next one starts on line 5)"
    ]


def test_semantic_parse_error_points_at_the_name(tmp_path: Path) -> None:
    bad = "permit (\n  principal,\n  action,\n  resourse\n);\n"
    snap = make(tmp_path, base(**{"b.cedar": bad}))
    (msg,) = messages(snap)
    assert msg.startswith("migrations/policies/0001_set/b.cedar:4: syntax error:")
    assert "resourse" in msg


def test_several_files_with_errors_are_all_reported(tmp_path: Path) -> None:
    snap = make(
        tmp_path,
        base(**{"b.cedar": "permit (principal, action, resource) when { 1 + };\n", "c.cedar": "x"}),
    )
    found = messages(snap)
    assert [m.split(":")[0] for m in found] == [
        "migrations/policies/0001_set/b.cedar",
        "migrations/policies/0001_set/c.cedar",
    ]


def test_validation_error_names_policy_and_line(tmp_path: Path) -> None:
    bad = (
        "// second file\n"
        '@id("typo")\n'
        "permit (principal, action, resource)\n"
        'when { principal.emial == "x" };\n'
        "\n"
        'permit (principal, action == Action::"deploy", resource);\n'
    )
    snap = make(tmp_path, base(**{"b.cedar": bad}))
    found = messages(snap)
    assert found[0] == (
        'migrations/policies/0001_set/b.cedar:4: policy "typo": does not validate against '
        "migrations/policies/0001_set/schema.cedarschema: attribute `emial` on entity type `User` "
        "not found"
    )
    # a policy without @id is named by its position in its file
    assert found[1].startswith("migrations/policies/0001_set/b.cedar:6: policy #2 of b.cedar:")
    assert 'unrecognized action `Action::"deploy"`' in found[1]


def test_schema_errors_are_located(tmp_path: Path) -> None:
    typo = SCHEMA.replace("protected: Bool", "protected: Bol")
    (msg,) = messages(make(tmp_path / "a", base(**{"schema.cedarschema": typo})))
    assert msg == (
        "migrations/policies/0001_set/schema.cedarschema:3: invalid schema: failed to resolve "
        "type: Bol"
    )
    no_semicolon = SCHEMA.replace("protected: Bool };", "protected: Bool }")
    assert messages(make(tmp_path / "b", base(**{"schema.cedarschema": no_semicolon}))) == [
        "migrations/policies/0001_set/schema.cedarschema:3: invalid schema: expected `;` at the "
        "end of the declaration (the next one starts on line 4)"
    ]
    twice = "namespace Acme {\n  entity Role;\n  entity Role;\n}\n"
    assert messages(make(tmp_path / "c", base(**{"schema.cedarschema": twice}))) == [
        "migrations/policies/0001_set/schema.cedarschema:3: invalid schema: `Role` is declared "
        "twice"
    ]


def test_json_schema_is_accepted_and_errors_located(tmp_path: Path) -> None:
    import cedarpy

    files = base()
    del files["schema.cedarschema"]
    files["schema.cedarschema.json"] = str(cedarpy.Schema.from_str(SCHEMA))
    # the human text is not JSON: the JSON parser's own line is reported
    (msg,) = messages(make(tmp_path / "a", files))
    assert msg.startswith("migrations/policies/0001_set/schema.cedarschema.json:1: invalid schema")
    schema_json = (
        '{"": {\n "entityTypes": {"Role": {}, "User": {"memberOfTypes": ["Role"], "shape": '
        '{"type": "Record", "attributes": {"email": {"type": "String"}}}},\n'
        ' "Environment": {"shape": {"type": "Record", "attributes": {"protected": {"type": '
        '"Boolean"}}}}},\n "actions": {"view": {"appliesTo": {"principalTypes": ["User"], '
        '"resourceTypes": ["Environment"]}}, "apply": {"appliesTo": {"principalTypes": ["User"], '
        '"resourceTypes": ["Environment"]}}}\n}}\n'
    )
    files["schema.cedarschema.json"] = schema_json
    snap = make(tmp_path / "b", files)
    assert messages(snap) == []
    rendered = snap.render(snap.compile())["schema.cedarschema"].decode()
    assert "entity Environment" in rendered  # stored in Cedar's human format


def test_failing_test_names_file_line_expectation_and_policy(tmp_path: Path) -> None:
    tests = TESTS.replace("expect: deny", "expect: allow").replace(
        "  - name: admin applies", "  - name: admin applies\n    decided_by: [everyone-views]"
    )
    found = messages(make(tmp_path, base(**{"tests/basic.yaml": tests})))
    assert found == [
        'migrations/policies/0001_set/tests/basic.yaml:9: test "admin applies": expected allow '
        "decided by everyone-views, got it decided by admins",
        'migrations/policies/0001_set/tests/basic.yaml:15: test "bob may not apply": expected '
        "allow, got deny: no policy permits it",
    ]


def test_a_forbid_that_decides_is_named(tmp_path: Path) -> None:
    forbid = (
        '@id("no-prod")\nforbid (principal, action == Action::"apply", resource)\n'
        "when { resource.protected };\n"
    )
    found = messages(make(tmp_path, base(**{"z.cedar": forbid})))
    assert found == [
        'migrations/policies/0001_set/tests/basic.yaml:9: test "admin applies": expected allow, '
        'got deny: denied by forbid policy "no-prod" (migrations/policies/0001_set/z.cedar:1)'
    ]


def test_a_request_that_does_not_match_the_schema_fails(tmp_path: Path) -> None:
    tests = TESTS.replace("principal: 'User::\"bob\"'", "principal: 'Usr::\"bob\"'")
    (msg,) = messages(make(tmp_path, base(**{"tests/basic.yaml": tests})))
    assert msg.startswith(
        'migrations/policies/0001_set/tests/basic.yaml:14: test "bob may not apply"'
    )
    assert "cannot be evaluated" in msg and "Usr" in msg


def test_entities_that_do_not_match_the_schema_fail(tmp_path: Path) -> None:
    tests = TESTS.replace("attrs: {email: b@example.com}", "attrs: {}")
    found = messages(make(tmp_path, base(**{"tests/basic.yaml": tests})))
    assert len(found) == 2  # every test of the file
    assert "invalid entities" in found[0] and "email" in found[0]


def test_a_policy_evaluation_error_fails_the_test(tmp_path: Path) -> None:
    # The forbid reads an attribute of a principal missing from the entities: Cedar skips the
    # erroring policy and allows. A test must not pass silently on that.
    forbid = (
        '@id("email-check")\nforbid (principal, action, resource)\n'
        'when { principal.email == "x" };\n'
    )
    files = base(
        **{"z.cedar": forbid, "tests/basic.yaml": TESTS.replace('User::"alice"', 'User::"ghost"')}
    )
    files["a.cedar"] = POLICIES + "permit (principal, action, resource);\n"
    found = messages(make(tmp_path, files))
    assert len(found) == 2  # and bob is now allowed by the permit-all policy
    assert found[0].startswith(
        'migrations/policies/0001_set/tests/basic.yaml:9: test "admin applies": got allow as '
        'expected, but a policy failed to evaluate (Cedar ignores it): forbid policy "email-check"'
    )


def test_bad_test_files_are_located(tmp_path: Path) -> None:
    tests = TESTS.replace("expect: deny", "expect: maybe")
    found = messages(make(tmp_path / "a", base(**{"tests/basic.yaml": tests})))
    assert found == [
        "migrations/policies/0001_set/tests/basic.yaml:18: tests[1].expect: input should be "
        "'allow' or 'deny', got 'maybe'"
    ]
    tests = TESTS.replace(
        "resource: 'Environment::\"prod\"'\n    expect: allow", "resource: prod\n    expect: allow"
    )
    found = messages(make(tmp_path / "b", base(**{"tests/basic.yaml": tests})))
    assert found == [
        "migrations/policies/0001_set/tests/basic.yaml:12: tests[0].resource: 'prod' is not an "
        'entity reference like User::"alice"'
    ]


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    dup = '@id("admins")\npermit (principal, action == Action::"view", resource);\n'
    (msg,) = messages(make(tmp_path, base(**{"b.cedar": dup})))
    assert msg.startswith('migrations/policies/0001_set/b.cedar:1: policy "admins": duplicate @id')
    assert "a.cedar:2" in msg


def test_missing_parts_are_reported(tmp_path: Path) -> None:
    found = messages(make(tmp_path, {"tests/basic.yaml": TESTS}))
    assert "no *.cedar policy file" in found[0]
    assert "no schema" in found[1]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("attribute `emial` on entity type `User` not found", ["emial", "User"]),
        ("failed to resolve types: Rol, X", ["Rol", "X"]),
        ('unrecognized action `Action::"deploy"`', ['Action::"deploy"', '"deploy"']),
    ],
)
def test_message_names(message: str, expected: list[str]) -> None:
    assert source.message_names(message) == expected


def test_statements_ignore_semicolons_in_strings_and_comments() -> None:
    text = (
        'permit (principal, action, resource) when { context.x == "a;b" }; // c;d\n'
        "forbid (principal, action, resource);"
    )
    found, tail = source.statements(text)
    assert [text[s.start : s.end][:6] for s in found] == ["permit", "forbid"]
    assert tail is None
    _, tail = source.statements("permit (principal")
    assert tail == 0


def test_errors_are_releasectl_errors(tmp_path: Path) -> None:
    snap = make(tmp_path, base(**{"b.cedar": "nonsense"}))
    with pytest.raises(ReleasectlError) as info:
        snap.compile()
    assert info.value.exit_code == 1
