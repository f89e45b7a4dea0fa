"""Where things are in Cedar text.

cedarpy reports parse errors without a position (``unexpected token `(` ``) and validation
errors by positional policy id (``policy3``). This module gives them back a line: it splits
policy text into statements with a small lexer (strings and ``//`` comments aware), and finds
the line of a parse error by parsing prefixes that end on statement boundaries, then lines
inside the failing statement. Parsing a prefix is cheap, and a binary search needs O(log n)
of them.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass

EOF_MESSAGE = "unexpected end of input"
_TOKEN_ERRORS = ("unexpected token", "invalid token", "unrecognized token", "extra token")
_BACKTICKED = re.compile(r"`([^`]+)`")
_JSON_POSITION = re.compile(r"at line (\d+) column (\d+)")


@dataclass(frozen=True, slots=True)
class Statement:
    start: int  # offset of the first character (an annotation, `permit`, `entity`, ...)
    end: int  # offset just past the `;` (or the `}` closing a schema namespace)
    depth: int  # `{` still open at `end` (a schema namespace around the statement)


class Lines:
    """Offsets to 1-based line numbers and back."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    def end_of_line(self, line: int) -> int:
        """Offset just past line `line` (its newline included)."""
        return self.starts[line] if line < len(self.starts) else len(self.text)

    def count(self) -> int:
        return len(self.starts)


def statements(text: str, *, brace_ends: bool = False) -> tuple[list[Statement], int | None]:
    """Split `text` at every `;` outside strings and comments.

    Returns the complete statements and the start offset of an unterminated tail (None when
    the text ends cleanly). With `brace_ends` (schemas), a `namespace NAME {` opens a block
    whose declarations are statements of their own, and its closing `}` ends one too.
    """
    out: list[Statement] = []
    n = len(text)
    i = 0
    braces: list[bool] = []  # open `{`, True for a namespace block
    start: int | None = None
    while i < n:
        ch = text[i]
        if ch == "/" and text.startswith("//", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline + 1
            continue
        if ch.isspace():
            i += 1
            continue
        if start is None:
            start = i
        if ch == '"':
            i = _skip_string(text, i)
            continue
        if ch == "{":
            namespace = brace_ends and text[start:i].lstrip().startswith("namespace")
            braces.append(namespace)
            if namespace:
                start = None
        elif ch == "}":
            if braces and braces.pop():
                out.append(Statement(start, i + 1, sum(braces)))
                start = None
        elif ch == ";":
            out.append(Statement(start, i + 1, sum(braces)))
            start = None
        i += 1
    return out, start


def _skip_string(text: str, i: int) -> int:
    """Offset just past the string literal starting at `i` (or the end of an unclosed one)."""
    n = len(text)
    i += 1
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    return n


@dataclass(frozen=True, slots=True)
class Located:
    line: int | None
    message: str
    statement_line: int | None = None  # first line of the statement the error is in


def locate_parse_error(
    text: str,
    message: str,
    error_of: Callable[[str], str | None],
    *,
    is_syntax: Callable[[str], bool],
    brace_ends: bool = False,
) -> Located:
    """Find the line of the parse error `message` that `error_of(text)` reported.

    `error_of(prefix)` parses a prefix and returns its error message (None when it parses);
    `is_syntax(message)` tells a syntax error from one that only a complete document can have
    (an unresolved type). A statement's prefix ends on its `;`, with the open namespace braces
    closed, so that an earlier error is not hidden behind "unexpected end of input".
    """
    lines = Lines(text)
    found, tail = statements(text, brace_ends=brace_ends)

    def bad(index: int) -> str | None:
        st = found[index]
        err = error_of(text[: st.end] + "}" * st.depth)
        return err if err is not None and is_syntax(err) and EOF_MESSAGE not in err else None

    lo, hi = 0, len(found)  # first statement whose complete prefix fails, or len(found)
    while lo < hi:
        mid = (lo + hi) // 2
        if bad(mid) is not None:
            hi = mid
        else:
            lo = mid + 1
    if lo < len(found):
        stmt_start, stmt_end = found[lo].start, found[lo].end
        message = bad(lo) or message
    elif tail is not None:
        stmt_start, stmt_end = tail, len(text)
    else:
        return Located(names_line(text, message), message)
    first = lines.line_of(stmt_start)
    last = lines.line_of(max(stmt_start, stmt_end - 1))
    if EOF_MESSAGE in message and lo >= len(found):
        return Located(_last_code_line(text, lines, first, last), message, first)
    if any(message.startswith(prefix) or prefix in message for prefix in _TOKEN_ERRORS):
        return Located(_first_failing_line(text, lines, first, last, error_of), message, first)
    line = names_line(text, message, first, last) or first
    return Located(line, message, first)


def missing_semicolon(text: str, found: Located, starters: tuple[str, ...]) -> int | None:
    """When a statement runs into the next one (`unexpected token` on a line that starts a
    new policy or declaration), the line where the `;` is missing; else None."""
    if found.line is None or found.statement_line is None or found.statement_line >= found.line:
        return None
    if not found.message.startswith("unexpected token"):
        return None
    lines = Lines(text)
    body = text[lines.starts[found.line - 1] : lines.end_of_line(found.line)].lstrip()
    if not body.startswith(starters):
        return None
    return _last_code_line(text, lines, found.statement_line, found.line - 1)


def _first_failing_line(
    text: str, lines: Lines, first: int, last: int, error_of: Callable[[str], str | None]
) -> int:
    """Inside one statement, the first line whose prefix has a non-EOF error."""
    lo, hi = first, last
    while lo < hi:
        mid = (lo + hi) // 2
        err = error_of(text[: lines.end_of_line(mid)])
        if err is not None and EOF_MESSAGE not in err:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _last_code_line(text: str, lines: Lines, first: int, last: int) -> int:
    for line in range(last, first - 1, -1):
        body = text[lines.starts[line - 1] : lines.end_of_line(line)].strip()
        if body and not body.startswith("//"):
            return line
    return first


def message_names(message: str) -> list[str]:
    """Names an error message quotes: `backticked` parts and a trailing ``: name, name``."""
    names = [n for n in _BACKTICKED.findall(message) if not n.startswith("policy")]
    _, sep, rest = message.rpartition(": ")
    if sep and "`" not in rest and len(rest) < 200:
        names.extend(part.strip() for part in rest.split(","))
    cleaned: list[str] = []
    for name in names:
        for raw in (name, name.rsplit("::", 1)[-1]):
            piece = raw.strip()
            if piece and piece not in cleaned and re.search(r"\w", piece):
                cleaned.append(piece)
    return cleaned


def names_line(
    text: str, message: str, first: int | None = None, last: int | None = None
) -> int | None:
    """The first line in [first, last] that mentions a name quoted by `message`."""
    lines = Lines(text)
    lo = first or 1
    hi = last or lines.count()
    for name in message_names(message):
        pattern = re.compile(
            (r"(?<![\w])" if name[0].isalnum() or name[0] == "_" else "")
            + re.escape(name)
            + (r"(?![\w])" if name[-1].isalnum() or name[-1] == "_" else "")
        )
        for line in range(lo, hi + 1):
            body = text[lines.starts[line - 1] : lines.end_of_line(line)]
            code = body.split("//", 1)[0] if '"' not in body else body
            if pattern.search(code):
                return line
    return None


def json_error_line(message: str) -> int | None:
    match = _JSON_POSITION.search(message)
    return int(match.group(1)) if match else None
