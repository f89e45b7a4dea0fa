"""What the import reads from a shell script: its description and its logical lines.

A logical line joins backslash continuations and remembers the line it starts on; comments,
blank lines and the lines a migration script carries for its own bookkeeping (`set -e`,
variable assignments, `echo` to the terminal, `exit 0`) are marked as such, so the converter
sees only the commands that change something.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DESCRIPTION_RES = (
    re.compile(r"""^\s*(?:export\s+)?MIGRATION_DESCRIPTION=(["']?)(?P<text>.*?)\1\s*$"""),
    re.compile(r"^\s*#+\s*(?:Purpose|Description)\s*:\s*(?P<text>.+?)\s*$", re.IGNORECASE),
)
_ASSIGNMENT_RE = re.compile(r"^(?:export\s+|readonly\s+|local\s+)?[A-Za-z_][A-Za-z0-9_]*=")
_SET_RE = re.compile(r"^set\s+[-+][A-Za-z]+(?:\s+[-+]?[A-Za-z]+)*\s*$")
_ECHO_RE = re.compile(r"^(?:echo|printf)\b")
_EXIT_RE = re.compile(r"^(?:exit|return)(?:\s+0)?\s*;?\s*$")
_VARIABLE_RE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
# Variables every shell or the script runner provides: not worth a note.
_PROVIDED = frozenset(
    {"HOME", "PATH", "PWD", "OLDPWD", "USER", "SHELL", "TMPDIR", "HOSTNAME", "RANDOM", "LINENO"}
    | {"BASH_SOURCE", "BASH_VERSION", "FUNCNAME", "IFS", "SECONDS", "UID", "EUID", "PPID"}
)


_HEREDOC_RE = re.compile(
    r"(?<!<)<<(?!<)(?P<dash>-?)\s*(?P<q>['\"]?)(?P<word>[A-Za-z_][A-Za-z0-9_]*)(?P=q)"
)


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based, where the logical line starts
    text: str  # continuations joined, stripped
    kind: str  # "command", "comment", "blank", "bookkeeping"
    heredoc: str | None = None  # the here-document the line feeds its command, if any
    expands: bool = False  # the here-document's delimiter is unquoted: the shell expands $...


def description(text: str) -> str | None:
    """`MIGRATION_DESCRIPTION=...`, else the header's `# Purpose: ...` / `# Description: ...`."""
    found: dict[int, str] = {}
    for raw in text.splitlines():
        for rank, pattern in enumerate(_DESCRIPTION_RES):
            match = pattern.match(raw)
            if match and rank not in found and match.group("text").strip():
                found[rank] = match.group("text").strip()
    return found.get(0) or found.get(1)


def logical_lines(text: str) -> list[Line]:
    """The script's logical lines; a here-document belongs to the line that opens it."""
    raw_lines = text.splitlines()
    lines: list[Line] = []
    index = 0
    while index < len(raw_lines):
        start = index + 1
        parts = [raw_lines[index]]
        while parts[-1].endswith("\\") and not parts[-1].lstrip().startswith("#"):
            parts[-1] = parts[-1][:-1]
            index += 1
            if index >= len(raw_lines):
                break
            parts.append(raw_lines[index])
        index += 1
        joined = " ".join(part.strip() for part in parts).strip()
        kind = _kind(joined)
        match = _HEREDOC_RE.search(joined) if kind == "command" else None
        if match is None:
            lines.append(Line(start, joined, kind))
            continue
        body: list[str] = []
        word, dash = match.group("word"), bool(match.group("dash"))
        while index < len(raw_lines):
            candidate = raw_lines[index].lstrip("\t") if dash else raw_lines[index]
            index += 1
            if candidate == word:
                break
            body.append(candidate)
        lines.append(
            Line(start, joined, kind, "\n".join(body) + "\n", expands=not match.group("q"))
        )
    return lines


def _kind(text: str) -> str:
    if not text:
        return "blank"
    if text.startswith("#"):
        return "comment"
    if _SET_RE.match(text) or _EXIT_RE.match(text) or text in ("true", ":"):
        return "bookkeeping"
    if _ASSIGNMENT_RE.match(text) and "$(" not in text and "`" not in text:
        return "bookkeeping"
    if _ECHO_RE.match(text) and not re.search(r"[>|;&]|\$\(|`", _unquoted(text)):
        return "bookkeeping"  # a message to the terminal, nothing else
    return "command"


def _unquoted(text: str) -> str:
    """`text` without its quoted parts (what a redirection or pipe would be in)."""
    return re.sub(r"'[^']*'|\"(?:\\.|[^\"\\])*\"", "", text)


def unset_variables(text: str) -> list[str]:
    """Variables the script reads but neither sets itself nor gets from releasectl."""
    assigned = {
        m.group(1)
        for m in re.finditer(
            r"^\s*(?:export\s+|readonly\s+|local\s+)?([A-Za-z_][A-Za-z0-9_]*)=", text, re.M
        )
    }
    assigned |= {m.group(1) for m in re.finditer(r"\bfor\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\b", text)}
    assigned |= {m.group(1) for m in re.finditer(r"\bread\s+(?:-\w+\s+)*([A-Za-z_]\w*)", text)}
    used = {m.group(1) for m in _VARIABLE_RE.finditer(_without_comments(text))}
    return sorted(
        name
        for name in used - assigned - _PROVIDED
        if not name.startswith("RELEASECTL_") and not name.isdigit()
    )


def _without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
