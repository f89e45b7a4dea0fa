"""`plan --format markdown`, the pull-request comment: its marker, summary table and banners,
steps and rollback in <details>, GitHub's 65,536-character cap (the summary never cut),
several environments in one comment, and a comment for a plan that cannot be made."""

from __future__ import annotations

import json
import re
from pathlib import Path

from releasectl.cli import markdown
from releasectl.models.plan import Plan, ReleaseMove, StateRef, Step
from tests.builders import add_migration, make_workspace, write_release
from tests.conftest import run_cli

SUMMARY_ROW = re.compile(
    r"^\| `(?P<env>[^`]+)` \| (?P<release>[^|]+) \| (?P<steps>\d+) \| "
    r"(?P<up>\d+) \| (?P<down>\d+) \| (?P<deploy>\d+) \| (?P<backup>[^|]+) \|$",
    re.MULTILINE,
)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def scripted(
    root: Path, count: int, *, environments: dict[str, dict[str, object]] | None = None
) -> Path:
    """A workspace whose one `script` component has `count` migrations (no backups)."""
    make_workspace(
        root,
        components={"jobs": {"type": "script"}},
        targets={"jobs": {}},
        releases={"1.0.0": {"jobs": count}},
        environments=environments,
    )
    for n in range(1, count + 1):
        add_migration(
            root,
            "jobs",
            f"{n:04d}_step_{n}",
            {"up.sh": "true\n", "down.sh": "true\n", "migration.yaml": f"description: job {n}\n"},
        )
    return root


def keyed(
    root: Path, count: int, *, environments: dict[str, dict[str, object]] | None = None
) -> Path:
    """A workspace whose one `redis` component has `count` small migrations: thousands of
    steps that plan in seconds (a script's static check starts a shell per file)."""
    target = {"url": "redis+embedded://.releasectl/local/kv.db"}
    make_workspace(
        root,
        components={"kv": {"type": "redis"}},
        targets={"kv": target},
        releases={"1.0.0": {"kv": count}},
        environments={
            name: {**env, "targets": {"kv": target}} for name, env in (environments or {}).items()
        },
    )
    for n in range(1, count + 1):
        add_migration(
            root,
            "kv",
            f"{n:04d}_key_{n}",
            {
                "up.yaml": f"ops:\n  - set: {{key: k{n}, value: v}}\n",
                "down.yaml": f"ops:\n  - del: {{keys: [k{n}]}}\n",
            },
        )
    return root


