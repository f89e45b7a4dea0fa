"""Reading a migration's SQL: split it into statements, find its header, classify statements.

The database drivers run one statement per call (sqlite3 refuses more; psycopg would send a
multi-statement string through the simple protocol, where a failure cannot name the statement
and `statement_timeout` cannot follow the step's deadline). So the script is split here, with
a lexer that knows where semicolons do not end anything:

- strings `'..'` (and PostgreSQL's `E'..'` with backslash escapes), quoted identifiers `".."`
  (SQLite also `` `..` `` and `[..]`), comments `--` and `/* */` (nested in PostgreSQL),
  PostgreSQL dollar quotes `$tag$ .. $tag$` (function bodies);
- SQLite: a semicolon ends a statement only where `sqlite3.complete_statement` agrees, which is
  SQLite's own rule for `CREATE TRIGGER .. BEGIN ..; ..; END`;
- PostgreSQL: psql's rule: not inside parentheses, nor inside `BEGIN .. END` (and `CASE .. END`
  within it) of a `CREATE [OR REPLACE] FUNCTION|PROCEDURE` (SQL-standard `BEGIN ATOMIC` bodies).

A migration may start with header comments `-- releasectl: no-transaction` (see docs/sql.md).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from releasectl.clients.sql import Dialect

HEADER_RE = re.compile(r"^--\s*releasectl:\s*(.*?)\s*$")
HEADER_OPTIONS = frozenset({"no-transaction"})
KEEP_WORDS = 8  # leading words kept per statement, enough to classify it

_WORD = r"[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*"
_COMMON = [
    ("ws", r"\s+"),
    ("line_comment", r"--[^\n]*"),
    ("block_comment", r"/\*"),
    ("string", r"'[^']*(?:''[^']*)*'"),
    ("ident", r'"[^"]*(?:""[^"]*)*"'),
    ("word", _WORD),
    ("number", r"\d[\w.]*"),
    ("semi", r";"),
    ("open", r"\("),
    ("close", r"\)"),
]
_SQLITE_ONLY = [("backtick", r"`[^`]*(?:``[^`]*)*`"), ("bracket", r"\[[^\]]*\]")]
_PG_ONLY = [
    ("estring", r"[eE]'[^'\\]*(?:(?:\\.|'')[^'\\]*)*'"),
    ("dollar", r"\$(?:" + _WORD.replace("$", "") + r")?\$"),
]


def _lexer(extra: list[tuple[str, str]], opening: str) -> re.Pattern[str]:
    tail = [("unterminated", f"[{opening}]"), ("other", r".")]
    parts = _COMMON[:3] + extra + _COMMON[3:] + tail
    return re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in parts), re.DOTALL)


_LEXERS: dict[Dialect, re.Pattern[str]] = {
    "sqlite": _lexer(_SQLITE_ONLY, "'\"`\\["),
    "postgresql": _lexer(_PG_ONLY, "'\""),
}
# Once a statement's leading words are kept (and it is no PostgreSQL routine), words, numbers,
# spaces and punctuation change nothing until the next character that may start something
# else: a quote, a comment, a dollar quote, a bracket, a parenthesis or a semicolon. One match
# of this skips such a run. Words and numbers are possessive and a word right before a quote
# is left to the lexer, so every token the lexer then sees starts where it started before
# (PostgreSQL's E'..' included). tests/test_sql_script.py compares both ways.
_QUIET_RUN = re.compile(
    r"(?:\s++|" + _WORD.replace("*", "*+") + r"(?!')|\d[\w.]*+"
    r"|[^\s;()'\"`\[\]$\-/A-Za-z_0-9\u0080-\uffff]|-(?!-)|/(?!\*))+"
)


class SqlSyntaxError(Exception):
    """The script cannot be split: an unterminated string, comment or block."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class Statement:
    number: int  # 1-based position in the script
    line: int  # 1-based line of its first token
    text: str  # the statement, with its terminating semicolon when it had one
    words: tuple[str, ...]  # its first words, upper-case (keywords and names)


@dataclass(frozen=True, slots=True)
class Script:
    statements: tuple[Statement, ...]
    options: frozenset[str]  # header options: {"no-transaction"}

    @property
    def transactional(self) -> bool:
        return "no-transaction" not in self.options


def parse(text: str, dialect: Dialect) -> Script:
    """Split `text` into statements; raises SqlSyntaxError naming the line of the problem."""
    return Script(tuple(_split(text, dialect)), _header(text))


