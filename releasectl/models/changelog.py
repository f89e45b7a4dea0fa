"""The `changelog --format json` document, and the `changelog:` configuration block."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from releasectl.models.base import Model

Forge = Literal["github", "gitlab", "gitea", "bitbucket"]


class ChangelogCommit(Model):
    sha: str = Field(description="Full commit id.")
    type: str | None = Field(
        description="Conventional-commit type, lowercased (feat, fix, ...); null for a commit "
        "whose subject is not conventional."
    )
    scope: str | None = Field(description="The scope in `type(scope): ...`, if any.")
    subject: str = Field(
        description="The description after `type(scope): ` (the whole first line for a commit "
        "that is not conventional). Only the first line of the message: the rest is its body."
    )
    breaking: bool = Field(
        description="Marked breaking by `!` before the colon or a `BREAKING CHANGE:` / "
        "`BREAKING-CHANGE:` footer."
    )
    breaking_description: str | None = Field(
        default=None,
        description="The text of the `BREAKING CHANGE:` footer (or of the paragraph after an "
        "empty one), on one line; null when there is no such footer.",
    )


class ChangelogSection(Model):
    title: str = Field(
        description="By default Breaking Changes, Features, Bug Fixes, Performance, "
        "Documentation, Refactoring, Build, CI, Chores, Tests, Style, Reverts or Other, in that "
        "order (the `changelog.sections` setting changes them); empty sections are left out. A "
        "breaking commit is listed under Breaking Changes only."
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


class ChangelogRelease(Model):
    version: str | None = Field(
        description="The release: its tag without a leading `v` or package prefix (`v1.1.0`, "
        "`pkg@1.1.0` -> `1.1.0`); null for the commits after the last release (Unreleased)."
    )
    tag: str | None = Field(description="The tag that marks the release, if it has one.")
    commit: str | None = Field(description="The commit the release ends at.")
    date: str | None = Field(
        description="YYYY-MM-DD: the release manifest's `date:`, else the tag's date."
    )
    previous: str | None = Field(
        description="The revision the release starts after (the older release's tag, or FROM); "
        "null: the start of history."
    )
    head: str | None = Field(
        default=None,
        description="How links name the release's end: its tag, else a branch or the commit.",
    )
    compare_url: str | None = Field(
        default=None, description="The forge's compare view of previous...head, if known."
    )
    sections: list[ChangelogSection] = Field(description="This release's commits, grouped.")
    components: list[ComponentChange] = Field(
        default_factory=list,
        description="Component versions that differ from the previous release's manifest.",
    )


class ChangelogRepository(Model):
    forge: Forge = Field(description="The kind of forge the links point at.")
    url: str = Field(description="Web address of the repository, from the `origin` remote.")


class Changelog(Model):
    from_: str | None = Field(
        alias="from",
        description="Start of the range, exclusive, as given or found (a tag, ref or release "
        "version); null: the whole history.",
    )
    to: str = Field(description="End of the range, inclusive (a tag or ref, default HEAD).")
    from_commit: str | None = Field(
        default=None, description="The commit FROM resolved to (null: the whole history)."
    )
    to_commit: str | None = Field(default=None, description="The commit TO resolved to.")
    sections: list[ChangelogSection] = Field(
        description="Every commit of the range grouped by kind; merge commits are left out "
        "unless kept (see docs/changelog.md)."
    )
    components: list[ComponentChange] = Field(
        default_factory=list,
        description="Component versions that differ between the two releases' manifests "
        "(sorted by name); empty outside a releasectl workspace.",
    )
    releases: list[ChangelogRelease] = Field(
        default_factory=list,
        description="The same commits split by the release tags inside the range, newest "
        "first; each commit appears in exactly one release.",
    )
    repository: ChangelogRepository | None = Field(
        default=None, description="Where links point (null: no links)."
    )
    notes: list[str] = Field(
        default_factory=list,
        description="How the range was read, for a person: which tag or commit a release "
        "version named, which directory the commits were limited to.",
    )


# --- configuration ------------------------------------------------------------------------

_TYPE = re.compile(r"^[A-Za-z]+$")


def _types(values: list[str]) -> list[str]:
    for value in values:
        if not _TYPE.match(value):
            raise ValueError(f"{value!r} is not a commit type (letters only)")
    return [v.lower() for v in values]


class ChangelogSectionConfig(Model):
    title: str = Field(min_length=1, description="The `###` heading of the section.")
    types: list[str] = Field(
        default_factory=list,
        description="Commit types listed in this section (case-insensitive), e.g. [feat].",
    )
    breaking: bool = Field(
        default=False,
        description="This section lists every breaking commit, whatever its type (and they "
        "appear nowhere else).",
    )
    other: bool = Field(
        default=False,
        description="This section lists the commits no other section takes: other types and "
        "subjects that are not conventional. Without it they are left out.",
    )

    @field_validator("types")
    @classmethod
    def _check_types(cls, value: list[str]) -> list[str]:
        return _types(value)

    @model_validator(mode="after")
    def _one_kind(self) -> ChangelogSectionConfig:
        kinds = bool(self.types) + self.breaking + self.other
        if kinds != 1:
            raise ValueError("a section needs exactly one of types, breaking: true or other: true")
        return self


class ChangelogConfig(Model):
    """How `releasectl changelog` groups and filters commits (defaults: docs/changelog.md)."""

    sections: list[ChangelogSectionConfig] | None = Field(
        default=None,
        description="The sections in the order they appear; default: Breaking Changes, "
        "Features, Bug Fixes, Performance, Documentation, Refactoring, Build, CI, Chores, "
        "Tests, Style, Reverts, Other.",
    )
    exclude_types: list[str] = Field(
        default_factory=list, description="Commit types left out of the changelog, e.g. [chore]."
    )
    exclude_authors: list[str] = Field(
        default_factory=list,
        description="Commits by these authors are left out: each entry is compared with the "
        "author's name and e-mail address; `*` matches any text, everything else is literal "
        "(`dependabot[bot]`, `*[bot]`).",
    )
    exclude_subjects: list[str] = Field(
        default_factory=list,
        description="Commits whose first line matches one of these regular expressions (Python "
        "syntax, searched anywhere in the line) are left out, e.g. '^chore\\(release\\)'.",
    )
    tag_pattern: str | None = Field(
        default=None,
        description="Glob of the tags that mark releases (`v*`, `pkg@*`); default: every tag in "
        "a plain repository, `v*` in a workspace.",
    )
    include_merges: bool = Field(
        default=False, description="List every merge commit (default: see docs/changelog.md)."
    )
    links: bool = Field(
        default=True, description="Link releases, commits and #123 references to the forge."
    )
    forge: Forge | None = Field(
        default=None,
        description="The kind of forge, for a self-hosted one whose address does not say it.",
    )
    repository_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/@]+(/[^\s@]*)?$",
        description="Web address links point at, instead of the one derived from `origin`.",
    )

    @field_validator("exclude_types")
    @classmethod
    def _check_types(cls, value: list[str]) -> list[str]:
        return _types(value)

    @field_validator("exclude_subjects")
    @classmethod
    def _regexes(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
        return values

    @field_validator("sections")
    @classmethod
    def _distinct(
        cls, value: list[ChangelogSectionConfig] | None
    ) -> list[ChangelogSectionConfig] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("needs at least one section")
        seen: dict[str, str] = {}
        for section in value:
            for type_ in section.types:
                if type_ in seen:
                    raise ValueError(
                        f"type {type_!r} is in two sections ({seen[type_]!r}, {section.title!r})"
                    )
                seen[type_] = section.title
        if sum(s.breaking for s in value) > 1 or sum(s.other for s in value) > 1:
            raise ValueError("at most one section may be `breaking` and one `other`")
        titles = [s.title for s in value]
        if len(set(titles)) != len(titles):
            raise ValueError("section titles must differ")
        return value
