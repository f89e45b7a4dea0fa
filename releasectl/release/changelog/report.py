"""The result of reading a range: plain data, rendered by `render` and written by `document`."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from releasectl.release.changelog.commits import Row
from releasectl.release.changelog.links import Forge
from releasectl.release.changelog.manifests import Change

Section = tuple[str, list[Row]]
"""(title, commits newest first)."""


class Release(NamedTuple):
    version: str | None
    """The release's label (`1.1.0`); None: Unreleased."""
    tag: str | None
    commit: str | None
    date: str | None
    previous: str | None
    """The revision this release starts after, as links name it (a tag or commit)."""
    sections: list[Section]
    components: list[Change]
    head: str | None = None
    """How links name this release's end: its tag, else a branch or commit."""

    def compare_url(self, forge: Forge | None) -> str | None:
        if forge is None or self.previous is None or self.head is None:
            return None
        return forge.compare(self.previous, self.head)

    @property
    def empty(self) -> bool:
        return not self.sections and not self.components


class Report(NamedTuple):
    from_ref: str | None
    to_ref: str
    from_commit: str | None
    to_commit: str | None
    sections: list[Section]
    """Every commit of the range, grouped."""
    components: list[Change]
    releases: list[Release]
    """Newest first; at least one."""
    root: Path
    """The directory whose CHANGELOG.md this is: --path, the workspace, or where it ran."""
    forge: Forge | None
    notes: list[str]

    @property
    def version(self) -> str | None:
        """The release the range ends at (None: unreleased)."""
        return self.releases[0].version

    @property
    def date(self) -> str | None:
        return self.releases[0].date
