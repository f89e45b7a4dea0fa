"""Secret detection and redaction.

`scan_text` finds literal secrets (cloud keys, tokens, private keys, passwords in URLs) so that
`validate` can refuse a migration or manifest that carries one; `redact` removes them, and any
value registered with `register`, from everything releasectl prints or records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REDACTED = "***"

# (rule id, human name, pattern). Patterns follow gitleaks' well-known rules, kept tight so a
# checksum or a UUID is not mistaken for a secret.
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
    ("github-token", "GitHub token", re.compile(r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,})\b")),
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
)

_registered: set[str] = set()


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    name: str
    line: int
    column: int


def scan_text(text: str) -> list[Finding]:
    findings: list[Finding] = []
    for rule, name, pattern in RULES:
        for match in pattern.finditer(text):
            start = match.start(1)
            line = text.count("\n", 0, start) + 1
            column = start - (text.rfind("\n", 0, start) + 1) + 1
            findings.append(Finding(rule, name, line, column))
    findings.sort(key=lambda f: (f.line, f.column))
    return findings


def register(value: str | None) -> None:
    """Remember a secret value (read from the environment) so `redact` hides it."""
    if value and len(value) >= 4:
        _registered.add(value)


def redact(text: str) -> str:
    for value in sorted(_registered, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    for _, _, pattern in RULES:
        if pattern.search(text):
            text = pattern.sub(lambda m: m.group(0).replace(m.group(1), REDACTED), text)
    return text
