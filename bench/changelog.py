"""`releasectl changelog` against git-cliff and a bare `git log`: one release, many releases
and the whole history, on a generated repository (50,000 commits, 200 release tags) or on a
real one (`--repo`, e.g. a clone of nuxt/nuxt or vitejs/vite).

The generated repository is written in one `git fast-import` stream (a few seconds):
conventional commits of every type in a realistic mix (fixes and features most), 60% with a
scope, breaking ones by `!` and by `BREAKING CHANGE:` / `BREAKING-CHANGE:` footers, bodies and
`Refs:` footers, about 6% non-conventional subjects, and short topic branches merged back with a
merge commit. A release tag (annotated) falls every 250 commits.

Each range is timed with every tool as a child process, stdout to a file, the tools taking
turns (one run of each, then the next round) so that load from elsewhere on the machine falls
on all of them alike; the figure is the median wall time, with the median CPU time (user +
system, the child and its git processes) beside it. Timed per range:

- releasectl JSON (a section per release inside the range) and Markdown;
- releasectl JSON with the split by release turned off (`--tag-pattern` that matches nothing):
  the difference is what the split costs, set against one `git for-each-ref refs/tags`;
- `git log RANGE` (default format) and the exact `git log -z` releasectl runs;
- git-cliff rendering Markdown with a Keep-a-Changelog template and with `--context` (JSON);
  the speed-up is taken against the faster of the two.

Correctness, in the same run: for every commit both tools read as conventional, the type and
the breaking flag must agree; every commit must sit in the same release in both (git-cliff
splits its log at each tag; releasectl assigns each commit to the oldest release that reaches
it, which differs only where a branch forks before a release and merges after it). Merge
commits are left out of the comparison (the two tools keep different ones). On the generated
repository the counts must also equal what the generator wrote, and any difference exits 1;
on a real repository the differences are printed.

    .venv/bin/python bench/changelog.py                 # generated, 50,000 commits, 3 rounds
    .venv/bin/python bench/changelog.py --commits 10000 --tags 40 --repeat 1
    .venv/bin/python bench/changelog.py --repo /path/to/nuxt --repeat 5
    .venv/bin/python bench/changelog.py --repo /path/to/nuxt --range v4.0.1..v4.0.2 --range full
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


def cpu_of_children() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Timing:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def run_once(argv: Sequence[str], cwd: Path, out: Path, timing: Timing) -> None:
    with out.open("wb") as fh:
        c0 = cpu_of_children()
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=cwd, stdout=fh, stderr=subprocess.DEVNULL, check=True)
        timing.wall.append(time.perf_counter() - t0)
        timing.cpu.append(cpu_of_children() - c0)


def commands(repo: Path, rev: str | None, cliff_cfg: Path) -> dict[str, list[str]]:
    """What is timed for one range (None: the whole history)."""
    if rev is None:
        ours = ["changelog", "--from-root"]
        git_range = ["HEAD"]
        cliff_range: list[str] = []
    else:
        ours = ["changelog", rev]
        git_range = [rev]
        cliff_range = [rev]
    fmt = "--format=%H%x00%P%x00%B"
    cliff = [GIT_CLIFF, "--config", str(cliff_cfg), *cliff_range]
    return {
        "releasectl json": [RELEASECTL, *ours, "--format", "json"],
        "releasectl md": [RELEASECTL, *ours],
        "releasectl json, no split": [
            RELEASECTL,
            *ours,
            "--format",
            "json",
            "--tag-pattern",
            "no-such-tag-*",
        ],
        "git log": ["git", "--no-pager", "log", *git_range],
        "git log -z (ours)": ["git", "--no-pager", "log", "-z", fmt, *git_range],
        "git for-each-ref": ["git", "for-each-ref", "refs/tags"],
        "git-cliff md": cliff,
        "git-cliff --context": [*cliff, "--context"],
    }


def merges(repo: Path, rev: str | None) -> set[str]:
    out = subprocess.run(
        ["git", "rev-list", "--merges", rev or "HEAD"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


@dataclass
class Check:
    commits: int = 0
    releases: int = 0
    both_conventional: int = 0
    type_differs: int = 0
    breaking_differs: int = 0
    only_ours: int = 0
    only_cliff: int = 0
    release_differs: int = 0
    compared_releases: int = 0
    types: collections.Counter[str] = field(default_factory=collections.Counter)
    breaking: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.type_differs or self.breaking_differs or self.release_differs)


def compare(ours: dict[str, object], cliff: list[dict[str, object]], skip: set[str]) -> Check:
    check = Check()
    mine: dict[str, tuple[str | None, bool, str | None]] = {}
    releases = ours["releases"]
    assert isinstance(releases, list)
    check.releases = len(releases)
    for release in releases:
        for section in release["sections"]:
            for c in section["commits"]:
                mine[c["sha"]] = (c["type"], c["breaking"], release["commit"])
    for sha, (type_, breaking, _) in mine.items():
        if sha in skip:
            continue
        check.commits += 1
        if type_ is not None:
            check.types[type_] += 1
            check.breaking += breaking
    for release in cliff:
        # releases are compared by the commit they end at: where several tags sit on one
        # commit (`3.1.1` and `v3.1.1`) the two tools may name it differently
        tag = release.get("commit_id")
        commits = release["commits"]
        assert isinstance(commits, list)
        for c in commits:
            sha = c["id"]
            if c.get("merge_commit") or sha in skip or sha not in mine:
                continue
            type_, breaking, our_end = mine[sha]
            check.compared_releases += 1
            if our_end != tag and (tag is not None or our_end != ours["to_commit"]):
                check.release_differs += 1
                if len(check.examples) < 5:
                    check.examples.append(
                        f"{sha[:10]}: releasectl ends at {str(our_end)[:10]}, "
                        f"git-cliff at {str(tag)[:10]}"
                    )
            conventional = bool(c.get("conventional"))
            if conventional and type_ is not None:
                check.both_conventional += 1
                if str(c["group"]).lower() != type_:
                    check.type_differs += 1
                    if len(check.examples) < 5:
                        check.examples.append(f"{sha[:10]}: type {type_} / {c['group']}")
                if bool(c.get("breaking")) != breaking:
                    check.breaking_differs += 1
                    if len(check.examples) < 5:
                        check.examples.append(f"{sha[:10]}: breaking {breaking} / {c['breaking']}")
            elif conventional:
                check.only_cliff += 1
            elif type_ is not None:
                check.only_ours += 1
    return check


@dataclass
class Row:
    name: str
    times: dict[str, Timing]
    check: Check


def measure(ranges: list[tuple[str, str | None]], repo: Path, work: Path, repeat: int) -> list[Row]:
    cliff_cfg = work / "cliff.toml"
    out = work / "out"
    plans = {name: commands(repo, rev, cliff_cfg) for name, rev in ranges}
    times = {name: {k: Timing() for k in plan} for name, plan in plans.items()}
    for round_ in range(repeat):
        for name, plan in plans.items():
            for what, argv in plan.items():
                slug = what.replace(" ", "_").replace("/", "")
                run_once(argv, repo, out / f"{slug}.{abs(hash(name))}.out", times[name][what])
        print(f"  round {round_ + 1}/{repeat} done", file=sys.stderr)
    rows = []
    for name, rev in ranges:
        key = abs(hash(name))
        ours = json.loads((out / f"releasectl_json.{key}.out").read_text())
        cliff = json.loads((out / f"git-cliff_--context.{key}.out").read_text())
        rows.append(Row(name, times[name], compare(ours, cliff, merges(repo, rev))))
    return rows


def version(argv: Sequence[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def pick_ranges(repo: Path) -> list[tuple[str, str | None]]:
    """One release, about 12,000 commits, the whole history, from a real repository's tags."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, check=True
        ).stdout

    newest = git("describe", "--tags", "--abbrev=0", "--match=v*", "HEAD").strip()
    previous = git("describe", "--tags", "--abbrev=0", "--match=v*", f"{newest}^").strip()
    best: tuple[int, str] | None = None
    for tag in git("tag", "--merged", newest, "--list", "v*").split():
        count = int(git("rev-list", "--count", f"{tag}..{newest}"))
        if best is None or abs(count - 12_000) < abs(best[0] - 12_000):
            best = (count, tag)
    assert best is not None
    return [
        (f"one release {previous}..{newest}", f"{previous}..{newest}"),
        (f"{best[1]}..{newest}", f"{best[1]}..{newest}"),
        ("full history", None),
    ]


