"""Links from the `origin` remote: every URL form of GitHub, GitLab, Gitea/Forgejo and
Bitbucket, the compare, commit and issue pages in the Markdown, and no links with --no-links
or without a recognisable remote."""

from __future__ import annotations

from pathlib import Path

import pytest

from releasectl.release.changelog.links import Forge, forge_for
from tests.changelog_repo import Repo


@pytest.mark.parametrize(
    ("url", "kind", "base"),
    [
        ("git@github.com:vitejs/vite.git", "github", "https://github.com/vitejs/vite"),
        ("https://github.com/vitejs/vite", "github", "https://github.com/vitejs/vite"),
        ("https://github.com/vitejs/vite.git/", "github", "https://github.com/vitejs/vite"),
        ("ssh://git@github.com/nuxt/nuxt.git", "github", "https://github.com/nuxt/nuxt"),
        (
            "https://x-access-token:ghs_secret@github.com/o/r.git",
            "github",
            "https://github.com/o/r",
        ),
        ("git://github.com/o/r.git", "github", "https://github.com/o/r"),
        ("git@gitlab.com:group/sub/repo.git", "gitlab", "https://gitlab.com/group/sub/repo"),
        (
            "ssh://git@gitlab.example.com:2222/group/repo.git",
            "gitlab",
            "https://gitlab.example.com/group/repo",
        ),
        (
            "https://gitlab.example.com:8443/group/repo",
            "gitlab",
            "https://gitlab.example.com:8443/group/repo",
        ),
        (
            "https://codeberg.org/forgejo/forgejo.git",
            "gitea",
            "https://codeberg.org/forgejo/forgejo",
        ),
        ("git@gitea.example.org:team/app.git", "gitea", "https://gitea.example.org/team/app"),
        ("git@bitbucket.org:team/app.git", "bitbucket", "https://bitbucket.org/team/app"),
        (
            "https://someone@bitbucket.org/team/app.git",
            "bitbucket",
            "https://bitbucket.org/team/app",
        ),
    ],
)
def test_remote_url_forms(url: str, kind: str, base: str) -> None:
    assert forge_for(url) == Forge(kind, base)


@pytest.mark.parametrize(
    "url",
    ["/srv/git/app.git", "../app", "file:///srv/git/app.git", "git@git.internal:app.git", ""],
)
def test_no_links_for_local_or_unknown_remotes(url: str) -> None:
    assert forge_for(url) is None


def test_configured_forge_for_a_self_hosted_host() -> None:
    assert forge_for("git@git.internal:team/app.git", "gitlab") == Forge(
        "gitlab", "https://git.internal/team/app"
    )
    assert forge_for(None, None, "https://code.example.com/team/app") is None
    assert forge_for(None, "gitea", "https://code.example.com/team/app") == Forge(
        "gitea", "https://code.example.com/team/app"
    )


def test_pages_of_each_forge() -> None:
    github = Forge("github", "https://github.com/o/r")
    assert github.compare("v1.0.0", "v1.1.0") == "https://github.com/o/r/compare/v1.0.0...v1.1.0"
    assert github.commit("abc") == "https://github.com/o/r/commit/abc"
    assert github.compare("pkg@1.0.0", "pkg@1.1.0").endswith("/compare/pkg@1.0.0...pkg@1.1.0")
    gitlab = Forge("gitlab", "https://gitlab.com/g/r")
    assert gitlab.compare("a", "b") == "https://gitlab.com/g/r/-/compare/a...b"
    assert gitlab.commit("abc") == "https://gitlab.com/g/r/-/commit/abc"
    assert gitlab.link_references("fix !7 and #8") == (
        "fix [!7](https://gitlab.com/g/r/-/merge_requests/7) and "
        "[#8](https://gitlab.com/g/r/-/issues/8)"
    )
    bitbucket = Forge("bitbucket", "https://bitbucket.org/t/a")
    assert bitbucket.compare("v1", "v2") == "https://bitbucket.org/t/a/branches/compare/v2%0Dv1"
    assert bitbucket.commit("abc") == "https://bitbucket.org/t/a/commits/abc"
    assert bitbucket.link_references("Merged in x (pull request #4)") == (
        "Merged in x (pull request [#4](https://bitbucket.org/t/a/pull-requests/4))"
    )
    gitea = Forge("gitea", "https://codeberg.org/o/r")
    assert gitea.link_references("(#3)") == "([#3](https://codeberg.org/o/r/issues/3))"