def _header(text: str) -> frozenset[str]:
    options: set[str] = set()
    for raw in text.lstrip("\ufeff").splitlines():
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("--"):
            break
        match = HEADER_RE.match(line)
        if match is None:
            continue
        for option in re.split(r"[,\s]+", match.group(1)):
            if option:
                options.add(option)
    return frozenset(options)


def header_problems(text: str) -> list[tuple[int, str]]:
    """Unknown header options, as (line, message)."""
    found: list[tuple[int, str]] = []
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if not line.startswith("--"):
            break
        match = HEADER_RE.match(line)
        if match is None:
            continue
        for option in re.split(r"[,\s]+", match.group(1)):
            if option and option not in HEADER_OPTIONS:
                known = ", ".join(sorted(HEADER_OPTIONS))
                found.append((number, f"unknown header option {option!r} (known: {known})"))
    return found


class _Builder:
    """Accumulates one statement's facts while the lexer walks through it."""

    def __init__(self, text: str, dialect: Dialect) -> None:
        self.text = text
        self.dialect = dialect
        self.out: list[Statement] = []
        self._counted = (0, 1)  # (offset, line there): lines are counted once, forward only
        self.reset(0)

    def reset(self, start: int) -> None:
        self.start = start
        self.first: int | None = None  # offset of the first token
        self.words: list[str] = []
        self.word_count = 0
        self.depth = 0  # parentheses
        self.begin_depth = 0  # BEGIN .. END of a PostgreSQL routine body
        self.routine = False
        self.quiet = False  # the leading words are kept: see _QUIET_RUN

    def token(self, pos: int) -> None:
        if self.first is None:
            self.first = pos

    def word(self, pos: int, value: str) -> None:
        self.token(pos)
        upper = value.upper()
        if len(self.words) < KEEP_WORDS:
            self.words.append(upper)
        self.word_count += 1
        if self.dialect != "postgresql":
            self.quiet = len(self.words) >= KEEP_WORDS
            return
        if self.word_count <= 4:
            w = self.words
            self.routine = w[0] == "CREATE" and (
                (len(w) > 1 and w[1] in ("FUNCTION", "PROCEDURE"))
                or (
                    len(w) > 3 and w[1:3] == ["OR", "REPLACE"] and w[3] in ("FUNCTION", "PROCEDURE")
                )
            )
        if len(self.words) >= KEEP_WORDS and not self.routine and self.word_count > 4:
            self.quiet = True
        if self.routine and self.depth == 0:
            if upper == "BEGIN" or (upper == "CASE" and self.begin_depth > 0):
                self.begin_depth += 1
            elif upper == "END" and self.begin_depth > 0:
                self.begin_depth -= 1

    def ends_here(self, end: int) -> bool:
        """Whether the semicolon ending at `end` ends the statement."""
        if self.dialect == "postgresql":
            return self.depth == 0 and self.begin_depth == 0
        return sqlite3.complete_statement(self.text[self.start : end])

    def line_at(self, pos: int) -> int:
        offset, line = self._counted
        line += self.text.count("\n", offset, pos)
        self._counted = (pos, line)
        return line

    def emit(self, end: int) -> None:
        if self.first is not None:
            self.out.append(
                Statement(
                    number=len(self.out) + 1,
                    line=self.line_at(self.first),
                    text=self.text[self.first : end].strip(),
                    words=tuple(self.words),
                )
            )
        self.reset(end)


