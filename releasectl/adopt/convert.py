"""Old migration scripts that are plainly Redis commands or SQL, as native migrations.

A script converts when every command in it is one the native type expresses exactly:

- redis: `redis-cli [connection options] COMMAND args...` for SET, HSET/HMSET, HDEL, SADD,
  SREM, ZADD, RPUSH, DEL, EXPIRE, PERSIST, RENAME and CONFIG SET, with literal arguments;
- sql: SQL fed to `sqlite3 DB` or `psql URL` (a here-document with a quoted delimiter, or one
  with no `$` or backquote in it; or a `-c "SQL"` / a quoted SQL argument); a transaction the
  script opened around it (`BEGIN; ... COMMIT;`) is dropped, as releasectl runs each part in
  one transaction of its own.

Anything else (a loop, a pipe, a shell variable in an argument, another program) keeps the
script a `type: script` migration, and the reason names the line. Connection options become
the target's URL, `${VAR}` kept as a reference (never a literal password).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from releasectl.adopt.shell import Line, logical_lines
from releasectl.workspace import yamlio

NATIVE = ("redis", "sql")


@dataclass
class Converted:
    """The native parts of one script: {file name: text}, and where it connected."""

    files: dict[str, str]
    connection: str | None = None  # a target URL, ${VAR} references kept
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NotPlain:
    line: int
    reason: str


def convert(kind: str, text: str, part: str) -> Converted | NotPlain:
    """Script `text` as the `part` ("up" or "down") of a `kind` migration, or why not."""
    if kind == "redis":
        return _redis(text, part)
    if kind == "sql":
        return _sql(text, part)
    return NotPlain(1, f"no conversion to type {kind}")


def guess(text: str) -> str | None:
    """The native type the script's commands all belong to (redis, sql, kubernetes), if any."""
    commands = [line for line in logical_lines(text) if line.kind == "command"]
    if not commands:
        return None
    heads = {_head(line.text) for line in commands}
    if heads <= {"redis-cli"}:
        return "redis"
    if heads <= {"sqlite3", "psql"}:
        return "sql"
    if heads <= {"kubectl"} and all(
        re.match(r"kubectl\s+(apply|delete|create|replace)\b", line.text) for line in commands
    ):
        return "kubernetes"
    return None


def _head(text: str) -> str:
    try:
        words = shlex.split(text, comments=False)
    except ValueError:
        return ""
    return words[0].rsplit("/", 1)[-1] if words else ""


def _commands(text: str) -> list[Line] | NotPlain:
    commands = [line for line in logical_lines(text) if line.kind == "command"]
    if not commands:
        return NotPlain(1, "no command in the script")
    return commands


def _words(line: Line) -> list[str] | NotPlain:
    for token in ("|", ";", "&&", "||", "$(", "`", ">", "<"):
        if token in _outside_quotes(line.text.split("<<")[0] if line.heredoc else line.text):
            return NotPlain(line.number, f"`{token}` makes it more than one plain command")
    try:
        return shlex.split(line.text.split("<<")[0] if line.heredoc else line.text)
    except ValueError as exc:
        return NotPlain(line.number, f"cannot read the command: {exc}")


def _outside_quotes(text: str) -> str:
    return re.sub(r"'[^']*'|\"(?:\\.|[^\"\\])*\"", "''", text)


_VAR_RE = re.compile(r"\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))")


def _reference(value: str) -> str:
    """A shell word as a releasectl.yaml value: $VAR and ${VAR} become ${VAR}."""
    return _VAR_RE.sub(lambda m: f"${{{m[1] or m[2]}}}", value)


# --- redis -----------------------------------------------------------------------------------

_REDIS_OPTIONS_WITH_VALUE = frozenset({"-h", "-p", "-a", "-n", "-u", "-s", "--user", "--pass"})
_REDIS_FLAGS = frozenset({"--no-auth-warning", "--tls", "-c", "--raw", "--no-raw", "-e"})


def _redis(text: str, part: str) -> Converted | NotPlain:
    commands = _commands(text)
    if isinstance(commands, NotPlain):
        return commands
    ops: list[dict[str, Any]] = []
    connection: str | None = None
    notes: list[str] = []
    for line in commands:
        words = _words(line)
        if isinstance(words, NotPlain):
            return words
        if not words or words[0].rsplit("/", 1)[-1] != "redis-cli":
            return NotPlain(line.number, f"`{line.text[:60]}` is not a redis-cli command")
        options, args = _split_redis_options(words[1:])
        if isinstance(options, NotPlain):
            return NotPlain(line.number, options.reason)
        url, note = _redis_url(options)
        if note and note not in notes:
            notes.append(note)
        if connection is None:
            connection = url
        elif url != connection:
            return NotPlain(line.number, "the commands talk to more than one Redis")
        if any("$" in arg or "`" in arg for arg in args):
            return NotPlain(line.number, "an argument uses a shell variable")
        op = _redis_op(args)
        if isinstance(op, str):
            return NotPlain(line.number, op)
        ops.append(op)
    header = f"# Converted from the old framework's {part} script by releasectl import-legacy.\n"
    return Converted({f"{part}.yaml": header + yamlio.dump({"ops": ops})}, connection, notes)


