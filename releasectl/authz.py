"""Authorization of mutating commands on protected environments, decided by Cedar.

The API (the engine and the commands call it before they lock anything)::

    decision = authorize(workspace, "prod", actor="bob", action="apply",
                         component=None, breaking=False, approvals=None, now=None)

returns a `Decision` when allowed and raises `DeniedError` (exit 5) when not, naming the
policy that decided or saying that no policy permitted it. `decide(...)` takes the same
arguments and returns the Decision either way. An environment without ``protected: true`` is
always allowed and its policy is not even read.

The request Cedar sees:

- principal ``User::"<actor>"``; roles come from ``entities.yaml`` beside the policies
  (``roles: {admin: [alice]}`` makes ``User::"alice" in Role::"admin"``);
- action ``Action::"apply" | "migrate" | "rollback" | "restore" | "unlock" | "baseline"``;
- resource ``Environment::"<env>"`` (attribute ``protected``), or, when the command is about
  one component, ``Component::"<env>/<component>"`` (attributes ``name``, ``type``), which is
  ``in`` its environment: ``resource in Environment::"prod"`` matches both;
- context ``approvals`` (set of approvers, the actor excluded), ``approval_count``,
  ``breaking``, ``component`` ("" for the whole environment), ``hour`` (0-23, UTC) and
  ``weekday`` ("Mon" ... "Sun", UTC).

Fail closed: a request Cedar cannot evaluate, or a policy that raises an error while
evaluating (Cedar would skip it, so a failing `forbid` would stop forbidding), is a denial.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from releasectl.cedarlib.testing import EntitySpec
from releasectl.errors import DeniedError, InputError, Location, ReleasectlError
from releasectl.models.base import Model

if TYPE_CHECKING:
    from releasectl.cedarlib.policies import PolicySet, Schema
    from releasectl.cedarlib.testing import Outcome
    from releasectl.workspace import Workspace

ACTIONS = ("apply", "migrate", "rollback", "restore", "unlock", "baseline")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ENTITIES_FILE = "entities.yaml"
# What an authorization test's context starts from (tests state only what they vary).
TEST_CONTEXT_DEFAULTS: dict[str, Any] = {
    "approvals": [],
    "breaking": False,
    "component": "",
    "hour": 12,
    "weekday": "Wed",
}


class EntitiesFile(Model):
    """`entities.yaml`: who holds which role, and any other entity the policies need."""

    roles: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Role name -> the user ids (actors) in it: User::"<id>" in Role::"<name>".',
    )
    users: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="User id -> Cedar attributes (e.g. disabled: true)."
    )
    entities: list[EntitySpec] = Field(
        default_factory=list, description="More entities, in Cedar's JSON entity shape."
    )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    env: str
    actor: str
    action: str
    component: str | None = None
    protected: bool = True
    context: dict[str, Any] = field(default_factory=dict)
    policies: tuple[str, ...] = ()  # the determining policies, described
    policy_ids: tuple[str, ...] = ()  # their @id annotations (or file#position)
    errors: tuple[str, ...] = ()

    @property
    def what(self) -> str:
        target = f"environment {self.env}"
        if self.component:
            target += f" (component {self.component})"
        return f"{self.actor} {self.action} on {target}"

    def explain(self) -> str:
        if not self.protected:
            return f"allowed: {self.what}: the environment is not protected"
        if self.allowed:
            return f"allowed: {self.what}: permitted by {', '.join(self.policies)}"
        if self.errors:
            why = "; ".join(self.errors) + " (a request or policy that fails is a denial)"
        elif self.policies:
            why = "denied by " + ", ".join(self.policies)
        else:
            why = "no policy permits it"
        return f"denied: {self.what}: {why}; context: {describe_context(self.context)}"


def describe_context(context: Mapping[str, Any]) -> str:
    count = context.get("approval_count", 0)
    approvers = ", ".join(context.get("approvals", [])) or "none"
    parts = [f"{count} approval{'s' if count != 1 else ''} ({approvers})"]
    parts.append("breaking change" if context.get("breaking") else "not breaking")
    parts.append(f"{context.get('weekday')} {int(context.get('hour', 0)):02d}h UTC")
    return ", ".join(parts)


# --- the workspace's policy --------------------------------------------------------------


@dataclass
class AuthzPolicy:
    policies: PolicySet
    schema: Schema | None
    entities: list[dict[str, Any]]  # roles, users and extra entities from entities.yaml
    tests_dir: Path | None
    tests_display: str | None


def load(workspace: Workspace) -> AuthzPolicy:
    """Parse and validate the workspace's authorization policy; raise located errors."""
    from releasectl.cedarlib.policies import load_policies, load_schema, raise_all, validate
    from releasectl.cedarlib.snapshot import read_source

    cfg = workspace.spec.authorization
    path = workspace.root / cfg.policies
    if not path.exists():
        raise DeniedError(
            f"no authorization policy: {cfg.policies} does not exist (a protected environment "
            "needs one; see docs/security.md)"
        )
    files = sorted(path.glob("*.cedar")) if path.is_dir() else [path]  # a directory is fine too
    if not files:
        raise DeniedError(f"no authorization policy: no *.cedar file in {cfg.policies}")
    sources = [read_source(f, _rel(workspace, f)) for f in files]
    policies = load_policies(sources)
    schema = None
    if cfg.schema_file:
        schema = load_schema(
            read_source(workspace.root / cfg.schema_file, cfg.schema_file.replace(os.sep, "/"))
        )
        errors = validate(policies, schema)
        if errors:
            raise_all(errors)
    base = path if path.is_dir() else path.parent
    entities = _load_entities(workspace, base / ENTITIES_FILE)
    tests_dir = workspace.root / cfg.tests if cfg.tests else None
    return AuthzPolicy(policies, schema, entities, tests_dir, cfg.tests)


