"""Links to the forge a repository lives on, from its `origin` remote.

Recognised remote forms: ``git@host:owner/repo.git``, ``ssh://git@host[:port]/owner/repo``,
``https://[user[:token]@]host[:port]/owner/repo[.git]`` and ``git://``; the forge is told by the
host (github, gitlab, bitbucket in it; gitea, forgejo or codeberg.org), or set in the
configuration (`forge:`) for a self-hosted one. Credentials in the URL never reach a link.
An unrecognised or local remote gives no links.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_SCP = re.compile(r"^(?:[^@/\s]+@)?([^:/\s]+):(?!//)(.+)$")
_URL = re.compile(
    r"^(ssh|git|https?|git\+ssh|ssh\+git)://(?:[^@/\s]*@)?([^/:\s]+)(?::(\d+))?/(.+)$"
)
# `#123` not inside a word, a path, a link label or an HTML entity; GitLab's `!123` likewise.
_ISSUE = re.compile(r"(?<![\w&/#\[\]!`-])#(\d+)\b")
_MERGE_REQUEST = re.compile(r"(?<![\w&/#\[\]!`-])!(\d+)\b")
_BITBUCKET_PR = re.compile(r"\bpull request #(\d+)\b")


class Forge(NamedTuple):
    kind: str
    """github, gitlab, gitea or bitbucket."""
    base: str
    """https://host/owner/repo"""

    def commit(self, sha: str) -> str:
        path = {"gitlab": "/-/commit/", "bitbucket": "/commits/"}.get(self.kind, "/commit/")
        return f"{self.base}{path}{sha}"

    def compare(self, older: str, newer: str) -> str:
        a, b = _ref(older), _ref(newer)
        if self.kind == "bitbucket":
            return f"{self.base}/branches/compare/{b}%0D{a}"
        path = "/-/compare/" if self.kind == "gitlab" else "/compare/"
        return f"{self.base}{path}{a}...{b}"

    def issue(self, number: str) -> str:
        return f"{self.base}{'/-/issues/' if self.kind == 'gitlab' else '/issues/'}{number}"

    def link_references(self, text: str) -> str:
        """`#123` (and GitLab's `!123`, Bitbucket's `pull request #123`) as Markdown links,
        outside `code spans`."""
        if "#" not in text and "!" not in text:
            return text
        parts = text.split("`")
        for i in range(0, len(parts), 2):  # even parts are outside code spans
            parts[i] = self._link(parts[i])
        return "`".join(parts)

    def _link(self, text: str) -> str:
        if self.kind == "bitbucket":
            text = _BITBUCKET_PR.sub(
                lambda m: f"pull request [#{m[1]}]({self.base}/pull-requests/{m[1]})", text
            )
        text = _ISSUE.sub(lambda m: f"[#{m[1]}]({self.issue(m[1])})", text)
        if self.kind == "gitlab":
            text = _MERGE_REQUEST.sub(
                lambda m: f"[!{m[1]}]({self.base}/-/merge_requests/{m[1]})", text
            )
        return text


def _ref(ref: str) -> str:
    from urllib.parse import quote

    return quote(ref, safe="/@+~^-._")


def web_base(url: str) -> tuple[str, str] | None:
    """(host, https://host[:port]/path) of a remote URL; None for a local or unknown form."""
    url = url.strip()
    port = None
    match = _URL.match(url)
    if match is not None:
        scheme, host, port, path = match.groups()
        if not scheme.startswith("http"):
            port = None  # an ssh port says nothing about the web server's
    else:
        scp = _SCP.match(url)
        if scp is None or url.startswith(("/", ".", "file:")):
            return None
        host, path = scp.groups()
    path = path.strip("/").removesuffix(".git").strip("/")
    if not path or ("/" not in path and not host):
        return None
    return host, f"https://{host}{':' + port if port else ''}/{path}"


def detect(host: str) -> str | None:
    name = host.lower()
    if "github" in name:
        return "github"
    if "gitlab" in name:
        return "gitlab"
    if "bitbucket" in name:
        return "bitbucket"
    if "gitea" in name or "forgejo" in name or name == "codeberg.org":
        return "gitea"
    return None


def forge_for(url: str | None, kind: str | None = None, base: str | None = None) -> Forge | None:
    """The forge of remote `url`; `kind` and `base` (from the configuration) override what the
    URL says."""
    if base is not None:
        found = kind or detect(re.sub(r"^https?://", "", base).split("/")[0])
        return Forge(found, base) if found else None
    if not url:
        return None
    parsed = web_base(url)
    if parsed is None:
        return None
    host, web = parsed
    found = kind or detect(host)
    return Forge(found, web) if found else None