def _split_redis_options(words: list[str]) -> tuple[dict[str, str] | NotPlain, list[str]]:
    options: dict[str, str] = {}
    index = 0
    while index < len(words) and words[index].startswith("-"):
        word = words[index]
        if word in _REDIS_OPTIONS_WITH_VALUE and index + 1 < len(words):
            options[word] = words[index + 1]
            index += 2
        elif word in _REDIS_FLAGS:
            options[word] = ""
            index += 1
        else:
            return NotPlain(0, f"redis-cli option {word} has no native equivalent"), []
    return options, words[index:]


def _redis_url(options: dict[str, str]) -> tuple[str | None, str | None]:
    if "-u" in options:
        return _reference(options["-u"]), None
    if "-s" in options:
        return "unix://" + _reference(options["-s"]), None
    if not ({"-h", "-p", "-n", "-a", "--user", "--pass"} & set(options)):
        return None, None
    note = None
    password = options.get("-a", options.get("--pass"))
    auth = ""
    if password is not None:
        if "$" in password:
            auth = f"{_reference(options.get('--user', ''))}:{_reference(password)}@"
        else:
            note = (
                "the scripts pass a literal Redis password (-a): it is not copied into "
                "releasectl.yaml; put it in an environment variable and the target's URL"
            )
    scheme = "rediss" if "--tls" in options else "redis"
    host = _reference(options.get("-h", "127.0.0.1"))
    port = _reference(options.get("-p", "6379"))
    db = f"/{_reference(options['-n'])}" if "-n" in options else ""
    return f"{scheme}://{auth}{host}:{port}{db}", note


