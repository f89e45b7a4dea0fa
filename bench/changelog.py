"""`releasectl changelog --format json` against git-cliff and a bare `git log`, on a generated
repository of 50,000 commits and 200 release tags.

The repository is written in one `git fast-import` stream (a few seconds): conventional commits
of every type in a realistic mix (fixes and features most), 60% with a scope, breaking ones by
`!` and by `BREAKING CHANGE:` / `BREAKING-CHANGE:` footers, bodies and `Refs:` footers, about 6%
non-conventional subjects, and short topic branches merged back with a merge commit. A release
tag (annotated) falls every 250 commits.

Three ranges are timed in the same run, each tool as a child process with stdout to a file:
one release (tag..tag, about 250 commits), about 12,000 commits (48 releases) and the full
history. git-cliff runs twice per range: rendering Markdown with a Keep-a-Changelog template
(its ordinary use) and `--context` (its JSON); the speed-up is taken against the faster.
"bare git log" is `git log RANGE` with its default format.

Correctness: for every range, the number of commits of each conventional type and of breaking
ones in releasectl's JSON must equal what git-cliff's `--context` parses from the same range
(and, for the full history, what the generator wrote). A mismatch exits 1.

    .venv/bin/python bench/changelog.py                 # 50,000 commits, 200 tags, 3 runs
    .venv/bin/python bench/changelog.py --commits 10000 --tags 40 --repeat 1
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
RELEASECTL = str(VENV_BIN / "releasectl")
GIT_CLIFF = str(VENV_BIN / "git-cliff") if (VENV_BIN / "git-cliff").exists() else "git-cliff"

TYPES = [
    ("fix", 28),
    ("feat", 22),
    ("chore", 10),
    ("docs", 8),
    ("refactor", 8),
    ("test", 6),
    ("perf", 3),
    ("build", 3),
    ("ci", 3),
    ("style", 2),
    ("revert", 1),
    (None, 6),  # not conventional
]
SCOPES = ["auth", "api", "redis", "policies", "db", "cli", "config", "ui", "core", "deps"]
VERBS = ["add", "remove", "rework", "handle", "speed up", "document", "validate", "cache"]
NOUNS = [
    "token refresh",
    "rate limits",
    "policy cache",
    "session store",
    "login flow",
    "audit log",
    "config loader",
    "OIDC discovery",
]
PLAIN = [
    "Update README.md",
    "WIP on login page",
    "Fix typo in docs",
    "Bump version",
    "Tidy up imports after review",
    "Release prep",
]

CLIFF_CONFIG = '''[changelog]
header = "# Changelog\\n"
body = """
{% if version %}## [{{ version | trim_start_matches(pat="v") }}] - \
{{ timestamp | date(format="%Y-%m-%d") }}{% else %}## [Unreleased]{% endif %}
{% for group, commits in commits | group_by(attribute="group") %}
### {{ group | upper_first }}
{% for commit in commits %}- {% if commit.scope %}**{{ commit.scope }}:** {% endif %}\
{% if commit.breaking %}[**breaking**] {% endif %}{{ commit.message | split(pat="\\n") | first }} \
({{ commit.id | truncate(length=7, end="") }})
{% endfor %}{% endfor %}
"""
trim = true

[git]
conventional_commits = true
filter_unconventional = false
split_commits = false
filter_commits = false
protect_breaking_commits = true
# Keep every commit; with no parser matching, a conventional commit's group is its type.
commit_parsers = [{ message = "^Merge ", skip = true }]
'''


# --- the repository ----------------------------------------------------------------------


@dataclass
class Generated:
    commits: int = 0
    merges: int = 0
    types: collections.Counter[str] = field(default_factory=collections.Counter)
    breaking: int = 0
    tags: list[str] = field(default_factory=list)


def message(rnd: random.Random, population: Sequence[str | None], made: Generated) -> str:
    kind = rnd.choice(population)
    if kind is None:
        return rnd.choice(PLAIN) + "\n"
    scope = f"({rnd.choice(SCOPES)})" if rnd.random() < 0.6 else ""
    bang = "!" if kind in ("feat", "fix", "refactor") and rnd.random() < 0.03 else ""
    subject = (
        f"{kind}{scope}{bang}: {rnd.choice(VERBS)} {rnd.choice(NOUNS)} #{rnd.randint(1, 9999)}"
    )
    body = ""
    breaking = bool(bang)
    if rnd.random() < 0.4:
        body += "\n\nThe old code path kept a lock across the network call;\nthis one does not."
    if rnd.random() < 0.01:
        body += "\n\nBREAKING CHANGE: the old behaviour is gone"
        breaking = True
    elif rnd.random() < 0.005:
        body += "\n\nBREAKING-CHANGE: the old flag is removed"
        breaking = True
    if rnd.random() < 0.2:
        body += f"\n\nRefs: #{rnd.randint(1, 999)}\nReviewed-by: Someone <someone@example.com>"
    made.types[kind] += 1
    made.breaking += breaking
    return subject + body + "\n"


def generate(repo: Path, commits: int, tags: int, seed: int = 7) -> Generated:
    """Write the repository with one `git fast-import` stream."""
    rnd = random.Random(seed)
    made = Generated()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    population = [t for t, weight in TYPES for _ in range(weight)]
    out: list[bytes] = []
    start = 1_700_000_000
    mark = 0
    every = commits // tags

    def data(text: str) -> None:
        raw = text.encode()
        out.append(b"data %d\n%s\n" % (len(raw), raw))

    def commit(text: str, parents: Sequence[int], ref: str = "refs/heads/main") -> int:
        nonlocal mark
        mark += 1
        made.commits += 1
        when = start + made.commits * 600
        out.append(
            f"commit {ref}\nmark :{mark}\n"
            f"author Dev {made.commits % 17} <dev{made.commits % 17}@example.com> {when} +0000\n"
            f"committer Dev <dev@example.com> {when} +0000\n".encode()
        )
        data(text)
        if parents:
            out.append(f"from :{parents[0]}\n".encode())
            out.extend(f"merge :{p}\n".encode() for p in parents[1:])
        out.append(f"M 644 inline src/module{made.commits % 40}.txt\n".encode())
        data(f"revision {made.commits}\n")
        return mark

    head = commit("Initial commit\n", [])
    while made.commits < commits:
        if rnd.random() < 0.01 and commits - made.commits > 8:
            side = head
            branch = f"refs/heads/topic/{made.commits}"
            for _ in range(rnd.randint(2, 4)):
                side = commit(message(rnd, population, made), [side], branch)
            made.merges += 1
            head = commit(f"Merge branch 'topic/{made.commits}'\n", [head, side])
        else:
            head = commit(message(rnd, population, made), [head])
        if made.commits // every > len(made.tags) and len(made.tags) < tags:
            number = len(made.tags) + 1
            name = f"v{number // 100}.{number % 100}.0"
            made.tags.append(name)
            when = start + made.commits * 600
            out.append(
                f"tag {name}\nfrom :{head}\n"
                f"tagger Release Bot <bot@example.com> {when} +0000\n".encode()
            )
            data(f"Release {name}\n")
    out.append(b"done\n")
    subprocess.run(
        ["git", "-C", str(repo), "fast-import", "--quiet", "--done"],
        input=b"".join(out),
        check=True,
    )
    subprocess.run(["git", "-C", str(repo), "reset", "-q", "--hard", "main"], check=True)
    return made


# --- measuring ---------------------------------------------------------------------------


def timed(argv: Sequence[str], cwd: Path, out: Path, repeat: int) -> float:
    """Median wall time of `argv` with stdout to `out` (the last run's output stays there)."""
    times = []
    for _ in range(repeat):
        with out.open("wb") as fh:
            t0 = time.perf_counter()
            subprocess.run(argv, cwd=cwd, stdout=fh, stderr=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ours_counts(doc: dict[str, object]) -> tuple[collections.Counter[str], int, int]:
    types: collections.Counter[str] = collections.Counter()
    breaking = total = 0
    sections = doc["sections"]
    assert isinstance(sections, list)
    for section in sections:
        for c in section["commits"]:
            total += 1
            if c["type"] is not None:
                types[c["type"]] += 1
            breaking += c["breaking"]
    return types, breaking, total


def cliff_counts(context: list[dict[str, object]]) -> tuple[collections.Counter[str], int]:
    types: collections.Counter[str] = collections.Counter()
    breaking = 0
    for release in context:
        commits = release["commits"]
        assert isinstance(commits, list)
        for c in commits:
            if c.get("merge_commit"):
                continue
            if c.get("conventional"):
                types[str(c["group"]).lower()] += 1
                breaking += bool(c.get("breaking"))
    return types, breaking


@dataclass
class Row:
    name: str
    commits: int
    ours: float
    git_log: float
    git_log_ours: float
    cliff_md: float
    cliff_json: float
    match: bool


def run_range(
    name: str,
    repo: Path,
    work: Path,
    rev: tuple[str, str] | None,
    repeat: int,
    made: Generated | None,
) -> Row:
    cliff_cfg = work / "cliff.toml"
    if rev is None:
        ours_args = ["changelog", "--from-root", "--format", "json"]
        git_range = ["HEAD"]
        cliff_range: list[str] = []
    else:
        ours_args = ["changelog", rev[0], rev[1], "--format", "json"]
        git_range = [f"{rev[0]}..{rev[1]}"]
        cliff_range = [f"{rev[0]}..{rev[1]}"]
    out = work / "out"
    ours = timed([RELEASECTL, *ours_args], repo, out / "ours.json", repeat)
    git_log = timed(["git", "--no-pager", "log", *git_range], repo, out / "log.txt", repeat)
    fmt = "--format=%H%x00%s%x00%b"
    git_log_ours = timed(
        ["git", "--no-pager", "log", "-z", "--no-merges", fmt, *git_range],
        repo,
        out / "log-z.txt",
        repeat,
    )
    cliff = [GIT_CLIFF, "--config", str(cliff_cfg), *cliff_range]
    cliff_md = timed(cliff, repo, out / "cliff.md", repeat)
    cliff_json = timed([*cliff, "--context"], repo, out / "cliff.json", repeat)

    doc = json.loads((out / "ours.json").read_text())
    types, breaking, total = ours_counts(doc)
    c_types, c_breaking = cliff_counts(json.loads((out / "cliff.json").read_text()))
    match = types == c_types and breaking == c_breaking
    if not match:
        print(f"MISMATCH in {name}:", file=sys.stderr)
        for kind in sorted(types.keys() | c_types.keys()):
            print(
                f"  {kind:10} releasectl {types[kind]:6}  git-cliff {c_types[kind]:6}",
                file=sys.stderr,
            )
        print(f"  breaking   releasectl {breaking:6}  git-cliff {c_breaking:6}", file=sys.stderr)
    if made is not None and (types != made.types or breaking != made.breaking):
        print(f"MISMATCH with the generator in {name}", file=sys.stderr)
        match = False
    print(
        f"  {name}: {total} commits, types "
        + ", ".join(f"{k}={v}" for k, v in sorted(types.items()))
        + f", breaking={breaking} -> {'same as git-cliff' if match else 'DIFFERENT'}"
    )
    return Row(name, total, ours, git_log, git_log_ours, cliff_md, cliff_json, match)


def version(argv: Sequence[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=50_000)
    parser.add_argument("--tags", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--workdir", type=Path, help="where to build (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if shutil.which(GIT_CLIFF) is None:
        print("git-cliff not found: pip install git-cliff (the bench extra)", file=sys.stderr)
        return 1
    work = args.workdir or Path(tempfile.mkdtemp(prefix="releasectl-changelog-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "out").mkdir(exist_ok=True)
    (work / "cliff.toml").write_text(CLIFF_CONFIG)
    os.environ.update({"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(work), "NO_COLOR": "1"})
    repo = work / "repo"
    try:
        t0 = time.perf_counter()
        made = generate(repo, args.commits, args.tags)
        print(
            f"generated {made.commits} commits ({made.merges} merges), {len(made.tags)} tags "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        tags = made.tags
        mid = len(tags) * 3 // 4
        span = min(48, len(tags) - 1)
        low = max(0, min(len(tags) // 4 - 1, len(tags) - 1 - span))
        ranges: list[tuple[str, tuple[str, str] | None, Generated | None]] = [
            (f"one release {tags[mid - 1]}..{tags[mid]}", (tags[mid - 1], tags[mid]), None),
            (
                f"{span} releases {tags[low]}..{tags[low + span]}",
                (tags[low], tags[low + span]),
                None,
            ),
            ("full history", None, made),
        ]
        rows = [run_range(n, repo, work, r, args.repeat, m) for n, r, m in ranges]
        print()
        print(
            f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{version(['git', '--version'])}, {version([GIT_CLIFF, '--version'])}; "
            f"median of {args.repeat} runs, seconds"
        )
        header = (
            "| range | commits | releasectl json | git log | git log -z (ours) | git-cliff md "
            "| git-cliff --context | git-cliff / releasectl | releasectl / git log | counts |"
        )
        print(header)
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in rows:
            speedup = min(r.cliff_md, r.cliff_json) / r.ours
            print(
                f"| {r.name} | {r.commits} | {r.ours:.3f} | {r.git_log:.3f} | {r.git_log_ours:.3f} "
                f"| {r.cliff_md:.3f} | {r.cliff_json:.3f} | {speedup:.1f}x "
                f"| {r.ours / r.git_log:.2f}x | {'match' if r.match else 'MISMATCH'} |"
            )
        full = rows[-1]
        speedup = min(full.cliff_md, full.cliff_json) / full.ours
        ratio = full.ours / full.git_log
        print()
        print(
            f"targets on the full history: >= 20x faster than git-cliff: {speedup:.1f}x "
            f"({'met' if speedup >= 20 else 'NOT met'}); within 3x of git log: {ratio:.2f}x "
            f"({'met' if ratio <= 3 else 'NOT met'})"
        )
        return 0 if all(r.match for r in rows) else 1
    finally:
        if args.keep or args.workdir:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
