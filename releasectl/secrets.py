"""Secret detection and redaction.

`scan_text` finds literal secrets so that `validate` and `plan` can refuse a migration or
manifest that carries one: well-known token formats (cloud keys, tokens, private keys,
passwords in URLs) and generic assignments of a value to a name like `password`, `secret`,
`token` or `api_key` (see `GENERIC` below). `redact` is the one seam every message that names
a URL or a setting passes through: it hides values registered with `register` (secrets read
from the environment), anything the rules find, and the credentials of any URL-like string,
well-formed or not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

REDACTED = "***"

# --- generic assignments: `password: value`, `API_KEY=value`, `"token": "value"`, ... ----------
#
# After gitleaks' `generic-api-key` rule and detect-secrets' KeywordDetector: a name that ends
# in one of these words, an assignment (`:`, `=`, `:=`, `=>`), and a value. The value counts as
# a secret only past the allow-list of `looks_secret` (references, templates, placeholders,
# identifiers, paths, sequences) and with enough entropy.
_NAME_WORDS = (
    r"pass(?:word|wd|phrase)|pwd|secret|token|credentials?"
    r"|(?:api|access|private|auth|signing|encryption|master)[_.-]?key"
    r"|client[_.-]?secret|secret[_.-]?access[_.-]?key"
)
GENERIC = re.compile(
    r"(?i)(?<![A-Za-z0-9_.-])"
    r"([A-Za-z0-9_.-]{0,40}?(?:" + _NAME_WORDS + r"))"  # the name ends with a keyword
    r"(?![A-Za-z0-9_-])[\"']?[ \t]{0,4}(?::=|=>|=|:)(?![=>:])[ \t]{0,4}"
    r"(?:\"([^\"\n]{1,300})\"|'([^'\n]{1,300})'|([^\s\"'`,;]{1,300}))"
)
# The words `releasectl.workspace.digests.KEYWORDS` looks for before running `GENERIC`
# (case-folded): every name `GENERIC` matches contains one of them.
GENERIC_WORDS: tuple[str, ...] = (
    "pass",
    "pwd",
    "secret",
    "token",
    "credential",
    *(
        f"{word}{sep}key"
        for word in ("api", "access", "private", "auth", "signing", "encryption", "master")
        for sep in ("", "_", ".", "-")
    ),
)
MIN_LENGTH = 8
MIN_ENTROPY = 2.5  # bits per character (Shannon); "Password1" has 2.95, "aaaabbbb" 1.0
# Values that are words of configuration, not secrets (gitleaks keeps a longer stop-word list).
STOPWORDS = frozenset(
    {
        "disabled",
        "enabled",
        "required",
        "optional",
        "redacted",
        "default",
        "defaults",
        "unknown",
        "generated",
        "external",
        "internal",
        "inherit",
        "inherited",
        "masked",
        "hidden",
        "notrequired",
        "undefined",
        "nullable",
        "password",
        "passphrase",
        "secret",
        "secrets",
        "token",
    }
)
PLACEHOLDERS = (
    "example",
    "changeme",
    "change_me",
    "change-me",
    "placeholder",
    "dummy",
    "redacted",
    "xxxxx",
    "*****",
    "your_",
    "your-",
    "replace",
    "sample",
    "notasecret",
    "not-a-secret",
    "not_a_secret",
)
_TEMPLATES = ("${", "{{", "}}", "$(", "%(", "ref+", "<%", "#{")
_REFERENCE_START = tuple("${<%[(&*!|>@")
_SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789",
    "01234567890123456789",
    "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_CONSTANT = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_FILE_NAME = re.compile(r"[\w.-]+\.(?:pem|key|crt|cer|p12|pfx|jks|txt|json|ya?ml|env|conf|cfg|ini)")
_NAME_ROOTS = ("pass", "pwd", "secret", "token", "key", "cred")


def entropy(value: str) -> float:
    """Shannon entropy of `value`, in bits per character."""
    counts: dict[str, int] = {}
    for char in value:
        counts[char] = counts.get(char, 0) + 1
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


def looks_secret(value: str, *, quoted: bool, min_entropy: float = MIN_ENTROPY) -> bool:
    """Whether the value of a `password:`-like assignment is a literal secret, after the
    allow-list: references and templates (`${VAR}`, `{{ x }}`, `$VAR`, `<x>`), function calls
    and indexing, placeholders (`changeme`, `example`, ...), constants and dotted names
    (`DATABASE_PASSWORD`, `settings.db_password`), paths, URLs, file names, UUIDs, sequences,
    numbers, short lowercase words, and values with too little entropy."""
    if len(value) < MIN_LENGTH or len(value) > 300 or any(c.isspace() for c in value):
        return False
    lowered = value.lower()
    if value.startswith(_REFERENCE_START) or any(t in value for t in _TEMPLATES):
        return False
    if lowered in STOPWORDS or any(p in lowered for p in PLACEHOLDERS):
        return False
    if ("(" in value and ")" in value) or ("[" in value and "]" in value):
        return False  # get_password(), request.headers['token']
    if "://" in value or value.startswith(("/", "./", "../", "~/")) or _FILE_NAME.fullmatch(value):
        return False
    if _CONSTANT.fullmatch(value) or _UUID.fullmatch(value) or value.isdigit():
        return False
    if value.isalpha() and value.islower() and len(value) < 12:
        return False  # a word, not a secret
    # a variable named for what it holds (password=db_password), or a dotted reference
    if (
        not quoted
        and _IDENTIFIER.fullmatch(value)
        and ("." in value or any(root in lowered for root in _NAME_ROOTS))
    ):
        return False
    upper = value.upper()
    if any(upper in seq.upper() for seq in _SEQUENCES):
        return False
    return entropy(value) >= min_entropy


def _generic_value(match: re.Match[str]) -> int | None:
    """The group of the value of a `GENERIC` match that `looks_secret`, else None."""
    for group in (2, 3, 4):
        value = match.group(group)
        if value is not None:
            return group if looks_secret(value, quoted=group != 4) else None
    return None  # pragma: no cover - one of the alternatives always matches


# `CREATE ROLE app PASSWORD 'x'`, `ALTER USER app WITH ENCRYPTED PASSWORD 'x'` (PostgreSQL),
# `IDENTIFIED BY 'x'` (MySQL, Oracle)
SQL_PASSWORD = re.compile(r"(?i)\b(?:password|identified\s+by)\s+'([^'\n]{1,300})'")


def _sql_value(match: re.Match[str]) -> int | None:
    return 1 if looks_secret(match.group(1), quoted=True) else None


# --- well-known formats --------------------------------------------------------------------

# (rule id, human name, pattern). The secret is the pattern's group 1, unless `PICKERS` names a
# function that picks the group (or None: not a secret after all). Patterns follow gitleaks'
# well-known rules, kept tight so a checksum or a UUID is not mistaken for a secret.
Picker = Callable[[re.Match[str]], int | None]
RULES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    (
        "aws-access-key",
        "AWS access key id",
        re.compile(r"\b((?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16})\b"),
    ),
    (
        "aws-secret-key",
        "AWS secret access key",
        re.compile(r"(?i)aws.{0,20}?(?:secret|key).{0,20}?['\"=:\s]([A-Za-z0-9/+]{40})\b"),
    ),
    (
        "private-key",
        "private key",
        re.compile(r"(-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----)"),
    ),
    (
        "github-token",
        "GitHub token",
        re.compile(r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,})\b"),
    ),
    ("github-pat", "GitHub token", re.compile(r"\b(github_pat_[A-Za-z0-9_]{60,})\b")),
    ("gitlab-token", "GitLab token", re.compile(r"\b(glpat-[A-Za-z0-9_-]{20,})\b")),
    ("slack-token", "Slack token", re.compile(r"\b(xox[baprs]-[A-Za-z0-9-]{10,})\b")),
    ("google-api-key", "Google API key", re.compile(r"\b(AIza[0-9A-Za-z_-]{35})\b")),
    ("stripe-key", "Stripe key", re.compile(r"\b((?:sk|rk)_live_[0-9a-zA-Z]{20,})\b")),
    (
        "jwt",
        "JSON web token",
        re.compile(r"\b(eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})\b"),
    ),
    (
        "url-password",
        "password in a URL",
        re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]*:([^@\s/'\"$][^@\s/'\"]*)@"),
    ),
    ("generic-assignment", "a value assigned to a password, secret, token or key", GENERIC),
    ("sql-password", "a password in SQL", SQL_PASSWORD),
)
PICKERS: dict[str, Picker] = {"generic-assignment": _generic_value, "sql-password": _sql_value}

_registered: set[str] = set()


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    name: str
    line: int
    column: int


def _secret_group(rule: str, match: re.Match[str]) -> int | None:
    pick = PICKERS.get(rule)
    return 1 if pick is None else pick(match)


def scan_text(text: str) -> list[Finding]:
    findings: list[Finding] = []
    for rule, name, pattern in RULES:
        for match in pattern.finditer(text):
            group = _secret_group(rule, match)
            if group is None:
                continue
            start = match.start(group)
            line = text.count("\n", 0, start) + 1
            column = start - (text.rfind("\n", 0, start) + 1) + 1
            findings.append(Finding(rule, name, line, column))
    findings.sort(key=lambda f: (f.line, f.column))
    return findings


def register(value: str | None) -> None:
    """Remember a secret value (read from the environment) so `redact` hides it."""
    if value and len(value) >= 4:
        _registered.add(value)


def register_url(url: str) -> None:
    """Remember the password of a URL (userinfo, as written and decoded, and `password=`
    parameters) so `redact` hides it wherever a library quotes it."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    try:
        parts = urlsplit(url)
        password = parts.password
        query = parse_qsl(parts.query)
    except ValueError:
        return  # not a URL: the credential masks of `redact` still apply
    if password:
        register(password)
        register(unquote(password))
    for key, value in query:
        if key.lower() in {"password", "pass", "passwd", "pwd", "sslpassword"}:
            register(value)