def _redis_op(args: list[str]) -> dict[str, Any] | str:
    if not args:
        return "redis-cli without a command"
    name, rest = args[0].upper(), args[1:]
    body: dict[str, Any]
    op: str
    if name == "SET" and len(rest) >= 2:
        op, body = "set", {"key": rest[0], "value": rest[1]}
        extra = [w.upper() for w in rest[2:]]
        if extra[:1] == ["NX"] and len(extra) in (1, 3):
            body["nx"], extra = True, extra[1:]
        if len(extra) == 2 and extra[0] == "EX" and extra[1].isdigit():
            body["ttl"], extra = int(extra[1]), []
        if extra[:1] == ["NX"]:
            body["nx"], extra = True, extra[1:]
        if extra:
            return f"SET option {' '.join(extra)} has no native equivalent"
    elif name in ("HSET", "HMSET") and len(rest) >= 3 and len(rest) % 2 == 1:
        fields = dict(zip(rest[1::2], rest[2::2], strict=True))
        op, body = "hset", {"key": rest[0], "fields": fields}
    elif name == "HDEL" and len(rest) >= 2:
        op, body = "hdel", {"key": rest[0], "fields": rest[1:]}
    elif name in ("SADD", "SREM") and len(rest) >= 2:
        op, body = name.lower(), {"key": rest[0], "members": rest[1:]}
    elif name == "ZADD" and len(rest) >= 3 and len(rest) % 2 == 1:
        try:
            scores = [float(s) for s in rest[1::2]]
        except ValueError:
            return "ZADD options (NX, XX, GT, ...) have no native equivalent"
        op, body = "zadd", {"key": rest[0], "members": dict(zip(rest[2::2], scores, strict=True))}
    elif name == "RPUSH" and len(rest) >= 2:
        op, body = "rpush", {"key": rest[0], "values": rest[1:]}
    elif name in ("DEL", "UNLINK") and rest:
        op, body = "del", {"keys": rest}
    elif name == "EXPIRE" and len(rest) == 2 and rest[1].isdigit():
        op, body = "expire", {"key": rest[0], "seconds": int(rest[1])}
    elif name == "PERSIST" and len(rest) == 1:
        op, body = "persist", {"key": rest[0]}
    elif name == "RENAME" and len(rest) == 2:
        from releasectl.targets.redis.ops import escape

        op, body = "rename", {"from": rest[0], "to": rest[1], "pattern": escape(rest[0])}
    elif name == "CONFIG" and len(rest) == 3 and rest[0].upper() == "SET":
        op, body = "config_set", {"parameter": rest[1], "value": rest[2]}
    else:
        return f"redis-cli {args[0]} has no native operation (or unexpected arguments)"
    from releasectl.targets.redis.ops import OP_MODELS

    try:
        OP_MODELS[op].model_validate(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        return f"{args[0]}: {first['msg']}"
    return {op: body}


# --- sql -------------------------------------------------------------------------------------

_PSQL_OPTIONS_WITH_VALUE = frozenset({"-h", "-p", "-U", "-d", "-v", "--set", "-c", "-f"})
_PSQL_FLAGS = frozenset({"-q", "-X", "-1", "--single-transaction", "-w", "--no-password", "-A"})
_SQLITE_FLAGS = frozenset({"-bail", "-batch", "-echo", "-header", "-noheader", "-cmd"})
_WRAP_BEGIN = re.compile(r"^\s*BEGIN(?:\s+(?:TRANSACTION|WORK|IMMEDIATE|DEFERRED))?\s*;\s*", re.I)
_WRAP_END = re.compile(r"\s*(?:COMMIT|END)(?:\s+(?:TRANSACTION|WORK))?\s*;\s*$", re.I)


def _sql(text: str, part: str) -> Converted | NotPlain:
    commands = _commands(text)
    if isinstance(commands, NotPlain):
        return commands
    bodies: list[str] = []
    connection: str | None = None
    for line in commands:
        words = _words(line)
        if isinstance(words, NotPlain):
            return words
        program = words[0].rsplit("/", 1)[-1] if words else ""
        if program == "sqlite3":
            found = _sqlite_command(line, words[1:])
        elif program == "psql":
            found = _psql_command(line, words[1:])
        else:
            return NotPlain(line.number, f"`{line.text[:60]}` is not sqlite3 or psql")
        if isinstance(found, NotPlain):
            return found
        url, sql = found
        if connection is None:
            connection = url
        elif url != connection:
            return NotPlain(line.number, "the commands talk to more than one database")
        for offset, statement_line in enumerate(sql.splitlines()):
            stripped = statement_line.strip()
            if stripped.startswith(("\\", ".")):
                return NotPlain(
                    line.number + offset + 1,
                    f"`{stripped[:40]}` is a {program} command, not SQL",
                )
        bodies.append(sql.strip())
    sql = "\n\n".join(bodies)
    notes: list[str] = []
    if _WRAP_BEGIN.match(sql) and _WRAP_END.search(sql):
        sql = _WRAP_END.sub("", _WRAP_BEGIN.sub("", sql, count=1), count=1)
        notes.append("dropped the script's own BEGIN/COMMIT: releasectl runs each part in one")
    header = f"-- Converted from the old framework's {part} script by releasectl import-legacy.\n"
    return Converted({f"{part}.sql": header + sql.strip() + "\n"}, connection, notes)


def _sql_text(line: Line, inline: str | None) -> str | NotPlain:
    if inline is not None:
        if "$" in inline or "`" in inline:
            return NotPlain(line.number, "the SQL uses a shell variable")
        return inline
    if line.heredoc is None:
        return NotPlain(line.number, "no SQL given (a here-document or a quoted argument)")
    if line.expands and ("$" in line.heredoc or "`" in line.heredoc):
        return NotPlain(line.number, "the here-document's SQL uses a shell variable")
    return line.heredoc


def _sqlite_command(line: Line, words: list[str]) -> tuple[str, str] | NotPlain:
    positional = [w for w in words if w not in _SQLITE_FLAGS]
    if any(w.startswith("-") for w in positional):
        return NotPlain(line.number, "a sqlite3 option with no native equivalent")
    if not positional:
        return NotPlain(line.number, "sqlite3 without a database file")
    path = _reference(positional[0])
    sql = _sql_text(line, positional[1] if len(positional) > 1 else None)
    if isinstance(sql, NotPlain):
        return sql
    url = "sqlite:///" + path  # an absolute path gives sqlite://// (four slashes)
    return url, sql


def _psql_command(line: Line, words: list[str]) -> tuple[str, str] | NotPlain:
    options: dict[str, str] = {}
    positional: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if word in _PSQL_OPTIONS_WITH_VALUE and index + 1 < len(words):
            options[word] = words[index + 1]
            index += 2
        elif word in _PSQL_FLAGS:
            index += 1
        elif word.startswith("-"):
            return NotPlain(line.number, f"psql option {word} has no native equivalent")
        else:
            positional.append(word)
            index += 1
    if "-f" in options:
        return NotPlain(line.number, "psql -f reads another file")
    target = options.get("-d") or (positional[0] if positional else None)
    is_url = target is not None and target.startswith(("postgres://", "postgresql://"))
    if target is not None and (is_url or "$" in target):
        url = _reference(target)
    else:
        host, port = options.get("-h", "127.0.0.1"), options.get("-p", "5432")
        user = options.get("-U")
        url = _reference(
            f"postgresql://{user + '@' if user else ''}{host}:{port}/{target or 'postgres'}"
        )
    sql = _sql_text(line, options.get("-c"))
    if isinstance(sql, NotPlain):
        return sql
    return url, sql
