"""Policy tests: YAML files of requests and the decisions they must get.

```yaml
entities:                 # shared by the tests of this file (Cedar's entity JSON, in YAML)
  - {uid: {type: User, id: alice}, attrs: {}, parents: [{type: Role, id: admin}]}
context: {}               # optional: defaults merged under every test's context
tests:
  - name: admins may apply to prod
    principal: 'User::"alice"'            # or {type: User, id: alice}
    action: 'Action::"apply"'
    resource: 'Environment::"prod"'
    context: {}
    entities: []          # optional: more entities for this test only
    expect: allow         # allow | deny
    decided_by: [admins-do-everything]    # optional: the @ids that must decide
```

A test fails when the decision differs, when `decided_by` names other policies, when the
request or the entities do not match the schema, and when a policy raises an evaluation error
(Cedar skips a policy that errors, so a `forbid` that errors silently stops forbidding).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from releasectl.errors import InputError, Location, ReleasectlError
from releasectl.models.base import Model
from releasectl.workspace import yamlio
from releasectl.workspace.loading import validate as validate_model

if TYPE_CHECKING:
    from releasectl.cedarlib.policies import PolicySet, Schema

_UID_RE = re.compile(r'^\s*((?:[A-Za-z_]\w*::)*[A-Za-z_]\w*)::"((?:[^"\\]|\\.)*)"\s*$')
EVAL_ERROR_RE = re.compile(r"^error while evaluating policy `([^`]+)`: (.*)$", re.DOTALL)


class Uid(Model):
    type: str
    id: str


UidRef = Uid | str


class EntitySpec(Model):
    uid: UidRef
    attrs: dict[str, Any] = Field(default_factory=dict)
    parents: list[UidRef] = Field(default_factory=list)
    tags: dict[str, Any] | None = None


class PolicyTest(Model):
    name: str = Field(min_length=1)
    principal: UidRef
    action: UidRef
    resource: UidRef
    context: dict[str, Any] = Field(default_factory=dict)
    entities: list[EntitySpec] = Field(
        default_factory=list, description="Entities added for this test only."
    )
    expect: Literal["allow", "deny"]
    decided_by: list[str] | None = Field(
        default=None,
        description="@id annotations (or file#position) of the policies that must decide.",
    )


class SuiteFile(Model):
    entities: list[EntitySpec] = Field(default_factory=list)
    context: dict[str, Any] = Field(
        default_factory=dict, description="Context defaults merged under every test's context."
    )
    tests: list[PolicyTest] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Suite:
    display: str
    spec: SuiteFile
    doc: yamlio.Document

    def line_of_test(self, index: int) -> int | None:
        return self.doc.line_of(("tests", index))


def parse_uid(ref: UidRef) -> dict[str, str]:
    """`User::"alice"` or {type, id} -> Cedar's {"type", "id"}."""
    if isinstance(ref, Uid):
        return {"type": ref.type, "id": ref.id}
    match = _UID_RE.match(ref)
    if match is None:
        raise ValueError(f'{ref!r} is not an entity reference like User::"alice"')
    try:
        ident = json.loads(f'"{match.group(2)}"')
    except json.JSONDecodeError:
        ident = match.group(2)
    return {"type": match.group(1), "id": str(ident)}


def uid_text(uid: Mapping[str, str]) -> str:
    return f"{uid['type']}::{json.dumps(uid['id'])}"


def entity_json(spec: EntitySpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "uid": parse_uid(spec.uid),
        "attrs": spec.attrs,
        "parents": [parse_uid(p) for p in spec.parents],
    }
    if spec.tags is not None:
        out["tags"] = spec.tags
    return out


def load_tests(path: Path, display: str) -> Suite:
    doc = yamlio.load(path, display)
    if not isinstance(doc.data, dict):
        raise InputError("expected a mapping with `tests:`", location=Location(display, 1))
    spec = validate_model(SuiteFile, doc)
    errors: list[ReleasectlError] = []
    seen: dict[str, int] = {}
    for index, test in enumerate(spec.tests):
        where: yamlio.FieldPath = ("tests", index)
        if test.name in seen:
            errors.append(
                InputError(
                    f"duplicate test name {test.name!r} (also test #{seen[test.name] + 1})",
                    location=doc.location((*where, "name")),
                )
            )
        seen.setdefault(test.name, index)
        for key in ("principal", "action", "resource"):
            try:
                parse_uid(getattr(test, key))
            except ValueError as exc:
                errors.append(InputError(str(exc), location=doc.location((*where, key))))
    for index, entity in enumerate(spec.entities):
        for ref in (entity.uid, *entity.parents):
            try:
                parse_uid(ref)
            except ValueError as exc:
                errors.append(InputError(str(exc), location=doc.location(("entities", index))))
    if errors:
        from releasectl.cedarlib.policies import raise_all

        raise_all(errors)
    return Suite(display, spec, doc)


def find_test_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())