def test_comment_of_the_example(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    result = run_cli("plan", "--format", "markdown", "--out", out, cwd=example)
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[0] == "<!-- releasectl:plan env=local -->"
    row = SUMMARY_ROW.search(result.out)
    assert row is not None, result.out
    assert row.groupdict() == {
        "env": "local",
        "release": "- → **1.1.0**",
        "steps": "8",
        "up": "6",
        "down": "0",
        "deploy": "2",
        "backup": "5 of 6",
    }
    # the database's SQL migration runs without a backup: a banner above the details says so
    banner = next(line for line in lines if line.startswith("> :floppy_disk:"))
    assert "1 step(s) without a backup" in banner and "`0001_initial_schema`" in banner
    assert result.out.index(banner) < result.out.index("<details>")
    assert (
        "| 3 | `database` | up | 0 → 1 | `0001_initial_schema` | **no** | Users, roles, "
        "sessions, API clients and the audit log |"
    ) in lines
    assert "<details><summary>Rollback (8 steps, if this apply must be undone)</summary>" in lines
    assert "1. `auth-service` deploy 1.3.0 → -" in lines
    digest = json.loads(out.read_text())["digest"]
    assert f"Plan digest `{digest}`, state serial 0 (no recorded state)." in lines
    assert "left out" not in result.out


def test_5000_steps_stay_under_the_limit_with_the_summary_whole(tmp_path: Path) -> None:
    ws = keyed(tmp_path / "ws", 5000)
    out = tmp_path / "plan.json"
    result = run_cli("plan", "--format", "markdown", "--out", out, cwd=ws)
    assert result.code == 0, result.err
    comment = result.out
    assert len(comment) < 65_536
    assert comment.startswith("<!-- releasectl:plan env=local -->\n")
    row = SUMMARY_ROW.search(comment)
    assert row is not None
    assert (row["steps"], row["up"], row["down"], row["deploy"]) == ("5000", "5000", "0", "0")
    assert row["backup"] == "5000 of 5000"
    # the step list is cut with a note naming how many were left out and where the plan is
    steps = re.findall(r"^\| (\d+) \| `kv` \| up \|", comment, re.MULTILINE)
    assert 100 < len(steps) < 5000
    assert steps == [str(n) for n in range(1, len(steps) + 1)]  # kept from the top, in order
    note = re.search(r"_(\d+) of 5000 steps left out .* the full plan is in `(.+?)`", comment)
    assert note is not None
    assert int(note[1]) == 5000 - len(steps) and note[2] == str(out)
    assert comment.count("</details>") == 2  # steps and rollback are both closed
    assert comment.rstrip().endswith(f"Saved as `{out}`; `releasectl apply` it after the merge.")
    assert len(json.loads(out.read_text())["steps"]) == 5000  # the file keeps everything


def test_two_environments_in_one_comment(tmp_path: Path) -> None:
    qa = {"qa": {"state": {"backend": "file"}, "targets": {"jobs": {}}}}
    ws = scripted(tmp_path / "ws", 3, environments=qa)
    assert run_cli("apply", "--env", "qa", "--yes", cwd=ws).code == 0
    add_migration(ws, "jobs", "0004_more", {"up.sh": "true\n", "down.sh": "true\n"})
    write_release(ws, "1.1.0", {"jobs": 4})
    result = run_cli(
        "plan",
        "--env",
        "local",
        "--env",
        "qa",
        "--format",
        "markdown",
        "--out",
        tmp_path / "plan-{env}.json",
        cwd=ws,
    )
    assert result.code == 0, result
    markers = re.findall(r"^<!-- releasectl:plan env=(\w+) -->$", result.out, re.MULTILINE)
    assert markers == ["local", "qa"]
    assert result.out.startswith("<!-- releasectl:plan env=local -->")
    local, qa_part = result.out.split("<!-- releasectl:plan env=qa -->")
    assert "release - → **1.1.0**" in local and "| 4 | 4 | 0 | 0 |" in local
    assert "release 1.0.0 → **1.1.0**" in qa_part and "| 1 | 1 | 0 | 0 |" in qa_part
    assert "\n---\n" in local  # a rule between environments, not a setext heading
    for env, steps in (("local", 4), ("qa", 1)):
        saved = json.loads((tmp_path / f"plan-{env}.json").read_text())
        assert saved["env"] == env and len(saved["steps"]) == steps
    as_json = run_cli("plan", "-e", "local", "-e", "qa", "--format", "json", cwd=ws)
    assert [p["env"] for p in json.loads(as_json.out)] == ["local", "qa"]
    clash = run_cli("plan", "-e", "local", "-e", "qa", "--out", tmp_path / "p.json", cwd=ws)
    assert clash.code == 64 and "{env}" in clash.err


def test_two_environments_share_the_cap_and_keep_both_summaries(tmp_path: Path) -> None:
    qa = {"qa": {"state": {"backend": "file"}, "targets": {"jobs": {}}}}
    ws = keyed(tmp_path / "ws", 1500, environments=qa)
    result = run_cli("plan", "-e", "local", "-e", "qa", "--format", "markdown", cwd=ws)
    assert result.code == 0, result.err
    assert len(result.out) < 65_536
    rows = SUMMARY_ROW.findall(result.out)
    assert [r[0] for r in rows] == ["local", "qa"]
    kept = [
        len(re.findall(r"^\| \d+ \| `kv` \|", part, re.MULTILINE))
        for part in result.out.split("<!-- releasectl:plan env=qa -->")
    ]
    assert kept[0] > 50 and abs(kept[0] - kept[1]) <= 2  # an even share, not first come
    notes = re.findall(r"steps left out .*?run `releasectl plan --env (\w+)`", result.out)
    assert notes[:1] == ["local"] and "qa" in notes


def test_a_broken_constraint_still_gives_a_comment(example: Path) -> None:
    edit(example / "releases/1.1.0.yaml", "redis: {version: 2}", "redis: {version: 1}")
    result = run_cli("plan", "--format", "markdown", cwd=example)
    assert result.code == 1
    assert result.out.startswith("<!-- releasectl:plan env=local -->\n")
    assert "### :x: releasectl plan: `local`, no plan could be made" in result.out
    assert "auth-service 1.3.0 requires redis >=2 but redis is at 1" in result.out
    assert "The plan failed (exit 1)" in result.out
    assert "requires redis >=2" in result.err  # the CI log shows it too


def test_a_major_bump_without_allow_breaking_and_a_file_error(example: Path) -> None:
    assert run_cli("apply", "--yes", cwd=example).code == 0
    assert run_cli("release", "create", "2.0.0", cwd=example).code == 0
    assert run_cli("version", "set", "auth-service", "2.0.0", cwd=example).code == 0
    result = run_cli("plan", "--format", "markdown", cwd=example)
    assert result.code == 1
    assert "breaking change needs --allow-breaking" in result.out
    allowed = run_cli("plan", "--format", "markdown", "--allow-breaking", cwd=example)
    assert allowed.code == 0
    assert "> :boom: **1 breaking change(s) (planned with --allow-breaking)**" in allowed.out
    assert "| **deploy** (breaking) |" in allowed.out

    (example / "releases/2.0.0.yaml").write_text("version: [unclosed\n")
    broken = run_cli("plan", "--format", "markdown", cwd=example)
    assert broken.code == 1
    assert "invalid YAML" in broken.out
    assert "At file `releases/2.0.0.yaml`, line 2." in broken.out


def test_down_steps_drift_and_promotion_get_banners(tmp_path: Path) -> None:
    prod = {
        "prod": {"state": {"backend": "file"}, "targets": {"jobs": {}}, "promote_from": "local"}
    }
    ws = scripted(tmp_path / "ws", 2, environments=prod)
    blocked = run_cli("plan", "--env", "prod", "--format", "markdown", cwd=ws)
    assert blocked.code == 0
    assert "> :no_entry: **Promotion blocks this release**: promotion: release 1.0.0 must be" in (
        blocked.out
    )
    assert run_cli("apply", "--yes", cwd=ws).code == 0
    write_release(ws, "0.9.0", {"jobs": 0})
    down = run_cli("plan", "--release", "0.9.0", "--format", "markdown", cwd=ws)
    assert "> :rotating_light: **2 down step(s)" in down.out
    assert "`jobs` down 2 → 1 (`0002_step_2`)" in down.out
    (ws / "migrations/jobs/0001_step_1/up.sh").write_text("echo changed\n")
    drift = run_cli("plan", "--format", "markdown", cwd=ws)
    assert "> :warning: **Drift: 1 applied migration(s) changed" in drift.out
    assert "migrations/jobs/0001_step_1: changed since it was applied" in drift.out
    assert "**No changes.**" in drift.out


def test_free_text_cannot_break_the_comment(tmp_path: Path) -> None:
    ws = scripted(tmp_path / "ws", 1)
    meta = ws / "migrations/jobs/0001_step_1/migration.yaml"
    meta.write_text('description: "a | b </details> <script>x</script>"\n')
    result = run_cli("plan", "--format", "markdown", cwd=ws)
    assert result.code == 0, result
    row = next(line for line in result.out.splitlines() if line.startswith("| 1 |"))
    assert row.endswith("| a \\| b &lt;/details&gt; &lt;script&gt;x&lt;/script&gt; |")
    assert result.out.count("</details>") == 2


def _plan(steps: int, env: str = "e") -> Plan:
    made = [
        Step(
            component="c",
            type="script",
            action="up",
            **{"from": n - 1},
            to=n,
            migration=f"{n:04d}_m",
            description="x" * 40,
        )
        for n in range(1, steps + 1)
    ]
    return Plan(
        env=env,
        digest="d" * 64,
        release=ReleaseMove(**{"from": None}, to="1.0.0"),
        state=StateRef(lineage=None, serial=0),
        steps=made,
        rollback=list(reversed(made)),
    )


def test_a_section_added_above_the_steps_keeps_its_place_and_priority() -> None:
    """How issue 16's "What this changes" joins the comment: a Section with a priority."""
    changes = markdown.Section(
        title="What this changes",
        items=tuple(f"- change {n}" for n in range(200)),
        unit="findings",
        priority=5,
        open=True,
    )
    facts = markdown.PlanFacts(_plan(3000), sections_before_steps=(changes,))
    body = markdown.render([markdown.plan_part(facts)])
    assert len(body) < markdown.LIMIT
    assert body.index("<details open><summary>What this changes") < body.index("Steps (3000)")
    assert "- change 199" in body  # served before the steps: kept whole
    assert "findings left out" not in body and "steps left out" in body


def test_render_keeps_under_any_limit() -> None:
    part = markdown.plan_part(markdown.PlanFacts(_plan(400)))
    for limit in (2_000, 10_000, 40_000):
        body = markdown.render([part], limit=limit)
        assert len(body) < limit
        assert SUMMARY_ROW.search(body) is not None
        assert body.count("<details>") == body.count("</details>") == 2
