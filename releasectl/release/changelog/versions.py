"""Versions in tag names and headings: `v1.1.0`, `1.1.0`, `pkg@1.1.0`, `1.0.0-rc.1`."""

from __future__ import annotations

import re
from collections.abc import Sequence

VERSION = re.compile(r"v?(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?)")
"""A version tag or manifest name, the whole of it (`v` optional)."""
_TRAILING = re.compile(r"(?:^|[@/_-])v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)$")


def label(tag: str) -> str:
    """The version a tag names (`v1.1.0`, `pkg@1.1.0`, `release-1.1.0` -> `1.1.0`); a tag
    without one is its own label."""
    match = VERSION.fullmatch(tag) or _TRAILING.search(tag)
    return match.group(1) if match else tag


def is_version(text: str) -> bool:
    return VERSION.fullmatch(text) is not None


def version_key(text: str) -> tuple[int, ...]:
    """Sort key of a version (a leading `v` or package prefix ignored); a pre-release sorts
    before its release: 1.0.0-rc.1 < 1.0.0."""
    core = label(text)
    release = core.split("+")[0]
    numbers = re.findall(r"\d+", release.split("-")[0])
    return (*(int(n) for n in numbers[:3]), 0 if "-" in release else 1)


def release_tag(names: Sequence[str], asked: str | None) -> str | None:
    """Which of the tags on one commit names its release: the one asked for, else the highest
    version, else the first name."""
    if not names:
        return None
    if asked is not None and asked in names:
        return asked
    versions = [n for n in names if label(n) != n or is_version(n)]
    if versions:  # the same version twice (`3.1.1`, `v3.1.1`): the `v` one, as commit-back tags
        return max(versions, key=lambda n: (version_key(n), n.startswith("v"), n))
    return min(names)
