"""Cedar policy sets and schemas, loaded from files with every error located.

A set is made of several files, concatenated in a stable order. Cedar numbers the policies of
the concatenation ``policy0``, ``policy1``, ...; `PolicySet.info` maps such an id back to the
file, the line and the ``@id`` annotation, so that a validation error or a decision's reasons
name something a person can find.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from releasectl.cedarlib import source
from releasectl.errors import InputError, Location, ReleasectlError

if TYPE_CHECKING:
    import cedarpy


@dataclass(frozen=True, slots=True)
class SourceFile:
    display: str  # path shown in messages (relative to the workspace)
    text: str


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    cedar_id: str  # "policy3": Cedar's id in the concatenated set
    file: str
    line: int | None
    position: int  # 1-based position within its file
    annotation: str | None  # the @id("...") annotation
    effect: str  # permit | forbid
    start: int = 0  # offsets of the policy inside its file
    end: int = 0

    @property
    def label(self) -> str:
        if self.annotation:
            return f'policy "{self.annotation}"'
        return f"policy #{self.position} of {self.file.rsplit('/', 1)[-1]}"

    @property
    def name(self) -> str:
        """The @id annotation, or the policy's position when it has none."""
        return self.annotation or f"{self.file.rsplit('/', 1)[-1]}#{self.position}"

    def location(self, line: int | None = None) -> Location:
        return Location(self.file, line or self.line, self.label)

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


def _cedar_error(call: Any, *args: Any) -> str | None:
    try:
        call(*args)
    except ValueError as exc:
        return str(exc)
    return None


@dataclass
class PolicySet:
    """A parsed policy set: the text, Cedar's handle and where each policy came from."""

    text: str
    handle: cedarpy.PolicySet
    policies: list[PolicyInfo]
    files: list[SourceFile] = field(default_factory=list)

    def info(self, cedar_id: str) -> PolicyInfo | None:
        for policy in self.policies:
            if policy.cedar_id == cedar_id:
                return policy
        return None

    def in_order(self, cedar_ids: list[str]) -> list[str]:
        """Cedar lists a decision's reasons in no particular order; use the set's order."""
        position = {p.cedar_id: i for i, p in enumerate(self.policies)}
        return sorted(cedar_ids, key=lambda c: (position.get(c, len(position)), c))

    def describe(self, cedar_id: str) -> str:
        info = self.info(cedar_id)
        if info is None:
            return cedar_id
        return f"{info.effect} {info.label} ({info.where()})"

    def __len__(self) -> int:
        return len(self.policies)


def parse_file(src: SourceFile) -> list[dict[str, Any]]:
    """Parse one policy file; return its policies (EST dicts, in order) or raise located."""
    import cedarpy

    try:
        est = json.loads(cedarpy.policies_to_json_str(src.text))
    except ValueError as exc:
        message = str(exc)
        found = source.locate_parse_error(
            src.text,
            message,
            lambda t: _cedar_error(cedarpy.PolicySet.from_str, t),
            is_syntax=lambda _m: True,
        )
        text, line = found.message, found.line
        before = source.missing_semicolon(src.text, found, ("@", "permit", "forbid"))
        if before is not None:
            text = f"expected `;` at the end of the policy (the next one starts on line {line})"
            line = before
        elif source.EOF_MESSAGE in text:
            text += " (a policy ends with `;`)"
        raise InputError(f"syntax error: {text}", location=Location(src.display, line)) from None
    by_id: dict[str, dict[str, Any]] = {**est.get("templates", {}), **est.get("staticPolicies", {})}
    return [by_id[k] for k in sorted(by_id, key=lambda k: int(k.removeprefix("policy") or 0))]


def load_policies(files: Sequence[SourceFile], *, joined: str | None = None) -> PolicySet:
    """Parse every file (all syntax errors reported together) and build the set.

    `joined` is the text Cedar evaluates, when the caller stores a rendering of the files
    (with headers); it must hold the same policies in the same order.
    """
    import cedarpy

    errors: list[ReleasectlError] = []
    infos: list[PolicyInfo] = []
    for src in files:
        try:
            parsed = parse_file(src)
        except InputError as exc:
            errors.append(exc)
            continue
        stmts, _ = source.statements(src.text)
        lines = source.Lines(src.text)
        exact = len(stmts) == len(parsed)  # else: no lines rather than wrong ones
        for pos, policy in enumerate(parsed, start=1):
            stmt = stmts[pos - 1] if exact else None
            annotation = (policy.get("annotations") or {}).get("id")
            infos.append(
                PolicyInfo(
                    cedar_id=f"policy{len(infos)}",
                    file=src.display,
                    line=lines.line_of(stmt.start) if stmt else None,
                    position=pos,
                    annotation=annotation,
                    effect=str(policy.get("effect", "permit")),
                    start=stmt.start if stmt else 0,
                    end=stmt.end if stmt else 0,
                )
            )
    if errors:
        raise_all(errors)
    errors.extend(_duplicate_ids(infos))
    if errors:
        raise_all(errors)
    text = joined if joined is not None else join(files)
    try:
        handle = cedarpy.PolicySet.from_str(text)
    except ValueError as exc:  # pragma: no cover - every file parsed on its own
        raise InputError(f"policy set does not parse: {exc}") from None
    return PolicySet(text, handle, infos, list(files))


