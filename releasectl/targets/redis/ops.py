"""Declarative Redis migrations: the operations of `up.yaml`/`down.yaml`, the checks of
`verify.yaml`, their validation (errors name file, line and field), and the backup scope they
imply.

Ops and checks are data: pydantic models (extra="forbid"), one per operation, each written as a
one-key mapping (`- set: {key: k, value: v}`). Running them lives in `redis_run.py`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from releasectl.errors import InputError, Location, ReleasectlError, bundle, flatten
from releasectl.models.base import Model
from releasectl.workspace import yamlio
from releasectl.workspace.loading import validate


def _text(value: Any) -> Any:
    # Redis stores strings; YAML reads 3600 as an int and 1.5 as a float. A boolean is almost
    # always a mistake (`yes` → true), so it must be quoted.
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a YAML boolean: quote it (Redis stores strings)")
    if isinstance(value, int | float):
        return str(value)
    return value


Text = Annotated[str, BeforeValidator(_text)]
Key = Annotated[str, Field(min_length=1)]


# --- operations ---------------------------------------------------------------------------


class SetOp(Model):
    key: Key
    value: Text
    ttl: int | None = Field(default=None, gt=0, description="Seconds until the key expires.")
    nx: bool = Field(default=False, description="Only set the key if it does not exist.")


class HsetOp(Model):
    key: Key
    fields: dict[str, Text] = Field(min_length=1)


class HdelOp(Model):
    key: Key
    fields: list[str] = Field(min_length=1)


class SaddOp(Model):
    key: Key
    members: list[Text] = Field(min_length=1)


class SremOp(SaddOp):
    pass


class ZaddOp(Model):
    key: Key
    members: dict[str, float] = Field(min_length=1)


class RpushOp(Model):
    key: Key
    values: list[Text] = Field(min_length=1)


class DelOp(Model):
    keys: list[Key] | None = Field(default=None, min_length=1)
    pattern: Key | None = None

    @model_validator(mode="after")
    def _one(self) -> DelOp:
        if (self.keys is None) == (self.pattern is None):
            raise ValueError("give either `keys` or `pattern`")
        return self


class RenameOp(Model):
    from_: Key = Field(alias="from", description="Prefix the matching keys start with.")
    to: str = Field(description="Prefix that replaces it.")
    pattern: Key | None = Field(
        default=None, description="Keys to rename (glob); default: every key starting with from."
    )
    overwrite: bool = Field(
        default=False, description="Replace an existing key of the new name (default: fail)."
    )

    @model_validator(mode="after")
    def _prefixes(self) -> RenameOp:
        if self.from_.startswith(self.to) or self.to.startswith(self.from_):
            raise ValueError(
                f"prefixes {self.from_!r} and {self.to!r} overlap: renamed keys could match "
                "again; rename in two steps through a temporary prefix"
            )
        if self.pattern is not None and not self.pattern.startswith(escape(self.from_)):
            raise ValueError(f"pattern {self.pattern!r} must start with the prefix {self.from_!r}")
        return self

    @property
    def match(self) -> str:
        return self.pattern if self.pattern is not None else escape(self.from_) + "*"

    @property
    def target_pattern(self) -> str:
        return escape(self.to) + self.match[len(escape(self.from_)) :]


class ExpireOp(Model):
    key: Key | None = None
    pattern: Key | None = None
    seconds: int = Field(gt=0)

    @model_validator(mode="after")
    def _one(self) -> ExpireOp:
        if (self.key is None) == (self.pattern is None):
            raise ValueError("give either `key` or `pattern`")
        return self


class PersistOp(Model):
    key: Key


class ConfigSetOp(Model):
    parameter: Annotated[str, Field(min_length=1)]
    value: Text


OP_MODELS: dict[str, type[Model]] = {
    "set": SetOp,
    "hset": HsetOp,
    "hdel": HdelOp,
    "sadd": SaddOp,
    "srem": SremOp,
    "zadd": ZaddOp,
    "rpush": RpushOp,
    "del": DelOp,
    "rename": RenameOp,
    "expire": ExpireOp,
    "persist": PersistOp,
    "config_set": ConfigSetOp,
}


# --- checks -------------------------------------------------------------------------------


class GetCheck(Model):
    key: Key
    equals: Text


class HgetCheck(Model):
    key: Key
    field: str
    equals: Text


class SismemberCheck(Model):
    key: Key
    member: Text


class CountCheck(Model):
    pattern: Key
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> CountCheck:
        if self.min is None and self.max is None:
            raise ValueError("give `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("`min` is greater than `max`")
        return self


class ConfigCheck(Model):
    parameter: Annotated[str, Field(min_length=1)]
    equals: Text


# exists/absent take a bare key: `- exists: "config:auth"`
CHECK_MODELS: dict[str, type[Model] | None] = {
    "exists": None,
    "absent": None,
    "get": GetCheck,
    "hget": HgetCheck,
    "sismember": SismemberCheck,
    "count": CountCheck,
    "config": ConfigCheck,
}


@dataclass(frozen=True, slots=True)
class Item:
    """One op or check: its name, its validated arguments and where it was written."""

    name: str
    args: Any  # a model, or the key of exists/absent
    where: Location


@dataclass(frozen=True, slots=True)
class Part:
    """A parsed up.yaml, down.yaml or verify.yaml."""

    display: str
    items: tuple[Item, ...]


class _OpsFile(Model):
    ops: list[Any] = Field(description="Operations, run in order.")


class _ChecksFile(Model):
    checks: list[Any] = Field(description="Checks that must all pass.")


def load_ops(path: Path, display: str) -> Part:
    return _load(path, display, "ops", OP_MODELS)


def load_checks(path: Path, display: str) -> Part:
    return _load(path, display, "checks", CHECK_MODELS)


def _load(path: Path, display: str, section: str, models: Mapping[str, type[Model] | None]) -> Part:
    doc = yamlio.load(path, display)
    if not isinstance(doc.data, dict):
        raise InputError(
            f"expected a mapping with `{section}:` at the top of the file",
            location=Location(display, 1),
        )
    validate(_OpsFile if section == "ops" else _ChecksFile, doc)
    errors: list[ReleasectlError] = []
    items: list[Item] = []
    for index, raw in enumerate(doc.data[section]):
        where: yamlio.FieldPath = (section, index)
        if not isinstance(raw, dict) or len(raw) != 1:
            errors.append(
                InputError(
                    f"each entry is a one-key mapping, one of: {', '.join(models)}",
                    location=doc.location(where),
                )
            )
            continue
        ((name, body),) = raw.items()
        if name not in models:
            errors.append(
                InputError(
                    f"unknown {'operation' if section == 'ops' else 'check'} {name!r} "
                    f"(known: {', '.join(models)})",
                    location=doc.location((*where, name)),
                )
            )
            continue
        model = models[name]
        try:
            if model is None:
                if not isinstance(body, str | int) or isinstance(body, bool) or body == "":
                    raise InputError("expected a key", location=doc.location((*where, name)))
                args: Any = str(body)
            else:
                if not isinstance(body, dict):
                    raise InputError(
                        f"expected a mapping of {name}'s fields",
                        location=doc.location((*where, name)),
                    )
                args = validate(model, doc, prefix=(*where, name))
        except ReleasectlError as exc:
            errors.extend(flatten(exc))
            continue
        items.append(Item(name, args, doc.location((*where, name))))
    if errors:
        raise bundle(errors)
    return Part(display, tuple(items))


# --- glob patterns ------------------------------------------------------------------------

_GLOB_CHARS = re.compile(r"([*?\[\]\\])")


def escape(key: str) -> str:
    """A glob pattern matching exactly `key`."""
    return _GLOB_CHARS.sub(r"\\\1", key)


def literal(pattern: str) -> str | None:
    """The key a pattern matches if it has no wildcard, else None."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(next(chars, "\\"))
        elif ch in "*?[":
            return None
        else:
            out.append(ch)
    return "".join(out)


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[bytes]:
    """Redis's glob (`*`, `?`, `[abc]`, `[^a-z]`, backslash escapes) as a regex over bytes."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("^")
                if negate:
                    body = body[1:]
                body = body.replace("\\", "\\\\").replace("[", "\\[")
                out.append(f"[{'^' if negate else ''}{body}]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile(("".join(out) + r"\Z").encode(), re.DOTALL)


def matches(pattern: str, key: str | bytes) -> bool:
    data = key.encode() if isinstance(key, str) else key
    return glob_regex(pattern).match(data) is not None


# --- what a part touches ------------------------------------------------------------------


def touched(part: Part) -> tuple[list[str], list[str]]:
    """The key patterns (exact keys escaped) and CONFIG parameters that `part` may change."""
    patterns: list[str] = []
    params: list[str] = []
    for item in part.items:
        args = item.args
        if isinstance(args, DelOp):
            patterns.extend([escape(k) for k in args.keys or []])
            if args.pattern is not None:
                patterns.append(args.pattern)
        elif isinstance(args, RenameOp):
            patterns.extend([args.match, args.target_pattern])
        elif isinstance(args, ExpireOp):
            patterns.append(args.pattern if args.pattern is not None else escape(args.key or ""))
        elif isinstance(args, ConfigSetOp):
            params.append(args.parameter)
        else:
            patterns.append(escape(args.key))
    return patterns, params


def unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def expected_gone(part: Part) -> list[tuple[str, Item]]:
    """Patterns that must match nothing after `part` ran: what it deletes or renames away and
    does not write again later (the implicit verification of a part)."""
    gone: list[tuple[str, Item]] = []
    for index, item in enumerate(part.items):
        args = item.args
        if isinstance(args, DelOp):
            candidates = [escape(k) for k in args.keys or []]
            if args.pattern is not None:
                candidates.append(args.pattern)
        elif isinstance(args, RenameOp):
            candidates = [args.match]
        else:
            continue
        later = part.items[index + 1 :]
        for pattern in candidates:
            if not any(_may_write(pattern, other) for other in later):
                gone.append((pattern, item))
    return gone


def _may_write(pattern: str, item: Item) -> bool:
    args = item.args
    if isinstance(args, RenameOp):
        return overlap(pattern, args.target_pattern)
    if isinstance(args, DelOp | ExpireOp | PersistOp | ConfigSetOp | HdelOp | SremOp):
        return False
    return matches(pattern, args.key)


def _prefix(pattern: str) -> str:
    """The literal text before a pattern's first wildcard."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(next(chars, "\\"))
        elif ch in "*?[":
            break
        else:
            out.append(ch)
    return "".join(out)


def overlap(a: str, b: str) -> bool:
    """Whether two patterns may match a common key (conservative: True when unsure)."""
    key_a, key_b = literal(a), literal(b)
    if key_a is not None:
        return matches(b, key_a)
    if key_b is not None:
        return matches(a, key_b)
    pa, pb = _prefix(a), _prefix(b)
    return pa.startswith(pb) or pb.startswith(pa)
