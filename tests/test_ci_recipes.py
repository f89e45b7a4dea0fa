"""The CI recipes of docs/ci/, played against real git: a bare origin, a pull request that
creates release 1.2.0 and bumps a service, the plan comment, the merge, `apply --commit` of
the reviewed plan, the push; then the commit's files, the tags on origin, the CHANGELOG
section, and a second run that changes nothing.

Each recipe's own shell steps run here, unchanged, in bash on fresh clones of the origin,
on the example as shipped (its .gitignore and settings untouched) and its `local`
environment (the only one that needs no infrastructure; the recipes default to `staging`).
What a test cannot do is talk to GitHub or GitLab: the steps (or `curl` lines) that call
their APIs are listed below and replaced by what they would produce (the plan artifact, a
sample of the review API's JSON); every other step runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.conftest import EXAMPLE_PARTS, REPO, git, run_cli

GITHUB = REPO / "docs" / "ci" / "github-actions.yml"
GITLAB = REPO / "docs" / "ci" / "gitlab-ci.yml"
DATA = Path(__file__).parent / "data"
PR = 7
BRANCH = "release-1.2.0"

# Steps of the GitHub workflow that need GitHub (its API, its artifact store, pip's index):
# what each would produce is set up by the test instead.
GITHUB_API_STEPS = {
    "Install releasectl",  # releasectl is this checkout, installed in the test's venv
    "Post or update the plan comment",  # the comment is plan.md, asserted below
    "Download the reviewed plan",  # the artifact: the plan job's plan.json
    "Fetch the pull request's reviews",  # tests/data/github_reviews.json
}
GITHUB_ACTIONS = {"actions/checkout@v4", "actions/setup-python@v5", "actions/upload-artifact@v4"}


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text())


def tool_env(**extra: str) -> dict[str, str]:
    """The process environment with this venv's releasectl first on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, **extra}


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def releasectl(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["releasectl", *args], cwd=cwd, env=tool_env(), capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"releasectl {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


# --- the story, the same for every recipe ---------------------------------------------------


@dataclass
class Origin:
    bare: Path
    dev: Path
    head_sha: str = ""  # the pull request's head commit

    def clone(self, dest: Path, branch: str = "main") -> Path:
        """A CI checkout: a fresh clone with all history and tags (fetch-depth: 0)."""
        git(dest.parent, "clone", "-q", "--branch", branch, str(self.bare), dest.name)
        return dest

    def remote(self, *args: str) -> str:
        return git(self.bare, *args)


def pull_request(tmp_path: Path, recipe_path: Path, recipe_file: Path) -> Origin:
    """origin with the example as shipped; a newcomer's clone runs the README's first command;
    their branch creates release 1.2.0 and bumps auth-service, and is pushed."""
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(bare, "config", "receive.advertisePushOptions", "true")  # as GitLab's server does
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    for part in EXAMPLE_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, seed / part)
        else:
            shutil.copy2(src, seed / part)
    (seed / recipe_path).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(recipe_file, seed / recipe_path)
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "chore: the Rust Security Platform workspace")
    git(seed, "push", "-q", str(bare), "main")

    origin = Origin(bare, tmp_path / "dev")
    origin.clone(origin.dev)
    dev = origin.dev
    # the README's first command, on the fresh clone (releasectl is installed already)
    releasectl(dev, "plan")
    releasectl(dev, "apply", "--yes")
    releasectl(dev, "status")
    git(dev, "checkout", "-q", "-b", BRANCH)
    releasectl(dev, "release", "create", "1.2.0", "-m", "Faster sessions")
    releasectl(dev, "version", "bump", "auth-service", "minor")
    git(dev, "add", "releases/1.2.0.yaml")
    git(dev, "commit", "-q", "-m", "feat(auth): faster session lookups in auth-service 1.4.0")
    git(dev, "push", "-q", "origin", BRANCH)
    origin.head_sha = git(dev, "rev-parse", "HEAD").strip()
    return origin


def merge(origin: Origin) -> str:
    dev = origin.dev
    git(dev, "checkout", "-q", "main")
    git(dev, "merge", "-q", "--no-ff", BRANCH, "-m", f"Merge pull request #{PR} from {BRANCH}")
    git(dev, "push", "-q", "origin", "main")
    return git(dev, "rev-parse", "HEAD").strip()