def report(rows: list[Row], made: Generated | None, title: str, repeat: int) -> bool:
    print()
    print(
        f"{title}; machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at the end, "
        f"Python {platform.python_version()}, {version(['git', '--version'])}, "
        f"{version([GIT_CLIFF, '--version'])}; median of {repeat} interleaved rounds, "
        "seconds (CPU seconds in brackets)"
    )
    print(
        "| range | commits | releases | releasectl json | releasectl md | no split | "
        "git log | git log -z | for-each-ref | git-cliff md | git-cliff --context | "
        "git-cliff / releasectl | releasectl / git log |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ok = True
    for r in rows:
        t = r.times

        def cell(key: str, t: dict[str, Timing] = t) -> str:
            return f"{t[key].median:.3f} ({t[key].cpu_median:.3f})"

        ours = t["releasectl json"].median
        cliff = min(t["git-cliff md"].median, t["git-cliff --context"].median)
        print(
            f"| {r.name} | {r.check.commits} | {r.check.releases} | {cell('releasectl json')} "
            f"| {cell('releasectl md')} | {cell('releasectl json, no split')} "
            f"| {cell('git log')} | {cell('git log -z (ours)')} | {cell('git for-each-ref')} "
            f"| {cell('git-cliff md')} | {cell('git-cliff --context')} "
            f"| {cliff / ours:.1f}x | {ours / t['git log'].median:.2f}x |"
        )
    print()
    for r in rows:
        c = r.check
        split = r.times["releasectl json"].median - r.times["releasectl json, no split"].median
        print(
            f"- {r.name}: {c.both_conventional} commits conventional for both, type differs "
            f"{c.type_differs}, breaking differs {c.breaking_differs}; conventional only for "
            f"releasectl {c.only_ours}, only for git-cliff {c.only_cliff}; release differs "
            f"{c.release_differs} of {c.compared_releases}; split by {c.releases} releases "
            f"costs {split * 1000:+.0f} ms (one for-each-ref: "
            f"{r.times['git for-each-ref'].median * 1000:.0f} ms)"
        )
        for example in c.examples:
            print(f"    {example}")
        if made is not None and r.name == "full history":
            same = c.types == made.types and c.breaking == made.breaking
            print(f"  generator's counts: {'same' if same else 'DIFFERENT'}")
            ok = ok and same
        if made is not None:
            ok = ok and c.ok
    return ok


def compile_bytecode() -> None:
    """A pip install has its bytecode compiled; an editable one in an environment with
    PYTHONDONTWRITEBYTECODE would recompile every module on every run."""
    import compileall

    package = Path(__file__).resolve().parent.parent / "releasectl"
    compileall.compile_dir(str(package), quiet=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=50_000)
    parser.add_argument("--tags", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--repo", type=Path, help="a real repository (work tree) instead")
    parser.add_argument(
        "--range", action="append", dest="ranges", help="A..B (repeatable; 'full' for all)"
    )
    parser.add_argument("--workdir", type=Path, help="where to build (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if shutil.which(GIT_CLIFF) is None:
        print("git-cliff not found: pip install git-cliff (the bench extra)", file=sys.stderr)
        return 1
    compile_bytecode()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="releasectl-changelog-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "out").mkdir(exist_ok=True)
    (work / "cliff.toml").write_text(CLIFF_CONFIG)
    os.environ.update({"GIT_CONFIG_NOSYSTEM": "1", "NO_COLOR": "1"})
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        made: Generated | None = None
        if args.repo is not None:
            repo = args.repo.resolve()
            described = version(["git", "-C", str(repo), "describe", "--tags"])
            title = f"repository {repo.name} at {described}"
            ranges = (
                [(r, None if r == "full" else r) for r in args.ranges]
                if args.ranges
                else pick_ranges(repo)
            )
        else:
            os.environ["HOME"] = str(work)
            repo = work / "repo"
            t0 = time.perf_counter()
            made = generate(repo, args.commits, args.tags)
            print(
                f"generated {made.commits} commits ({made.merges} merges), {len(made.tags)} "
                f"tags in {time.perf_counter() - t0:.1f} s"
            )
            title = f"generated repository, {made.commits} commits, {len(made.tags)} tags"
            tags = made.tags
            mid = len(tags) * 3 // 4
            span = min(48, len(tags) - 1)
            low = max(0, min(len(tags) // 4 - 1, len(tags) - 1 - span))
            ranges = [
                (f"one release {tags[mid - 1]}..{tags[mid]}", f"{tags[mid - 1]}..{tags[mid]}"),
                (
                    f"{span} releases {tags[low]}..{tags[low + span]}",
                    f"{tags[low]}..{tags[low + span]}",
                ),
                ("full history", None),
            ]
        rows = measure(ranges, repo, work, args.repeat)
        ok = report(rows, made, title, args.repeat)
        return 0 if ok else 1
    finally:
        if args.keep or args.workdir:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