def join(files: Sequence[SourceFile]) -> str:
    parts = []
    for src in files:
        body = src.text if src.text.endswith("\n") or not src.text else src.text + "\n"
        parts.append(body)
    return "".join(parts)


def _duplicate_ids(infos: list[PolicyInfo]) -> list[ReleasectlError]:
    seen: dict[str, PolicyInfo] = {}
    errors: list[ReleasectlError] = []
    for info in infos:
        if not info.annotation:
            continue
        first = seen.get(info.annotation)
        if first is None:
            seen[info.annotation] = info
            continue
        errors.append(
            InputError(
                f'duplicate @id("{info.annotation}"): also at {first.where()} '
                "(a decision names its policies by @id, so each must be unique)",
                location=info.location(),
            )
        )
    return errors


def raise_all(errors: list[ReleasectlError]) -> None:
    from releasectl.errors import MultipleErrors

    if len(errors) == 1:
        raise errors[0]
    raise MultipleErrors(errors)


# --- schemas -----------------------------------------------------------------------------


@dataclass
class Schema:
    source: SourceFile
    handle: cedarpy.Schema
    is_json: bool

    def cedar_text(self) -> str:
        """The schema in Cedar's human format (what a store holds)."""
        return self.source.text if not self.is_json else str(self.handle)


def load_schema(src: SourceFile) -> Schema:
    import cedarpy

    is_json = src.display.endswith(".json")
    try:
        handle = (
            cedarpy.Schema.from_json_str(src.text) if is_json else cedarpy.Schema.from_str(src.text)
        )
    except ValueError as exc:
        message = str(exc)
        if is_json:
            line = source.json_error_line(message) or source.names_line(src.text, message)
            raise InputError(
                f"invalid schema: {message}", location=Location(src.display, line)
            ) from None
        if message.startswith("error parsing schema"):
            found = source.locate_parse_error(
                src.text,
                message,
                lambda t: _cedar_error(cedarpy.Schema.from_str, t),
                is_syntax=lambda m: m.startswith("error parsing schema"),
                brace_ends=True,
            )
            line = found.line
            message = found.message.removeprefix("error parsing schema: ")
            bare = source.Located(found.line, message, found.statement_line)
            starters = ("@", "entity", "action", "type", "namespace")
            before = source.missing_semicolon(src.text, bare, starters)
            if before is not None:
                message = (
                    f"expected `;` at the end of the declaration (the next one starts on line "
                    f"{line})"
                )
                line = before
        else:
            line = source.names_line(src.text, message)
        raise InputError(
            f"invalid schema: {message}", location=Location(src.display, line)
        ) from None
    return Schema(src, handle, is_json)


def validate(policies: PolicySet, schema: Schema) -> list[ReleasectlError]:
    """Every policy against the schema (Cedar's strict validation), errors located."""
    import cedarpy

    result = cedarpy.validate_policies(policies.text, schema.handle)
    if result.validation_passed:
        return []
    errors: list[ReleasectlError] = []
    for err in result.errors:
        message = _strip_policy_prefix(err.error)
        info = policies.info(err.policy_id)
        if info is None:
            errors.append(InputError(f"does not validate against the schema: {message}"))
            continue
        errors.append(
            InputError(
                f"does not validate against {schema.source.display}: {message}",
                location=info.location(_line_in_policy(policies, info, message)),
            )
        )
    return errors


def _strip_policy_prefix(message: str) -> str:
    if message.startswith("for policy `"):
        _, _, rest = message.partition("`, ")
        return rest or message
    return message


def _line_in_policy(policies: PolicySet, info: PolicyInfo, message: str) -> int | None:
    if info.line is None:
        return None
    src = next((f for f in policies.files if f.display == info.file), None)
    if src is None:
        return info.line
    lines = source.Lines(src.text)
    last = lines.line_of(max(info.start, info.end - 1))
    return source.names_line(src.text, message, info.line, last) or info.line
