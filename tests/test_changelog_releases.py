"""A section per release inside the range (newest first, each with its date), the exact split
of branched history, `--tag-pattern`, and which merge commits stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.changelog_repo import Repo, by_release, subjects


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "repo")
    r.commit("chore: initial layout")
    r.tag("v1.0.0")
    r.commit("feat: one")
    r.commit("fix: two")
    r.tag("v1.1.0", annotated=True)
    r.commit("feat: three")
    r.tag("v1.2.0")
    r.commit("perf: four")
    r.commit("docs: five")
    r.tag("v2.0.0")
    r.commit("fix: six")
    return r


def test_a_range_of_many_releases_has_a_section_each_newest_first(repo: Repo) -> None:
    doc = repo.json("v1.0.0", "HEAD")
    assert by_release(doc) == [
        (None, ["six"]),
        ("2.0.0", ["four", "five"]),
        ("1.2.0", ["three"]),
        ("1.1.0", ["one", "two"]),
    ]
    assert [(r["tag"], r["previous"], r["head"]) for r in doc["releases"]] == [
        (None, "v2.0.0", "HEAD"),
        ("v2.0.0", "v1.2.0", "v2.0.0"),
        ("v1.2.0", "v1.1.0", "v1.2.0"),
        ("v1.1.0", "v1.0.0", "v1.1.0"),
    ]
    assert [r["date"] for r in doc["releases"]] == [
        None,
        repo.date("v2.0.0"),
        repo.date("v1.2.0"),
        repo.git("tag", "-l", "--format=%(creatordate:short)", "v1.1.0").strip(),
    ]
    # the whole range's sections hold the same commits, each once
    whole = sorted(c["sha"] for s in doc["sections"] for c in s["commits"])
    split = sorted(c["sha"] for r in doc["releases"] for s in r["sections"] for c in s["commits"])
    assert whole == split and len(whole) == 6

    text = repo.markdown("v1.0.0", "HEAD")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## [Unreleased]",
        f"## [2.0.0] - {repo.date('v2.0.0')}",
        f"## [1.2.0] - {repo.date('v1.2.0')}",
        f"## [1.1.0] - {doc['releases'][3]['date']}",
    ]
    assert "\n\n## [2.0.0]" in text  # sections separated by a blank line


def test_a_tagged_end_has_no_unreleased_section(repo: Repo) -> None:
    doc = repo.json("v1.1.0..v2.0.0")
    assert by_release(doc) == [("2.0.0", ["four", "five"]), ("1.2.0", ["three"])]
    # the default range: the previous tag .. HEAD, one section
    assert by_release(repo.json()) == [(None, ["six"])]


def test_a_branch_merged_after_a_release_belongs_to_the_later_release(tmp_path: Path) -> None:
    """The topic branch forks before v1.1.0 and is older than it, but ships in v1.2.0: a walk
    in date order would put it in v1.1.0."""
    r = Repo(tmp_path / "branched")
    r.commit("chore: initial layout")
    r.tag("v1.0.0")
    r.git("checkout", "-q", "-b", "topic")
    r.commit("feat: topic work")
    r.git("checkout", "-q", "main")
    r.commit("fix: on main")
    r.tag("v1.1.0")
    r.merge("topic", "Merge branch 'topic'")
    r.commit("feat: after the merge")
    r.tag("v1.2.0")
    assert r.git("log", "--format=%s", "v1.0.0..v1.2.0").splitlines()[-2:] == [
        "fix: on main",
        "feat: topic work",
    ]  # date order: the topic commit is older than v1.1.0's
    doc = r.json("v1.0.0", "v1.2.0")
    assert by_release(doc) == [
        ("1.2.0", ["after the merge", "topic work"]),
        ("1.1.0", ["on main"]),
    ]


def test_tag_pattern_chooses_the_release_tags(tmp_path: Path) -> None:
    r = Repo(tmp_path / "mono")
    r.commit("chore: init")
    r.tag("v1.0.0")
    r.tag("api@0.1.0")
    r.commit("feat(api): one")
    r.tag("api@0.2.0")
    r.commit("feat(web): two")
    r.tag("v1.1.0")
    r.commit("fix(api): three")
    r.tag("api@0.2.1")
    r.commit("fix(web): four")
    everything = r.json("v1.0.0", "HEAD")
    assert [x["tag"] for x in everything["releases"]] == [None, "api@0.2.1", "v1.1.0", "api@0.2.0"]
    api = r.json("--tag-pattern", "api@*")
    assert api["from"] == "api@0.2.1"  # the previous tag of the pattern
    assert by_release(api) == [(None, ["four"])]
    api = r.json("api@0.1.0", "HEAD", "--tag-pattern", "api@*")
    assert by_release(api) == [
        (None, ["four"]),
        ("0.2.1", ["two", "three"]),  # the version is the tag's, without the package
        ("0.2.0", ["one"]),
    ]
    assert r.markdown("api@0.1.0", "api@0.2.1", "--tag-pattern", "api@*").startswith(
        "## [0.2.1] - "
    )
    # a release version resolves through the pattern
    assert r.json("0.2.0", "0.2.1", "--tag-pattern", "api@*")["to_commit"] == r.sha("api@0.2.1")
    web = r.json("v1.0.0", "HEAD", "--tag-pattern", "v*")
    assert by_release(web) == [(None, ["four", "three"]), ("1.1.0", ["two", "one"])]


def test_merges_stay_out_unless_they_carry_the_change(tmp_path: Path) -> None:
    r = Repo(tmp_path / "merges")
    r.commit("chore: init")
    r.tag("v1.0.0")
    # an ordinary merge: its branch's conventional commits speak for it
    r.git("checkout", "-q", "-b", "a")
    r.commit("feat: from branch a")
    r.git("checkout", "-q", "main")
    r.merge("a", "Merge branch 'a'")
    # a conventional merge over conventional commits: still left out (no duplicate)
    r.git("checkout", "-q", "-b", "b")
    r.commit("fix: from branch b")
    r.git("checkout", "-q", "main")
    r.merge("b", "fix: merge branch b (#12)")
    # a conventional merge whose branch commits are not conventional: the merge is the entry
    r.git("checkout", "-q", "-b", "epic")
    r.commit("wip")
    r.commit("more wip")
    r.git("checkout", "-q", "main")
    r.commit("docs: meanwhile on main")
    r.merge("epic", "feat!: the epic merge (#21189)")
    doc = r.json()
    assert subjects(doc) == [
        "the epic merge (#21189)",
        "from branch a",
        "from branch b",
        "meanwhile on main",
        "more wip",
        "wip",
    ]
    everything = r.json("--include-merges")
    assert subjects(everything) == [
        "the epic merge (#21189)",
        "from branch a",
        "merge branch b (#12)",
        "from branch b",
        "meanwhile on main",
        "more wip",
        "wip",
        "Merge branch 'a'",
    ]


def test_several_tags_on_one_commit_make_one_release(tmp_path: Path) -> None:
    r = Repo(tmp_path / "tags")
    r.commit("chore: init")
    r.tag("v1.0.0")
    r.commit("feat: one")
    for name in ("1.1.0", "v1.1.0", "pkg@0.3.0"):
        r.tag(name)
    r.commit("fix: two")
    doc = r.json("v1.0.0", "HEAD")
    assert [(x["version"], x["tag"]) for x in doc["releases"]] == [
        (None, None),
        ("1.1.0", "v1.1.0"),
    ]
    assert r.json("v1.0.0", "pkg@0.3.0")["releases"][0]["tag"] == "pkg@0.3.0"  # as asked