def _split(text: str, dialect: Dialect, *, skip: bool = True) -> list[Statement]:
    lexer = _LEXERS[dialect]
    b = _Builder(text, dialect)
    pos = 0
    size = len(text)
    while pos < size:
        if skip and b.quiet:
            run = _QUIET_RUN.match(text, pos)
            if run is not None:
                pos = run.end()
                if pos >= size:
                    break
        match = lexer.match(text, pos)
        assert match is not None  # the `other` alternative matches any character
        kind = match.lastgroup
        end = match.end()
        if kind == "block_comment":
            end = _block_comment_end(text, pos, nested=dialect == "postgresql")
        elif kind == "dollar":
            b.token(pos)
            tag = match.group(0)
            close = text.find(tag, end)
            if close < 0:
                raise SqlSyntaxError(f"unterminated dollar-quoted string {tag}", _line(text, pos))
            end = close + len(tag)
        elif kind == "unterminated":
            what = {"'": "string", '"': "quoted identifier", "`": "quoted identifier"}
            name = what.get(match.group(0), "bracketed identifier")
            raise SqlSyntaxError(f"unterminated {name}", _line(text, pos))
        elif kind == "word":
            b.word(pos, match.group(0))
        elif kind == "open":
            b.token(pos)
            b.depth += 1
        elif kind == "close":
            b.token(pos)
            if b.depth == 0:
                raise SqlSyntaxError("')' without a matching '('", _line(text, pos))
            b.depth -= 1
        elif kind == "semi":
            if b.first is None:
                b.reset(end)  # an empty statement (`;;`) is nothing to run
            elif b.ends_here(end):
                if b.depth:
                    raise SqlSyntaxError("unclosed '(' in this statement", _line(text, b.first))
                b.emit(end)
        elif kind not in ("ws", "line_comment"):
            b.token(pos)
        pos = end
    if b.first is not None:
        if b.depth:
            raise SqlSyntaxError("unclosed '(' (statement never ends)", _line(text, b.first))
        if dialect == "postgresql" and b.begin_depth:
            raise SqlSyntaxError("BEGIN without END in a routine body", _line(text, b.first))
        if dialect == "sqlite" and not sqlite3.complete_statement(text[b.start :] + "\n;"):
            raise SqlSyntaxError(
                "statement never ends (a CREATE TRIGGER .. BEGIN without END?)",
                _line(text, b.first),
            )
        b.emit(size)
    return b.out


def _block_comment_end(text: str, pos: int, *, nested: bool) -> int:
    depth = 1
    i = pos + 2
    while depth:
        close = text.find("*/", i)
        if close < 0:
            raise SqlSyntaxError("unterminated /* comment", _line(text, pos))
        opening = text.find("/*", i, close) if nested else -1
        if opening >= 0:
            depth += 1
            i = opening + 2
        else:
            depth -= 1
            i = close + 2
    return i


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


# --- classification ------------------------------------------------------------------------


def transaction_control(statement: Statement) -> str | None:
    """The transaction statement `statement` is (BEGIN, COMMIT, ...), or None."""
    w = statement.words
    if not w:
        return None
    head = w[0]
    if head in ("BEGIN", "COMMIT", "END", "ABORT") or (
        head == "START" and w[1:2] == ("TRANSACTION",)
    ):
        return head
    if head == "ROLLBACK" and "TO" not in w[1:3]:
        return head
    if head == "PREPARE" and w[1:2] == ("TRANSACTION",):
        return "PREPARE TRANSACTION"
    return None


def outside_transaction(statement: Statement, dialect: Dialect | None) -> str | None:
    """Why `statement` cannot run inside a transaction (None: it can). `dialect` None: either."""
    w = statement.words
    if not w:
        return None
    sqlite = dialect in (None, "sqlite")
    pg = dialect in (None, "postgresql")
    head = w[0]
    if head == "VACUUM":
        return "VACUUM cannot run inside a transaction"
    if sqlite and head in ("ATTACH", "DETACH"):
        return f"SQLite cannot {head} a database inside a transaction"
    if sqlite and head == "PRAGMA" and {"FOREIGN_KEYS", "JOURNAL_MODE"} & set(w[1:3]):
        name = "foreign_keys" if "FOREIGN_KEYS" in w[1:3] else "journal_mode"
        return f"PRAGMA {name} has no effect or fails inside a transaction"
    if not pg:
        return None
    if head == "CREATE" and "INDEX" in w[1:3] and "CONCURRENTLY" in w[2:4]:
        return "CREATE INDEX CONCURRENTLY cannot run inside a transaction"
    if head == "DROP" and w[1:3] == ("INDEX", "CONCURRENTLY"):
        return "DROP INDEX CONCURRENTLY cannot run inside a transaction"
    if head == "REINDEX" and ("CONCURRENTLY" in w[1:5] or w[1:2] in (("DATABASE",), ("SYSTEM",))):
        return "this REINDEX cannot run inside a transaction"
    if head in ("CREATE", "DROP") and w[1:2] in (("DATABASE",), ("TABLESPACE",)):
        return f"{head} {w[1]} cannot run inside a transaction"
    if head in ("CREATE", "DROP") and w[1:2] == ("SUBSCRIPTION",):
        return f"{head} SUBSCRIPTION cannot run inside a transaction"
    if head == "ALTER" and w[1:2] == ("SYSTEM",):
        return "ALTER SYSTEM cannot run inside a transaction"
    return None


def is_query(statement: Statement) -> bool:
    return bool(statement.words) and statement.words[0] in ("SELECT", "WITH", "VALUES", "TABLE")