def check_comment(comment: str) -> None:
    assert comment.startswith("<!-- releasectl:plan env=local -->\n")
    assert "release - → **1.2.0**" in comment  # the CI clone has no recorded state yet
    assert "| 8 | 6 | 0 | 2 | 5 of 6 |" in comment  # steps, up, down, deploy, backups
    assert "| 8 | `auth-service` | deploy | - → 1.4.0 |" in comment


def check_release(origin: Origin, merged: str) -> None:
    head = origin.remote("rev-parse", "main").strip()
    assert origin.remote("rev-parse", f"{head}^") == merged + "\n"  # one commit on the merge
    files = set(origin.remote("show", "--name-only", "--format=", head).split())
    assert files == {
        ".releasectl/state/local.json",
        ".releasectl/history/local.jsonl",
        "CHANGELOG.md",
        ".releasectl/packages/rust-security-platform-1.2.0.sha256",
    }
    message = origin.remote("log", "-1", "--format=%B", head)
    assert message.startswith("release(local): apply 1.2.0 [plan ")
    tags = set(origin.remote("tag", "--points-at", head).split())
    assert tags == {"v1.2.0", "auth-service@1.4.0", "policy-service@1.1.0"}
    changelog = origin.remote("show", f"{head}:CHANGELOG.md")
    section = changelog.split("## [1.2.0]", 1)[1].split("\n## ", 1)[0]
    assert "faster session lookups in auth-service 1.4.0" in section
    state = json.loads(origin.remote("show", f"{head}:.releasectl/state/local.json"))
    assert state["release"] == "1.2.0"
    assert state["components"]["auth-service"]["version"] == "1.4.0"


def snapshot(origin: Origin) -> tuple[str, str]:
    return origin.remote("rev-parse", "main"), origin.remote("show-ref", "--tags")


# --- GitHub Actions -------------------------------------------------------------------------

EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
PATH_EXPR = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*$")


