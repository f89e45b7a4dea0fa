"""FROM and TO as users type them: revisions, `A..B`, `A...B` and release versions.

A release version (`1.0.0`, `v1.0.0`) is its tag when one exists (`v1.0.0`, `1.0.0`, or with
`--tag-pattern pkg@*` the matching `pkg@1.0.0`); otherwise, in a workspace, the commit that added
its manifest `releases/1.0.0.yaml` (a manifest not committed yet stands for HEAD and the work
tree, for TO only). Which one was used is said in a note. Any other argument is whatever git
resolves (a tag, a branch, a commit, `HEAD~3`), all of them in one `git cat-file` call.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal, NamedTuple

from releasectl.errors import InputError
from releasectl.release import gitlog
from releasectl.release.changelog.manifests import Manifests
from releasectl.release.changelog.versions import is_version, label

Source = Literal["revision", "tag", "manifest", "worktree", "describe", "root"]
_SIMPLE_REF = re.compile(r"^[\w./@+-]+$")
SHALLOW_HINT = (
    "the repository is a shallow clone: fetch the history and tags first "
    "(`git fetch --unshallow --tags`; on GitHub Actions, actions/checkout with `fetch-depth: 0`)"
)


class End(NamedTuple):
    name: str | None
    """As given or found (`v1.0.0`, `1.0.0`, `HEAD`); None: the start of history."""
    commit: str | None
    tag: str | None = None
    version: str | None = None
    """The release version this end stands for, when it was named by one."""
    source: Source = "revision"
    date: str | None = None
    """The date of the commit that added the manifest (source `manifest`)."""

    @property
    def link(self) -> str | None:
        """How compare links name this end: its tag, a plain ref name, else the commit."""
        if self.tag is not None:
            return self.tag
        if self.name is not None and self.source == "revision" and _SIMPLE_REF.match(self.name):
            return self.name
        return self.commit


ROOT = End(None, None, source="root")


def split_range(arg: str) -> tuple[str, str | None, bool]:
    """`A..B` -> (A, B, False); `A...B` -> (A, B, True); an empty side is HEAD, as in git."""
    for sep, symmetric in (("...", True), ("..", False)):
        if sep in arg:
            a, _, b = arg.partition(sep)
            return a or "HEAD", b or "HEAD", symmetric
    return arg, None, False


class Resolver:
    def __init__(
        self,
        repo: Path,
        tags: Sequence[gitlog.Tag],
        pattern: str | None,
        manifests: Manifests | None,
        *,
        shallow: bool,
        known: dict[str, str] | None = None,
    ) -> None:
        self.repo = repo
        self.tags = tags
        self.by_name = {t.name: t for t in tags}
        self.pattern = pattern
        self.manifests = manifests
        self.shallow = shallow
        self.known = known or {}
        self.notes: list[str] = []

    def tag_for(self, version: str) -> gitlog.Tag | None:
        """The tag of release `version`: with a pattern the matching tag of that version,
        else `v<version>`, else `<version>`."""
        if self.pattern is not None:
            for tag in self.tags:
                if fnmatchcase(tag.name, self.pattern) and label(tag.name) == version:
                    return tag
        return self.by_name.get(f"v{version}") or self.by_name.get(version)

    def resolve(self, args: Sequence[str], *, search_from: str = "HEAD") -> list[End]:
        """Each argument as an End; the last one may be a manifest not committed yet (TO)."""
        ends: list[End | None] = []
        pending = []
        for arg in args:
            gitlog.check_ref(arg)
            tag = self.by_name.get(arg)
            if tag is not None:
                ends.append(End(arg, tag.commit, tag.name, source="tag"))
                continue
            if is_version(arg):
                version = label(arg)
                tag = self.tag_for(version)
                if tag is not None:
                    self.notes.append(f"{arg}: release {version} is tag {tag.name}")
                    ends.append(End(arg, tag.commit, tag.name, version, "tag"))
                    continue
            ends.append(None)
            pending.append(arg)
        unknown = [arg for arg in pending if arg not in self.known]
        commits = {**self.known, **gitlog.commits_of(self.repo, unknown)}
        out = []
        for i, (arg, known) in enumerate(zip(args, ends, strict=True)):
            if known is not None:
                out.append(known)
                continue
            commit = commits.get(arg)
            if commit is not None:
                out.append(End(arg, commit))
            else:
                out.append(self._release(arg, search_from, is_to=i == len(args) - 1))
        return out

    def _release(self, arg: str, search_from: str, *, is_to: bool) -> End:
        """A release version without a tag: the commit that added its manifest."""
        if arg == "HEAD":
            raise InputError(f"the git repository at {self.repo} has no commits yet")
        manifests = self.manifests
        if is_version(arg) and manifests is not None:
            version = label(arg)
            path = manifests.path_of(version)
            added = gitlog.added_by(self.repo, search_from, path)
            shown = f"{manifests.dir}/{version}.yaml"
            if added is not None:
                commit, date = added
                self.notes.append(
                    f"{arg}: no tag for release {version}; using commit {commit[:12]}, "
                    f"which added {shown}"
                )
                return End(arg, commit, None, version, "manifest", date)
            if manifests.in_work_tree(version):
                if not is_to:
                    raise InputError(
                        f"release {version}: {shown} is not committed yet, so no commit "
                        "stands for it (commit it, or tag the release)"
                    )
                head = gitlog.commits_of(self.repo, ["HEAD"]).get("HEAD")
                self.notes.append(
                    f"{arg}: {shown} is not committed yet; using HEAD and the work tree"
                )
                return End(arg, head, None, version, "worktree")
            raise InputError(
                f"unknown git revision {arg!r}: no branch, tag or commit of that name, and no "
                f"release manifest {shown}" + (f"; {SHALLOW_HINT}" if self.shallow else "")
            )
        raise InputError(
            f"unknown git revision {arg!r}: no branch, tag or commit of that name"
            + (f"; {SHALLOW_HINT}" if self.shallow else "")
        )
