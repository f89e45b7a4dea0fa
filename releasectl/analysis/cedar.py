"""Who gains and who loses which action on which resource when a Cedar step runs.

The policy set of the step's old version and that of its new version (a snapshot each; none
at version 0, which denies everything) are evaluated on the same requests:

- every policy test of both versions (its principal, action, resource, context, entities);
- for each policy test file (the same file of both versions, entities merged, the new
  version's winning), every principal x action x resource its entities allow by the schemas:
  each action's `appliesTo` names the principal and resource types.

Both sets see the same entities, and the action groups (`action "view" in ["read"]`) of their
own schema as Action entities, so a request is judged the same way by both and only the
policies differ. A request either set cannot evaluate counts as a deny for that set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from releasectl.cedarlib.testing import entity_json, parse_uid, uid_text
from releasectl.errors import ReleasectlError
from releasectl.models.analysis import AccessChange, AccessChanges, StepAnalysis

if TYPE_CHECKING:
    from releasectl.analysis.base import StepInput
    from releasectl.cedarlib.snapshot import Compiled
    from releasectl.cedarlib.testing import Suite
    from releasectl.workspace.catalogue import ComponentMigrations

MAX_REQUESTS = 200_000  # per step: a bigger cross product is cut with a note
_ACTION_RE = re.compile(r'^\s*action\s+((?:"(?:[^"\\]|\\.)*"\s*,?\s*)+)(.*)$')
_NAME_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
_NAMESPACE_RE = re.compile(r"^\s*namespace\s+([A-Za-z_][\w:]*)\s*\{\s*$")
_LIST_RE = re.compile(r"^\s*(principal|resource)\s*:\s*\[([^\]]*)\]")


@dataclass
class Action:
    uid: dict[str, str]
    parents: list[dict[str, str]] = field(default_factory=list)
    principals: set[str] = field(default_factory=set)
    resources: set[str] = field(default_factory=set)


def analyze(item: StepInput) -> StepAnalysis | None:
    step = item.step
    if step.action not in ("up", "down"):
        return None
    out = StepAnalysis(
        index=item.index,
        component=step.component,
        type=step.type,
        action=step.action,
        migration=step.migration,
    )
    try:
        old = _compiled(item.migrations, int(step.from_ or 0))
        new = _compiled(item.migrations, int(step.to or 0))
    except (ReleasectlError, ValueError) as exc:
        return out.model_copy(update={"notes": [f"access not analysed: {exc}"]})
    changes, notes = access_changes(old, new)
    return out.model_copy(update={"cedar": changes, "notes": notes})


def _compiled(found: ComponentMigrations | None, version: int) -> Compiled | None:
    if version <= 0:
        return None
    from releasectl.cedarlib.snapshot import Snapshot

    migration = found.get(version) if found is not None else None
    if migration is None:
        raise ValueError(f"no migration for version {version}")
    return Snapshot.from_migration(migration).compile()


def access_changes(old: Compiled | None, new: Compiled | None) -> tuple[AccessChanges, list[str]]:
    """The requests on which `old` and `new` decide differently (None: no policy set)."""
    merged = _merge_actions(old, new)
    notes: list[str] = []
    batches = list(_batches(old, new, merged))
    total = sum(len(b.requests) for b in batches)
    if total > MAX_REQUESTS:
        notes.append(f"{total:,} requests: only the first {MAX_REQUESTS:,} were evaluated")
    gained: dict[tuple[str, str, str], AccessChange] = {}
    lost: dict[tuple[str, str, str], AccessChange] = {}
    evaluated = 0
    for batch in batches:
        room = MAX_REQUESTS - evaluated
        if room <= 0:
            break
        requests = batch.requests[:room]
        evaluated += len(requests)
        before = _decide(old, requests, batch.entities, _action_entities(old))
        after = _decide(new, requests, batch.entities, _action_entities(new))
        for request, was, now in zip(requests, before, after, strict=True):
            if was == now:
                continue
            key = (
                uid_text(request["principal"]),
                uid_text(request["action"]),
                uid_text(request["resource"]),
            )
            change = AccessChange(
                principal=key[0], action=key[1], resource=key[2], source=batch.source
            )
            (gained if now else lost).setdefault(key, change)
    return (
        AccessChanges(
            requests=evaluated,
            gained=[gained[k] for k in sorted(gained)],
            lost=[lost[k] for k in sorted(lost)],
        ),
        notes,
    )


# --- the schema's actions ------------------------------------------------------------------


def _actions(compiled: Compiled | None) -> dict[str, Action]:
    if compiled is None or compiled.schema is None:
        return {}
    return parse_actions(str(compiled.schema.handle))


def parse_actions(schema_text: str) -> dict[str, Action]:
    """Actions of a schema in Cedar's normalised text (what `str(cedarpy.Schema)` gives): their
    groups and the principal and resource types they apply to, by uid text."""
    found: dict[str, Action] = {}
    namespace = ""
    current: list[Action] = []
    for line in schema_text.splitlines():
        space = _NAMESPACE_RE.match(line)
        if space:
            namespace = space.group(1) + "::"
            continue
        if line.strip() == "}" and not current:
            namespace = ""
            continue
        head = _ACTION_RE.match(line)
        if head:
            names = _NAME_RE.findall(head.group(1))
            rest = head.group(2)
            parents: list[dict[str, str]] = []
            group = re.match(r"\s*in\s*\[([^\]]*)\]", rest)
            if group:
                refs = (r.strip() for r in group.group(1).split(","))
                parents.extend(_action_ref(r, namespace) for r in refs if r)
            current = [
                Action({"type": f"{namespace}Action", "id": n}, list(parents)) for n in names
            ]
            for action in current:
                found[uid_text(action.uid)] = action
            if "appliesTo" not in rest:
                current = []
            continue
        listed = _LIST_RE.match(line)
        if listed and current:
            types = {
                _qualify(t.strip(), namespace) for t in listed.group(2).split(",") if t.strip()
            }
            for action in current:
                (action.principals if listed.group(1) == "principal" else action.resources).update(
                    types
                )
            continue
        if line.strip().startswith("}"):
            current = []
    return found


def _action_ref(ref: str, namespace: str) -> dict[str, str]:
    if ref.startswith('"'):
        return {"type": f"{namespace}Action", "id": _NAME_RE.findall(ref)[0]}
    return parse_uid(ref)


def _qualify(name: str, namespace: str) -> str:
    return name if "::" in name or not namespace else f"{namespace}{name}"


def _merge_actions(old: Compiled | None, new: Compiled | None) -> dict[str, Action]:
    merged: dict[str, Action] = {}
    for version in (old, new):
        for key, action in _actions(version).items():
            into = merged.setdefault(key, Action(action.uid))
            into.principals |= action.principals
            into.resources |= action.resources
    return merged


def _action_entities(compiled: Compiled | None) -> list[dict[str, Any]]:
    return [{"uid": a.uid, "attrs": {}, "parents": a.parents} for a in _actions(compiled).values()]


# --- requests -------------------------------------------------------------------------------


@dataclass
class Batch:
    source: str
    entities: list[dict[str, Any]]
    requests: list[dict[str, Any]]


def _suites(compiled: Compiled | None) -> dict[str, Suite]:
    if compiled is None:
        return {}
    return {_file_key(s.display): s for s in compiled.suites}


def _file_key(display: str) -> str:
    _, sep, tail = display.rpartition("/tests/")
    return f"tests/{tail}" if sep else display


def _batches(
    old: Compiled | None, new: Compiled | None, actions: dict[str, Action]
) -> Iterable[Batch]:
    old_suites, new_suites = _suites(old), _suites(new)
    for name in sorted(set(old_suites) | set(new_suites)):
        suites = [s for s in (old_suites.get(name), new_suites.get(name)) if s is not None]
        entities = _merged_entities([entity_json(e) for s in suites for e in s.spec.entities])
        context = {**suites[0].spec.context, **suites[-1].spec.context}
        source = suites[-1].display
        requests: list[dict[str, Any]] = []
        seen: set[tuple[str, str, str]] = set()
        for action in actions.values():
            principals = [e["uid"] for e in entities if e["uid"]["type"] in action.principals]
            resources = [e["uid"] for e in entities if e["uid"]["type"] in action.resources]
            for principal in principals:
                for resource in resources:
                    seen.add((uid_text(principal), uid_text(action.uid), uid_text(resource)))
                    requests.append(
                        {
                            "principal": principal,
                            "action": action.uid,
                            "resource": resource,
                            "context": context,
                        }
                    )
        alone: list[Batch] = []
        # each test with its own context (and entities), unless the cross product had it
        for suite in suites:
            for test in suite.spec.tests:
                request = {
                    "principal": parse_uid(test.principal),
                    "action": parse_uid(test.action),
                    "resource": parse_uid(test.resource),
                    "context": {**suite.spec.context, **test.context},
                }
                key = (
                    uid_text(request["principal"]),
                    uid_text(request["action"]),
                    uid_text(request["resource"]),
                )
                if test.entities:
                    extra = [entity_json(e) for e in test.entities]
                    entities_of_test = _merged_entities([*entities, *extra])
                    alone.append(
                        Batch(f"{suite.display} ({test.name})", entities_of_test, [request])
                    )
                elif test.context or key not in seen:
                    seen.add(key)
                    requests.append(request)
        yield Batch(source, entities, requests)
        yield from alone


def _merged_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_uid: dict[str, dict[str, Any]] = {}
    for entity in entities:
        by_uid[uid_text(entity["uid"])] = entity
    return [e for e in by_uid.values() if e["uid"]["type"].rpartition("::")[2] != "Action"]


def _decide(
    compiled: Compiled | None,
    requests: list[dict[str, Any]],
    entities: list[dict[str, Any]],
    action_entities: list[dict[str, Any]],
) -> list[bool]:
    """True where the set allows the request."""
    if compiled is None or not requests:
        return [False] * len(requests)
    import cedarpy

    answers = cedarpy.is_authorized_batch(
        requests, compiled.policies.handle, [*entities, *action_entities]
    )
    return [a.decision.value.lower() == "allow" for a in answers]