def evaluate(text: str, context: dict[str, Any]) -> str:
    """`${{ a.b.c }}` from the context, as GitHub does ('' when missing); anything but a plain
    property path fails the test, so the recipe keeps its expressions in `env:` blocks."""

    def one(match: re.Match[str]) -> str:
        expr = match[1]
        assert PATH_EXPR.match(expr), f"not a plain property path: {expr!r}"
        value: Any = context
        for key in expr.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        return (
            "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        )

    return EXPR.sub(one, text)


@dataclass
class GitHubRun:
    workflow: dict[str, Any]
    context: dict[str, Any]
    temp: Path
    replaced: dict[str, Callable[[], object]] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    github_env: dict[str, str] = field(default_factory=dict)

    def job(self, name: str, cwd: Path) -> None:
        job = self.workflow["jobs"][name]
        steps_ctx: dict[str, Any] = {}
        self.context["steps"] = steps_ctx
        base = {k: evaluate(str(v), self.context) for k, v in self.workflow["env"].items()}
        base["RELEASECTL_ENV"] = "local"  # the example's environment without infrastructure
        self.context["env"] = base
        files = {n: self.temp / f"{name}-{n}" for n in ("output", "env", "summary")}
        for path in files.values():
            path.write_text("")
        for step in job["steps"]:
            title = step["name"]
            if "uses" in step:
                assert step["uses"] in GITHUB_ACTIONS, step["uses"]
                continue
            if title in GITHUB_API_STEPS:
                self.replaced.pop(title, lambda: None)()
                continue
            env = tool_env(
                **base,
                **self.github_env,
                **{k: evaluate(str(v), self.context) for k, v in (step.get("env") or {}).items()},
                GITHUB_OUTPUT=str(files["output"]),
                GITHUB_ENV=str(files["env"]),
                GITHUB_STEP_SUMMARY=str(files["summary"]),
                GITHUB_REPOSITORY="acme/platform",
                GITHUB_WORKSPACE=str(cwd),
                RUNNER_TEMP=str(self.temp),
                CI="true",
            )
            files["output"].write_text("")
            proc = bash(step["run"], cwd, env)
            assert proc.returncode == 0, f"step {title!r}:\n{proc.stdout}\n{proc.stderr}"
            self.ran.append(title)
            outputs = dict(
                line.split("=", 1) for line in files["output"].read_text().splitlines() if line
            )
            if step.get("id"):
                steps_ctx[step["id"]] = {"outputs": outputs}
            self.github_env = dict(
                line.split("=", 1) for line in files["env"].read_text().splitlines() if line
            )

    def summary(self, name: str) -> str:
        return (self.temp / f"{name}-summary").read_text()


def github_context(origin: Origin, merged: bool) -> dict[str, Any]:
    return {
        "github": {
            "token": "not-used",
            "repository": "acme/platform",
            "workflow": "releasectl",
            "event": {
                "action": "closed" if merged else "synchronize",
                "pull_request": {
                    "number": PR,
                    "merged": merged,
                    "head": {"sha": origin.head_sha},
                    "base": {"ref": "main"},
                    "merged_by": {"login": "carol"},
                },
            },
        },
        "secrets": {},
    }


def reviews_sample(origin: Origin, dest: Path) -> None:
    """What `gh api --paginate .../reviews | jq -s 'add'` writes, from a sample of the API."""
    older = git(origin.dev, "rev-parse", f"{origin.head_sha}^").strip()
    pages = (DATA / "github_reviews.json").read_text()
    pages = pages.replace("@HEAD_SHA@", origin.head_sha).replace("@OLDER_SHA@", older)
    decoder, items, at = json.JSONDecoder(), [], 0
    while at < len(pages.strip()):
        page, at = decoder.raw_decode(pages, at)
        items.extend(page)
        at = len(pages) - len(pages[at:].lstrip())
    dest.write_text(json.dumps(items))


def test_github_actions_recipe(tmp_path: Path) -> None:
    workflow = load_yaml(GITHUB)
    origin = pull_request(tmp_path, Path(".github/workflows/releasectl.yml"), GITHUB)
    on = workflow["on"]
    assert set(on["pull_request"]["paths"]) == {"releases/**", "migrations/**", "releasectl.yaml"}
    assert "closed" in on["pull_request"]["types"]

    # the pull request: its plan, the comment
    pr_temp = tmp_path / "pr-runner"
    pr_temp.mkdir()
    pr_run = GitHubRun(workflow, github_context(origin, merged=False), pr_temp)
    pr_checkout = origin.clone(tmp_path / "ci-pr", BRANCH)
    pr_run.job("plan", pr_checkout)
    assert pr_run.ran == ["Plan", "Fail when no plan could be made"]
    comment = (pr_checkout / "plan.md").read_text()
    check_comment(comment)
    assert comment in pr_run.summary("plan")
    reviewed = json.loads((pr_checkout / "plan.json").read_text())
    assert reviewed["release"] == {"from": None, "to": "1.2.0"}

    # the merge, and the apply job of the closed pull request
    merged = merge(origin)

    def apply_run(name: str) -> GitHubRun:
        temp = tmp_path / f"{name}-runner"
        temp.mkdir()
        run = GitHubRun(workflow, github_context(origin, merged=True), temp)
        run.replaced = {
            "Download the reviewed plan": lambda: shutil.copy2(
                pr_checkout / "plan.json", temp / "plan.json"
            ),
            "Fetch the pull request's reviews": lambda: reviews_sample(
                origin, temp / "reviews.json"
            ),
        }
        run.job("apply", origin.clone(tmp_path / name))
        return run

    first = apply_run("ci-apply")
    assert first.ran == [
        "Count approvals",
        "Apply the reviewed plan and commit back",
        "Push the release commit and tags",
    ]
    assert first.replaced == {}  # the stand-ins were used
    # latest decisive review approving the head commit: not alice (changes requested), bob
    # (comments only), erin (an older commit) or frank (dismissed)
    assert first.github_env["RELEASECTL_APPROVALS"] == "carol,dave"
    check_release(origin, merged)

    # the job run again (a re-run of the workflow): the reviewed plan was applied already
    before = snapshot(origin)
    apply_run("ci-apply-again")
    assert snapshot(origin) == before


# --- GitLab CI ------------------------------------------------------------------------------


def gitlab_lines(config: dict[str, Any], job: str) -> tuple[list[str], list[str]]:
    """The job's shell lines that run here, and the ones that talk to the GitLab API (curl)
    or install (apt-get, pip: releasectl is this checkout)."""
    spec = config[job]
    base = config[spec["extends"]]
    run: list[str] = []
    skipped: list[str] = []
    for line in [*base["before_script"], *spec["script"]]:
        (skipped if re.search(r"\bcurl\b|apt-get|pip install", line) else run).append(line)
    return run, skipped


def gitlab_job(config: dict[str, Any], job: str, cwd: Path, variables: dict[str, str]) -> str:
    lines, _ = gitlab_lines(config, job)
    env = tool_env(**{**{k: str(v) for k, v in config["variables"].items()}, **variables})
    proc = bash("\n".join(lines), cwd, env)  # one shell, as the runner does
    assert proc.returncode == 0, f"{job}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_gitlab_ci_recipe(tmp_path: Path) -> None:
    config = load_yaml(GITLAB)
    _, plan_api = gitlab_lines(config, "releasectl-plan")
    _, apply_api = gitlab_lines(config, "releasectl-apply")
    assert len(plan_api) == 2 + 2 and len(apply_api) == 2 + 3  # install + the API calls
    assert all("PRIVATE-TOKEN" in line for line in plan_api + apply_api if "curl" in line)
    origin = pull_request(tmp_path, Path(".gitlab-ci.yml"), GITLAB)
    common = {"RELEASECTL_ENV": "local", "CI_DEFAULT_BRANCH": "main", "CI_SERVER_HOST": "gitlab"}

    temp = tmp_path / "mr-tmp"
    mr = origin.clone(tmp_path / "ci-mr", BRANCH)
    gitlab_job(config, "releasectl-plan", mr, {**common, "RELEASECTL_TMP": str(temp)})
    check_comment((mr / "plan.md").read_text())
    note = json.loads((temp / "note.json").read_text())  # the body the API call would send
    assert note["body"] == (mr / "plan.md").read_text()

    merged = merge(origin)

    def apply(name: str) -> str:
        temp = tmp_path / f"{name}-tmp"
        temp.mkdir()
        shutil.copy2(mr / "plan.json", temp / "plan.json")  # the MR pipeline's artifact
        shutil.copy2(DATA / "gitlab_approvals.json", temp / "approvals.json")
        variables = {
            **common,
            "RELEASECTL_TMP": str(temp),
            "RELEASECTL_PUSH_URL": str(origin.bare),
            "CI_COMMIT_BRANCH": "main",
            "CI_COMMIT_SHA": merged,
            "GITLAB_USER_LOGIN": "carol",
        }
        return gitlab_job(config, "releasectl-apply", origin.clone(tmp_path / name), variables)

    out = apply("ci-apply")
    assert "approved by: carol,dave" in out
    check_release(origin, merged)
    before = snapshot(origin)
    apply("ci-apply-again")
    assert snapshot(origin) == before


# --- pre-commit -----------------------------------------------------------------------------


def test_pre_commit_hook_validates_the_workspace(example: Path) -> None:
    hooks = load_yaml(REPO / ".pre-commit-hooks.yaml")
    hook = next(h for h in hooks if h["id"] == "releasectl-validate")
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    tracked = git(example, "ls-files").split()
    matched = {t for t in tracked if files.search(t)}
    assert {"releasectl.yaml", "releases/1.1.0.yaml", "authz/policies.cedar"} <= matched
    assert any(t.startswith("migrations/redis/") for t in matched)
    assert not any(t.startswith(("schemas/", ".gitignore")) for t in matched)
    entry = hook["entry"].split()
    assert entry[0] == "releasectl"
    assert run_cli(*entry[1:], cwd=example).code == 0
    (example / "releases/1.1.0.yaml").write_text("version: [unclosed\n")
    broken = run_cli(*entry[1:], cwd=example)
    assert broken.code == 1 and "releases/1.1.0.yaml" in broken.err