def _rel(workspace: Workspace, path: Path) -> str:
    try:
        return path.relative_to(workspace.root).as_posix()
    except ValueError:
        return str(path)


def _load_entities(workspace: Workspace, path: Path) -> list[dict[str, Any]]:
    from releasectl.cedarlib.testing import entity_json
    from releasectl.workspace.loading import load_model

    if not path.is_file():
        return []
    display = _rel(workspace, path)
    spec, doc = load_model(EntitiesFile, path, display)
    users: dict[str, dict[str, Any]] = {}
    for user, attrs in spec.users.items():
        users[user] = {"uid": {"type": "User", "id": user}, "attrs": dict(attrs), "parents": []}
    out: list[dict[str, Any]] = []
    for role, members in spec.roles.items():
        out.append({"uid": {"type": "Role", "id": role}, "attrs": {}, "parents": []})
        for member in members:
            entry = users.setdefault(
                member, {"uid": {"type": "User", "id": member}, "attrs": {}, "parents": []}
            )
            entry["parents"].append({"type": "Role", "id": role})
    out.extend(users.values())
    for index, entity in enumerate(spec.entities):
        try:
            out.append(entity_json(entity))
        except ValueError as exc:
            raise InputError(str(exc), location=doc.location(("entities", index))) from None
    return out


def workspace_entities(workspace: Workspace) -> list[dict[str, Any]]:
    """Environment and Component entities of every environment of the workspace."""
    out: list[dict[str, Any]] = []
    for env_name, env in sorted(workspace.spec.environments.items()):
        env_uid = {"type": "Environment", "id": env_name}
        out.append({"uid": env_uid, "attrs": {"protected": env.protected}, "parents": []})
        for comp_name, comp in sorted(workspace.components.items()):
            out.append(
                {
                    "uid": {"type": "Component", "id": f"{env_name}/{comp_name}"},
                    "attrs": {"name": comp_name, "type": comp.type},
                    "parents": [env_uid],
                }
            )
    return out


def request_context(
    *,
    actor: str,
    approvals: Iterable[str],
    breaking: bool,
    component: str | None,
    now: datetime,
) -> dict[str, Any]:
    # The actor's own approval never counts: four eyes means somebody else's.
    approvers = sorted({a.strip() for a in approvals if a.strip()} - {actor})
    moment = now.astimezone(UTC)
    return {
        "approvals": approvers,
        "approval_count": len(approvers),
        "breaking": bool(breaking),
        "component": component or "",
        "hour": moment.hour,
        "weekday": WEEKDAYS[moment.weekday()],
    }


def approvals_from(environ: Mapping[str, str], variable: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in environ.get(variable, "").split(",") if a.strip())


# --- deciding ----------------------------------------------------------------------------


