"""Authorization of protected environments with the example workspace's Cedar policy
(authz/): allow and deny with the deciding policy named, approvals, time, components, fail
closed, and `releasectl authz test`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from releasectl import authz
from releasectl.errors import DeniedError, ExitCode, InputError
from releasectl.workspace import Workspace
from tests.conftest import run_cli

WEDNESDAY_NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FRIDAY = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture
def ws(example: Path) -> Workspace:
    return Workspace.load(example)


def decide(ws: Workspace, actor: str, action: str = "apply", **kw: object) -> authz.Decision:
    kw.setdefault("now", WEDNESDAY_NOON)
    kw.setdefault("environ", {})
    return authz.decide(ws, "prod", actor=actor, action=action, **kw)  # type: ignore[arg-type]


def test_an_admin_may_apply(ws: Workspace) -> None:
    decision = authz.authorize(
        ws, "prod", actor="alice", action="apply", now=WEDNESDAY_NOON, environ={}
    )
    assert decision.allowed
    assert decision.policy_ids == ("admins-may-do-anything",)
    assert decision.policies == ('permit policy "admins-may-do-anything" (authz/policies.cedar:6)',)


def test_a_denial_raises_with_exit_5_and_says_no_policy_permits(ws: Workspace) -> None:
    with pytest.raises(DeniedError) as info:
        authz.authorize(ws, "prod", actor="bob", action="apply", now=WEDNESDAY_NOON, environ={})
    assert info.value.exit_code == ExitCode.DENIED
    assert int(info.value.exit_code) == 5
    assert str(info.value) == (
        "denied: bob apply on environment prod: no policy permits it; context: 0 approvals "
        "(none), not breaking, Wed 12h UTC"
    )


def test_a_forbid_names_the_policy_and_its_line(ws: Workspace) -> None:
    decision = decide(ws, "bob", approvals=["carol"], breaking=True)
    assert not decision.allowed
    assert decision.policy_ids == ("breaking-needs-two-approvals",)
    assert (
        'denied by forbid policy "breaking-needs-two-approvals" (authz/policies.cedar:19)'
        in decision.explain()
    )
    assert decide(ws, "bob", approvals=["carol", "alice"], breaking=True).allowed


def test_approvals_come_from_the_environment_variable(ws: Workspace) -> None:
    assert not decide(ws, "bob", environ={}).allowed
    decision = decide(ws, "bob", environ={"RELEASECTL_APPROVALS": " carol, ,dave "})
    assert decision.allowed
    assert decision.context["approvals"] == ["carol", "dave"]
    assert decision.context["approval_count"] == 2
    assert decision.policy_ids == ("operators-change-with-approval",)


def test_the_variable_is_named_by_the_environment(example: Path) -> None:
    path = example / "releasectl.yaml"
    path.write_text(
        path.read_text().replace(
            "    protected: true\n", "    protected: true\n    approvals_env: PROD_APPROVERS\n"
        )
    )
    ws = Workspace.load(example)
    assert not decide(ws, "bob", environ={"RELEASECTL_APPROVALS": "carol"}).allowed
    assert decide(ws, "bob", environ={"PROD_APPROVERS": "carol"}).allowed


def test_approving_ones_own_change_does_not_count(ws: Workspace) -> None:
    decision = decide(ws, "bob", approvals=["bob"])
    assert not decision.allowed
    assert decision.context["approval_count"] == 0


@pytest.mark.parametrize(
    ("moment", "allowed"),
    [
        (FRIDAY + timedelta(hours=9), True),
        (FRIDAY + timedelta(hours=16), False),
        (FRIDAY + timedelta(days=1, hours=10), False),  # Saturday
        (FRIDAY + timedelta(days=3, hours=1), True),  # Monday night
        # 17:30 in UTC+2 is 15:30 UTC: still allowed
        (datetime(2026, 11, 27, 17, 30, tzinfo=timezone(timedelta(hours=2))), True),
    ],
)
def test_no_weekend_changes(ws: Workspace, moment: datetime, allowed: bool) -> None:
    decision = decide(ws, "bob", approvals=["carol"], now=moment)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.policy_ids == ("no-weekend-changes",)
    # rollbacks are not changes, and admins are exempt
    assert decide(ws, "bob", "rollback", now=moment).allowed
    assert decide(ws, "alice", now=moment).allowed


def test_components_are_resources_in_their_environment(ws: Workspace) -> None:
    denied = decide(ws, "bob", "migrate", component="policies", approvals=["carol"])
    assert denied.policy_ids == ("policies-component-admins-only",)
    assert "(component policies)" in denied.explain()
    assert decide(ws, "bob", "migrate", component="database", approvals=["carol"]).allowed
    with pytest.raises(InputError, match="unknown component 'nope'"):
        decide(ws, "bob", "migrate", component="nope")


def test_restore_and_unlock_are_for_admins(ws: Workspace) -> None:
    for action in ("restore", "unlock"):
        assert decide(ws, "alice", action).allowed
        denied = decide(ws, "bob", action, approvals=["alice", "carol"])
        assert denied.policy_ids == ("restore-and-unlock-admins-only",)


def test_disabled_and_unknown_users_are_denied(ws: Workspace) -> None:
    assert decide(ws, "mallory", approvals=["alice"]).policy_ids == ("disabled-users-denied",)
    stranger = decide(ws, "someone@example.com", "rollback")
    assert not stranger.allowed and stranger.policies == ()


def test_an_unprotected_environment_is_always_allowed(ws: Workspace) -> None:
    (ws.root / "authz" / "policies.cedar").write_text("this is not cedar")
    decision = authz.authorize(ws, "local", actor="nobody", action="unlock")
    assert decision.allowed and not decision.protected
    assert "not protected" in decision.explain()


def test_a_protected_environment_without_a_policy_is_denied(ws: Workspace) -> None:
    (ws.root / "authz" / "policies.cedar").unlink()
    with pytest.raises(DeniedError, match=r"no authorization policy: authz/policies.cedar"):
        decide(ws, "alice")


def test_a_broken_policy_is_an_input_error_with_its_location(ws: Workspace) -> None:
    path = ws.root / "authz" / "policies.cedar"
    path.write_text(
        path.read_text().replace("context.approval_count >= 1 };", "context.approval_count >= 1 }")
    )
    with pytest.raises(InputError) as info:
        decide(ws, "alice")
    assert str(info.value) == (
        "authz/policies.cedar:12: syntax error: expected `;` at the end of the policy (the next "
        "one starts on line 15)"
    )
    assert [str(e) for e in authz.problems(ws)] == [str(info.value)]


def test_a_policy_that_fails_to_evaluate_denies(example: Path) -> None:
    # No schema, so nothing catches the unguarded attribute: Cedar skips the failing forbid,
    # releasectl must not.
    path = example / "releasectl.yaml"
    path.write_text(path.read_text() + "authorization:\n  schema: null\n  tests: null\n")
    (example / "authz" / "policies.cedar").write_text(
        '@id("all")\npermit (principal, action, resource);\n'
        '@id("unguarded")\nforbid (principal, action, resource) when { principal.disabled };\n'
    )
    ws = Workspace.load(example)
    decision = decide(ws, "bob")
    assert not decision.allowed
    assert 'forbid policy "unguarded" (authz/policies.cedar:3) failed to evaluate' in (
        decision.explain()
    )


def test_unknown_actions_are_refused(ws: Workspace) -> None:
    with pytest.raises(InputError, match="unknown authorization action 'deploy'"):
        decide(ws, "alice", "deploy")


def test_the_example_policy_has_no_problems(ws: Workspace) -> None:
    assert authz.problems(ws) == []


# --- releasectl authz test --------------------------------------------------------------


def test_authz_test_passes_on_the_example(example: Path) -> None:
    result = run_cli("authz", "test", cwd=example)
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert len([line for line in lines if line.startswith("PASS")]) >= 15
    assert lines[-1].endswith("passed, 0 failed")
    assert (
        "PASS  authz/tests/prod.yaml:30  a breaking change with one approval is denied to an "
        "operator: deny by breaking-needs-two-approvals"
    ) in lines


def test_authz_test_fails_with_exit_1(example: Path) -> None:
    path = example / "authz" / "tests" / "prod.yaml"
    path.write_text(
        path.read_text().replace(
            "context: {approvals: [carol]}\n    expect: allow",
            "context: {approvals: [carol]}\n    expect: deny",
            1,
        )
    )
    result = run_cli("authz", "test", cwd=example)
    assert result.code == 1, result
    assert (
        "FAIL  authz/tests/prod.yaml:11  an operator applies with one approval: expected deny, "
        'got allow: permitted by permit policy "operators-change-with-approval" '
        "(authz/policies.cedar:10)"
    ) in result.out
    assert "1 failed" in result.err
    data = json.loads(run_cli("authz", "test", "--format", "json", cwd=example).out)
    assert data["failed"] == 1 and data["passed"] >= 14
    failed = [t for t in data["tests"] if not t["passed"]]
    assert failed[0]["line"] == 11 and failed[0]["actual"] == "allow"


def test_authz_test_reports_a_broken_policy(example: Path) -> None:
    (example / "authz" / "policies.cedar").write_text("permit (principal, action, resource)\n")
    result = run_cli("authz", "test", cwd=example)
    assert result.code == 1
    assert "authz/policies.cedar:1: syntax error: unexpected end of input" in result.err


def test_authz_test_without_tests(example: Path) -> None:
    for path in (example / "authz" / "tests").iterdir():
        path.unlink()
    result = run_cli("authz", "test", cwd=example)
    assert result.code == 0
    assert "no authorization tests in authz/tests" in result.err


# --- through the commands ---------------------------------------------------------------


def protect_local(example: Path) -> None:
    path = example / "releasectl.yaml"
    path.write_text(path.read_text().replace("  local:\n", "  local:\n    protected: true\n", 1))


def test_a_denied_migrate_exits_5_and_changes_nothing(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    protect_local(example)
    monkeypatch.setenv("RELEASECTL_ACTOR", "carol")  # a viewer
    monkeypatch.setenv("RELEASECTL_APPROVALS", "alice")
    result = run_cli("migrate", "policies", "1", "--env", "local", "--yes", cwd=example)
    assert result.code == 5, result
    assert "denied: carol migrate on environment local: no policy permits it" in result.err
    assert not (example / "deploy").exists()


def test_an_admin_migrate_runs(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    protect_local(example)
    # an admin: the weekend rule exempts admins, so the test does not depend on the clock
    monkeypatch.setenv("RELEASECTL_ACTOR", "alice")
    monkeypatch.setenv("RELEASECTL_BACKUP_KEY", base64.b64encode(b"k" * 32).decode())
    result = run_cli("migrate", "redis", "1", "--env", "local", "--yes", cwd=example)
    assert result.code == 0, result


def test_every_component_of_a_plan_is_authorized(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    protect_local(example)
    monkeypatch.setenv("RELEASECTL_ACTOR", "bob")  # an operator (on a weekend two forbids decide)
    monkeypatch.setenv("RELEASECTL_APPROVALS", "alice")
    monkeypatch.setenv("RELEASECTL_BACKUP_KEY", base64.b64encode(b"k" * 32).decode())
    denied = run_cli("migrate", "policies", "1", "--env", "local", "--yes", cwd=example)
    assert denied.code == 5, denied
    assert "policies-component-admins-only" in denied.err
    assert not (example / "deploy").exists()