# --- redaction -----------------------------------------------------------------------------

_HOST_PORT_OR_PATH = re.compile(r"@[^:/@]*(?::\d|/)")
_TOKEN_SPLIT = re.compile(r"([\s'\"`<>]+)")
_QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:password|pass|passwd|pwd|sslpassword|secret|token|access_token|api_?key)=)"
    r"([^&#;\s'\"]+)"
)


def _mask_userinfo(token: str) -> str:
    """`token` with the password of its userinfo masked, for any URL-like spelling:
    `redis://:p@h`, `redis://u:p@h`, `redis://p@h`, `redis//:p@h`, `u:p@h`, `:p@h`.
    A plain e-mail address (`alice@example.com`) has no password and stays as it is."""
    at = token.rfind("@")
    if at <= 0:
        return token
    head, tail = token[:at], token[at:]
    slashes = head.rfind("//")
    start = slashes + 2 if slashes >= 0 else 0
    region = head[start:]
    colon = region.find(":")
    if colon >= 0:
        user, password = region[:colon], region[colon + 1 :]
        if "/" in user or not password or password == REDACTED:
            return token
        return f"{head[: start + colon + 1]}{REDACTED}{tail}"
    if not region or "/" in region or region == REDACTED:
        return token
    if slashes >= 0 or _HOST_PORT_OR_PATH.match(tail):
        # redis://secret@host (a password for redis-py), or secret@host:6379/0 without a scheme;
        # alice@example.com stays
        return f"{head[:start]}{REDACTED}{tail}"
    return token


def redact_credentials(text: str) -> str:
    """Credentials in URL-like strings masked: userinfo passwords, `password=` parameters."""
    if "@" in text:
        parts = _TOKEN_SPLIT.split(text)
        text = "".join(_mask_userinfo(p) if "@" in p else p for p in parts)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def redact(text: str) -> str:
    """The one redaction seam: registered values, what the rules find, URL credentials."""
    for value in sorted(_registered, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    text = redact_credentials(text)
    for rule, _, pattern in RULES:
        if pattern.search(text):
            text = pattern.sub(_masker(rule), text)
    return text


def _masker(rule: str) -> Callable[[re.Match[str]], str]:
    def masked(match: re.Match[str]) -> str:
        group = _secret_group(rule, match)
        whole = match.group(0)
        if group is None:
            return whole
        start, end = match.start(group) - match.start(0), match.end(group) - match.start(0)
        return whole[:start] + REDACTED + whole[end:]

    return masked
