"""The `changelog --format json` document."""

from __future__ import annotations

from pydantic import Field

from releasectl.models.base import Model


class ChangelogCommit(Model):
    sha: str = Field(description="Full commit id.")
    type: str | None = Field(
        description="Conventional-commit type, lowercased (feat, fix, ...); null for a commit "
        "whose subject is not conventional."
    )
    scope: str | None = Field(description="The scope in `type(scope): ...`, if any.")
    subject: str = Field(
        description="The description after `type(scope): ` (the whole subject line for a "
        "commit that is not conventional)."
    )
    breaking: bool = Field(
        description="Marked breaking by `!` before the colon or a `BREAKING CHANGE:` / "
        "`BREAKING-CHANGE:` footer."
    )


class ChangelogSection(Model):
    title: str = Field(
        description="Breaking Changes, Features, Bug Fixes, Performance, Documentation, "
        "Refactoring, Build, CI, Chores, Tests, Style, Reverts or Other, in that order; empty "
        "sections are left out. A breaking commit is listed under Breaking Changes only."
    )
    commits: list[ChangelogCommit] = Field(description="Newest first, as `git log` lists them.")


class ComponentChange(Model):
    name: str = Field(description="The component.")
    from_: int | str | None = Field(
        alias="from", description="Version in the older release's manifest (null: added)."
    )
    to: int | str | None = Field(
        description="Version in the newer release's manifest (null: removed)."
    )


class Changelog(Model):
    from_: str | None = Field(
        alias="from",
        description="Start of the range, exclusive (a tag or ref); null: the whole history.",
    )
    to: str = Field(description="End of the range, inclusive (a tag or ref, default HEAD).")
    sections: list[ChangelogSection] = Field(
        description="Commits grouped by kind; merge commits are left out."
    )
    components: list[ComponentChange] = Field(
        default_factory=list,
        description="Component versions that differ between the two releases' manifests "
        "(sorted by name); empty outside a releasectl workspace.",
    )
