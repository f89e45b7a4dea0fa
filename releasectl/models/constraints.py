"""Version constraints: ``>=2``, ``>=1.1.0,<2.0.0``, ``^1.2``, ``~1.2.3``, ``==1.0.0``, ``*``.

A constraint is a comma-separated list of clauses that must all hold. Clauses compare either
integer schema versions (migrated components) or semantic versions (services and releases).
For semantic versions a partial version is padded with zeros (``>=1.1`` means ``>=1.1.0``);
``^X.Y.Z`` admits the same leftmost non-zero part and ``~X.Y.Z`` the same minor, as in npm
and Cargo. Pre-releases order before their release, as semver says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import semver

Kind = Literal["int", "semver"]
Version = int | semver.Version

# What a JSON Schema editor checks as you type (schemas/release.schema.json): the clauses
# `parse` accepts, with versions of one to three numbers and an optional -pre/+build.
_SCHEMA_CLAUSE = (
    r"\s*(>=|<=|==|!=|>|<|\^|~|=)?\s*(\*|\d+(\.\d+){0,2}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?)\s*"
)
SCHEMA_PATTERN = rf"^{_SCHEMA_CLAUSE}(,{_SCHEMA_CLAUSE})*$"

_CLAUSE_RE = re.compile(r"^\s*(>=|<=|==|!=|>|<|\^|~|=)?\s*([0-9A-Za-z.+\-]+|\*)\s*$")
_OPS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


class ConstraintSyntaxError(ValueError):
    pass


def parse_version(text: str | int, kind: Kind, *, partial: bool = False) -> Version:
    """A version of `kind`; `partial` pads 1 and 1.2 to 1.0.0 and 1.2.0 (constraints only)."""
    if kind == "int":
        if isinstance(text, int) and not isinstance(text, bool):
            if text < 0:
                raise ConstraintSyntaxError(f"{text!r} is not a migration number (>= 0)")
            return text
        if isinstance(text, str) and text.isdigit():
            return int(text)
        raise ConstraintSyntaxError(f"{text!r} is not a migration number")
    text = str(text)
    parts = text.split("+", 1)[0].split("-", 1)[0].split(".")
    if partial and 1 <= len(parts) < 3 and all(p.isdigit() for p in parts):
        text = ".".join(parts + ["0"] * (3 - len(parts)))
    try:
        return semver.Version.parse(text)
    except ValueError:
        raise ConstraintSyntaxError(f"{text!r} is not a semantic version (X.Y.Z)") from None


@dataclass(frozen=True, slots=True)
class Clause:
    op: str
    version: Version | None  # None: '*'

    def admits(self, version: Version) -> bool:
        if self.version is None:
            return True
        if self.op in _OPS:
            return bool(_OPS[self.op](version, self.version))
        assert isinstance(self.version, semver.Version)
        assert isinstance(version, semver.Version)
        low = self.version
        if self.op == "~":
            high = low.bump_minor()
        elif low.major:
            high = low.bump_major()
        elif low.minor:
            high = low.bump_minor()
        else:
            high = low.bump_patch()
        return bool(low <= version < high)

    def __str__(self) -> str:
        return "*" if self.version is None else f"{self.op}{self.version}"


@dataclass(frozen=True, slots=True)
class Constraint:
    text: str
    kind: Kind
    clauses: tuple[Clause, ...]

    def admits(self, version: str | int | Version) -> bool:
        if not isinstance(version, int | semver.Version):
            version = parse_version(version, self.kind)
        return all(clause.admits(version) for clause in self.clauses)

    def __str__(self) -> str:
        return self.text


def parse(text: str | int, kind: Kind) -> Constraint:
    """Parse a constraint; raise `ConstraintSyntaxError` with a message that quotes the text."""
    source = str(text).strip()
    if not source:
        raise ConstraintSyntaxError("empty constraint")
    clauses: list[Clause] = []
    for raw in source.split(","):
        match = _CLAUSE_RE.match(raw)
        if match is None:
            raise ConstraintSyntaxError(f"{raw.strip()!r} is not a version constraint clause")
        op, value = match.group(1) or "==", match.group(2)
        if op == "=":
            op = "=="
        if value == "*":
            clauses.append(Clause("*", None))
            continue
        if op in ("^", "~") and kind == "int":
            raise ConstraintSyntaxError(
                f"{op!r} applies to semantic versions, not migration numbers"
            )
        try:
            clauses.append(Clause(op, parse_version(value, kind, partial=True)))
        except ConstraintSyntaxError as exc:
            raise ConstraintSyntaxError(f"in {source!r}: {exc}") from None
    return Constraint(source, kind, tuple(clauses))


def check_syntax(text: str | int) -> str:
    """Field-level check used by the models: the clauses parse as semver or as integers."""
    source = str(text)
    try:
        parse(source, "semver")
    except ConstraintSyntaxError:
        try:
            parse(source, "int")
        except ConstraintSyntaxError as exc:
            raise ValueError(str(exc)) from None
    return source
