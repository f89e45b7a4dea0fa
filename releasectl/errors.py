"""The error hierarchy. The core raises these; the CLI maps them to exit codes once.

Every error carries a message meant for a person. Where an error is about a place in a file,
`Location` says which file, line and field, and `str(error)` leads with it, the way compilers do:
``releases/1.1.0.yaml:7: components.auth-service.version: '1.3' is not a semantic version``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    CHANGES = 2
    STALE = 3
    LOCKED = 4
    DENIED = 5
    USAGE = 64
    INTERRUPTED = 130  # SIGINT
    TERMINATED = 143  # SIGTERM


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a workspace file: path relative to the workspace, 1-based line, dotted field."""

    path: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        text = self.path
        if self.line is not None:
            text += f":{self.line}"
        if self.field:
            text += f": {self.field}"
        return text


EXCERPT_CHARS = 40


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """A value from a file as a message may quote it: its repr, cut to `limit` characters
    (a message never carries more than a short excerpt of a file)."""
    text = repr(value[: limit + 1] if isinstance(value, str | bytes) else value)
    if len(text) <= limit + 2:
        return text
    return f"{text[:limit]}... ({_size(value)})"


MESSAGE_LINE_CHARS = 500
_LONG = EXCERPT_CHARS + 20
_LONG_QUOTE = re.compile(f"'([^'\\n]{{{_LONG},}})'|\"([^\"\\n]{{{_LONG},}})\"")


def shorten_quotes(text: str) -> str:
    """`text` with every long quoted value cut to an excerpt: a message names a value from a
    file by its first characters, never by all of it."""
    if len(text) < EXCERPT_CHARS * 2:
        return text

    def cut(match: re.Match[str]) -> str:
        quote = "'" if match.group(1) is not None else '"'
        value = match.group(1) if match.group(1) is not None else match.group(2)
        return f"{quote}{value[:EXCERPT_CHARS]}...{quote} ({len(value):,} characters)"

    return _LONG_QUOTE.sub(cut, text)


def clip(line: str, limit: int = MESSAGE_LINE_CHARS) -> str:
    """One line of a message, cut to `limit` characters: whatever an error quotes, the CLI
    never prints more than this of it on a line."""
    if len(line) <= limit:
        return line
    return f"{line[:limit]}... ({len(line) - limit:,} more characters)"


def _size(value: object) -> str:
    if isinstance(value, str | bytes):
        return f"{len(value):,} characters" if isinstance(value, str) else f"{len(value):,} bytes"
    return type(value).__name__


class ReleasectlError(Exception):
    """Base of every error the CLI turns into a message and an exit code."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location is None:
            return self.message
        return f"{self.location}: {self.message}"


class InputError(ReleasectlError):
    """A workspace file, manifest, migration or argument is invalid."""


class MultipleErrors(InputError):
    """Several independent input problems, reported together (as `validate` does)."""

    def __init__(self, errors: list[ReleasectlError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))
        self.exit_code = max((e.exit_code for e in errors), default=ExitCode.ERROR)

    def __str__(self) -> str:
        return self.message


def flatten(error: ReleasectlError) -> list[ReleasectlError]:
    """The single errors inside `error` (itself, unless it bundles several)."""
    return list(error.errors) if isinstance(error, MultipleErrors) else [error]


def bundle(errors: Sequence[ReleasectlError]) -> ReleasectlError:
    """One error for several: the error itself when there is one."""
    return errors[0] if len(errors) == 1 else MultipleErrors(list(errors))


class UsageError(ReleasectlError):
    exit_code = ExitCode.USAGE


class PlanError(InputError):
    """The planner cannot produce a plan: cycle, unknown component, missing migration, ..."""


class ConstraintError(PlanError):
    """A `requires` constraint, `upgrades_from` or the breaking-change rule is violated."""


class TargetError(ReleasectlError):
    """A target (Redis, SQL, Kubernetes, ...) failed or is unreachable."""


class MigrationFailed(TargetError):
    """A step failed and was rolled back."""


class StaleError(ReleasectlError):
    """The plan is stale, or an applied migration drifted since it was applied."""

    exit_code = ExitCode.STALE


class DriftError(StaleError):
    pass


class DirtyError(StaleError):
    """An interrupted step awaits `releasectl recover`."""


class LockHeldError(ReleasectlError):
    exit_code = ExitCode.LOCKED


class DeniedError(ReleasectlError):
    exit_code = ExitCode.DENIED


class Aborted(ReleasectlError):
    """The user declined a confirmation."""