def test_issue_references_and_what_is_left_alone() -> None:
    github = Forge("github", "https://github.com/o/r")
    assert github.link_references("resolve the race (fix #22999)") == (
        "resolve the race (fix [#22999](https://github.com/o/r/issues/22999))"
    )
    for text in (
        "see other/repo#12",  # another repository's issue
        "keep `#12` in code",
        "colour &#35;12",
        "the C# compiler",
        "url https://x.org/#12",
        "already [#12](https://github.com/o/r/issues/12)",
    ):
        assert github.link_references(text) == text


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "repo")
    r.commit("chore: init")
    r.tag("v1.0.0")
    r.commit("feat(api): add the thing (#123)")
    r.commit("fix: handle it\n\nBREAKING CHANGE: see #124 for the migration")
    r.tag("v1.1.0")
    r.git("remote", "add", "origin", "git@github.com:acme/widgets.git")
    return r


def test_markdown_links_releases_commits_and_pull_requests(repo: Repo) -> None:
    text = repo.markdown("v1.0.0", "v1.1.0")
    base = "https://github.com/acme/widgets"
    lines = text.splitlines()
    assert lines[0] == f"## [1.1.0]({base}/compare/v1.0.0...v1.1.0) - {repo.date('v1.1.0')}"
    sha = repo.sha("v1.1.0~1")
    assert (
        f"- **api:** add the thing ([#123]({base}/issues/123)) ([`{sha[:7]}`]({base}/commit/{sha}))"
        in lines
    )
    assert f"  - see [#124]({base}/issues/124) for the migration" in lines
    doc = repo.json("v1.0.0", "v1.1.0")
    assert doc["repository"] == {"forge": "github", "url": base}
    assert doc["releases"][0]["compare_url"] == f"{base}/compare/v1.0.0...v1.1.0"
    assert doc["sections"][1]["commits"][0]["subject"] == "add the thing (#123)"  # JSON: raw


def test_unreleased_compares_with_head(repo: Repo) -> None:
    repo.commit("fix: later")
    text = repo.markdown()
    assert text.startswith(
        "## [Unreleased](https://github.com/acme/widgets/compare/v1.1.0...HEAD)\n"
    )


def test_no_links_when_asked_or_without_a_remote(repo: Repo, tmp_path: Path) -> None:
    text = repo.markdown("v1.0.0", "v1.1.0", "--no-links")
    assert "https://" not in text
    assert text.startswith(f"## [1.1.0] - {repo.date('v1.1.0')}\n")
    assert "- **api:** add the thing (#123) (`" in text
    assert repo.json("v1.0.0", "v1.1.0", "--no-links")["repository"] is None
    repo.git("remote", "set-url", "origin", str(tmp_path / "elsewhere.git"))
    assert "https://" not in repo.markdown("v1.0.0", "v1.1.0")
    repo.git("remote", "remove", "origin")
    assert "https://" not in repo.markdown("v1.0.0", "v1.1.0")


def test_a_token_in_the_remote_url_never_reaches_the_output(repo: Repo) -> None:
    repo.git("remote", "set-url", "origin", "https://x-access-token:ghs_SECRET1@github.com/a/b.git")
    out = repo.markdown("v1.0.0", "v1.1.0") + repo.cli("v1.0.0", "v1.1.0", "-f", "json").out
    assert "SECRET1" not in out and "x-access-token" not in out
    assert "https://github.com/a/b/commit/" in out