# --- running -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    file: str
    line: int | None
    name: str
    expected: str  # allow | deny
    actual: str  # allow | deny | error
    decided_by: tuple[str, ...]  # names of the determining policies
    reasons: tuple[str, ...]  # their descriptions (effect, label, file:line)
    problem: str | None  # None: passed

    @property
    def passed(self) -> bool:
        return self.problem is None

    @property
    def location(self) -> Location:
        return Location(self.file, self.line, f'test "{self.name}"')

    def describe(self) -> str:
        if self.passed:
            return f"{self.expected}" + (
                f" by {', '.join(self.decided_by)}" if self.decided_by else ""
            )
        return self.problem or ""

    def error(self) -> InputError:
        return InputError(self.describe(), location=self.location)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "name": self.name,
            "expected": self.expected,
            "actual": self.actual,
            "passed": self.passed,
            "decided_by": list(self.decided_by),
            "reasons": list(self.reasons),
            "problem": self.problem,
        }


ContextHook = Callable[[dict[str, Any]], dict[str, Any]]


def run_tests(
    policies: PolicySet,
    schema: Schema | None,
    files: Iterable[Suite],
    *,
    base_entities: Iterable[dict[str, Any]] = (),
    context_hook: ContextHook | None = None,
    all_lines: bool = False,
) -> list[Outcome]:
    """Run every test of `files` against `policies`; one result per test, in file order.

    `base_entities` come first and a file's or a test's entity with the same uid replaces
    them; `context_hook` completes each test's context (the authorization defaults). A failing
    test always has its line; a passing one only with `all_lines` (finding lines costs a
    second, round-trip parse of the file).
    """
    import cedarpy

    base = list(base_entities)
    results: list[Outcome] = []
    schema_handle = schema.handle if schema is not None else None
    for loaded in files:
        spec = loaded.spec
        file_entities = _merge(base, [entity_json(e) for e in spec.entities])
        requests = []
        entity_sets = []
        for test in spec.tests:
            context = {**spec.context, **test.context}
            if context_hook is not None:
                context = context_hook(context)
            requests.append(
                {
                    "principal": parse_uid(test.principal),
                    "action": parse_uid(test.action),
                    "resource": parse_uid(test.resource),
                    "context": context,
                }
            )
            extra = [entity_json(e) for e in test.entities]
            entity_sets.append(_merge(file_entities, extra) if extra else file_entities)
        answers: list[Any] = []
        if all(es is file_entities for es in entity_sets):
            if requests:
                answers = cedarpy.is_authorized_batch(
                    requests, policies.handle, file_entities, schema=schema_handle
                )
        else:
            answers = [
                cedarpy.is_authorized(req, policies.handle, es, schema=schema_handle)
                for req, es in zip(requests, entity_sets, strict=True)
            ]
        for index, (test, answer) in enumerate(zip(spec.tests, answers, strict=True)):
            results.append(_judge(policies, loaded, index, test, answer, all_lines))
    return results


def _merge(base: list[dict[str, Any]], extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not extra:
        return base
    replaced = {uid_text(e["uid"]) for e in extra}
    return [e for e in base if uid_text(e["uid"]) not in replaced] + extra


def _judge(
    policies: PolicySet, loaded: Suite, index: int, test: PolicyTest, answer: Any, line: bool
) -> Outcome:
    decision = answer.decision.value.lower()
    reasons = policies.in_order(list(answer.diagnostics.reasons))
    names = tuple(sorted(_name(policies, r) for r in reasons))
    described = tuple(policies.describe(r) for r in reasons)
    actual = decision if decision in {"allow", "deny"} else "error"
    problem: str | None = None
    request_errors: list[str] = []
    eval_errors: list[str] = []
    for text in answer.diagnostics.errors:
        match = EVAL_ERROR_RE.match(text)
        if match:
            eval_errors.append(f"{policies.describe(match.group(1))} raised: {match.group(2)}")
        else:
            request_errors.append(_short_entity_error(text))
    if actual == "error" or request_errors:
        actual = "error"
        problem = "the request cannot be evaluated: " + "; ".join(request_errors or ["no decision"])
    elif actual != test.expect:
        problem = f"expected {test.expect}, got {actual}: {_why(actual, described)}"
    elif eval_errors:
        problem = (
            f"got {actual} as expected, but a policy failed to evaluate (Cedar ignores it): "
            + "; ".join(eval_errors)
        )
    elif test.decided_by is not None and sorted(test.decided_by) != list(names):
        problem = (
            f"expected {test.expect} decided by {', '.join(sorted(test.decided_by)) or 'no policy'}"
            f", got it decided by {', '.join(names) or 'no policy'}"
        )
    if problem and eval_errors and "raised" not in problem:
        problem += " (policy errors: " + "; ".join(eval_errors) + ")"
    return Outcome(
        file=loaded.display,
        line=loaded.line_of_test(index) if problem or line else None,
        name=test.name,
        expected=test.expect,
        actual=actual,
        decided_by=names,
        reasons=described,
        problem=problem,
    )


def _name(policies: PolicySet, cedar_id: str) -> str:
    info = policies.info(cedar_id)
    return info.name if info is not None else cedar_id


def _why(actual: str, described: tuple[str, ...]) -> str:
    if actual == "allow":
        return "permitted by " + ", ".join(described)
    if described:
        return "denied by " + ", ".join(described)
    return "no policy permits it"


def _short_entity_error(text: str) -> str:
    # cedarpy quotes the whole entity document before the reason; keep the reason only
    if text.startswith("failed to parse entities from:"):
        _, _, reason = text.rpartition("]: ")
        return f"invalid entities: {reason or text}"
    return text.removeprefix("failed to build request: ")