def decide(
    workspace: Workspace,
    env: str,
    *,
    actor: str,
    action: str,
    component: str | None = None,
    breaking: bool = False,
    approvals: Iterable[str] | None = None,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> Decision:
    """Ask the policy; never raises for a denial (see `authorize`).

    `approvals` None reads the environment variable named by the environment's
    `approvals_env` (default RELEASECTL_APPROVALS: comma-separated approvers).
    """
    spec = workspace.environment(env)
    if action not in ACTIONS:
        raise InputError(f"unknown authorization action {action!r} (one of {', '.join(ACTIONS)})")
    if component is not None:
        workspace.component(component)  # unknown names fail here, not as a denial
    if not spec.protected:
        return Decision(True, env, actor, action, component, protected=False)
    if approvals is None:
        approvals = approvals_from(os.environ if environ is None else environ, spec.approvals_env)
    context = request_context(
        actor=actor,
        approvals=approvals,
        breaking=breaking,
        component=component,
        now=now or datetime.now(UTC),
    )
    policy = load(workspace)
    return _evaluate(policy, workspace, env, actor, action, component, context)


def authorize(
    workspace: Workspace,
    env: str,
    *,
    actor: str,
    action: str,
    component: str | None = None,
    breaking: bool = False,
    approvals: Iterable[str] | None = None,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> Decision:
    """`decide`, raising `DeniedError` (exit 5) when the decision is a denial."""
    decision = decide(
        workspace,
        env,
        actor=actor,
        action=action,
        component=component,
        breaking=breaking,
        approvals=approvals,
        now=now,
        environ=environ,
    )
    if not decision.allowed:
        raise DeniedError(decision.explain())
    return decision


def _evaluate(
    policy: AuthzPolicy,
    workspace: Workspace,
    env: str,
    actor: str,
    action: str,
    component: str | None,
    context: dict[str, Any],
) -> Decision:
    import cedarpy

    from releasectl.cedarlib.testing import uid_text

    entities = [*workspace_entities(workspace), *policy.entities]
    principal = {"type": "User", "id": actor}
    if uid_text(principal) not in {uid_text(e["uid"]) for e in entities}:
        entities.append({"uid": principal, "attrs": {}, "parents": []})  # no role: no rights
    resource = (
        {"type": "Component", "id": f"{env}/{component}"}
        if component
        else {"type": "Environment", "id": env}
    )
    answer = cedarpy.is_authorized(
        {
            "principal": principal,
            "action": {"type": "Action", "id": action},
            "resource": resource,
            "context": context,
        },
        policy.policies.handle,
        entities,
        schema=policy.schema.handle if policy.schema else None,
    )
    reasons = policy.policies.in_order(list(answer.diagnostics.reasons))
    errors = tuple(_describe_error(policy.policies, e) for e in answer.diagnostics.errors)
    infos = [policy.policies.info(r) for r in reasons]
    return Decision(
        allowed=answer.allowed and not errors,
        env=env,
        actor=actor,
        action=action,
        component=component,
        context=context,
        policies=tuple(policy.policies.describe(r) for r in reasons),
        policy_ids=tuple(i.name if i else r for i, r in zip(infos, reasons, strict=True)),
        errors=errors,
    )


def _describe_error(policies: PolicySet, text: str) -> str:
    from releasectl.cedarlib.testing import EVAL_ERROR_RE

    match = EVAL_ERROR_RE.match(text)
    if match:
        return f"{policies.describe(match.group(1))} failed to evaluate: {match.group(2)}"
    return text.removeprefix("failed to build request: ")


# --- tests and checks --------------------------------------------------------------------


def run_tests(workspace: Workspace) -> list[Outcome]:
    """The workspace's authorization tests (`authorization.tests`), one outcome per test."""
    from releasectl.cedarlib import testing

    policy = load(workspace)
    suites = [
        testing.load_tests(path, f"{policy.tests_display}/{path.name}")
        for path in (testing.find_test_files(policy.tests_dir) if policy.tests_dir else [])
    ]

    def complete(context: dict[str, Any]) -> dict[str, Any]:
        full = {**TEST_CONTEXT_DEFAULTS, **context}
        full.setdefault("approval_count", len(full["approvals"]))
        return full

    return testing.run_tests(
        policy.policies,
        policy.schema,
        suites,
        base_entities=[*workspace_entities(workspace), *policy.entities],
        context_hook=complete,
        all_lines=True,
    )


def problems(workspace: Workspace) -> list[ReleasectlError]:
    """For `validate`: the policy parses and validates, when a protected environment needs it
    or the file exists. Tests are `releasectl authz test`'s business."""
    from releasectl.errors import MultipleErrors

    cfg = workspace.spec.authorization
    needed = any(env.protected for env in workspace.spec.environments.values())
    if not needed and not (workspace.root / cfg.policies).exists():
        return []
    try:
        load(workspace)
    except MultipleErrors as exc:
        return list(exc.errors)
    except DeniedError as exc:
        return [InputError(exc.message, location=Location(cfg.policies))]
    except ReleasectlError as exc:
        return [exc]
    return []
