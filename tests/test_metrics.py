"""Metrics of real runs on the example workspace (a copy in a tmp dir): the textfile a run
writes, `releasectl metrics` from state and history, failures and rollbacks, backups with
their duration and size in the history, a step in progress while it runs and after a crash,
bad options, an unreachable Pushgateway, and prometheus_client loaded only when asked for."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from releasectl.observe.metrics import FAMILIES
from tests.builders import add_failing_redis_migration, make_workspace
from tests.conftest import free_port, run_cli, run_proc
from tests.metrics_helpers import (
    families,
    samples,
    series,
    value,
)

COMPONENTS = ("auth-service", "config", "database", "policies", "policy-service", "redis")


def history(root: Path) -> list[dict[str, Any]]:
    result = run_cli("history", "--format", "json", cwd=root)
    assert result.code == 0, result
    data: list[dict[str, Any]] = json.loads(result.out)
    return data


def state(root: Path) -> dict[str, Any]:
    result = run_cli("status", "--format", "json", cwd=root)
    assert result.code == 0, result
    data: dict[str, Any] = json.loads(result.out)
    return data


def metrics_now(root: Path) -> str:
    result = run_cli("metrics", cwd=root)
    assert result.code == 0, result
    return result.out


def test_apply_writes_every_family_and_metrics_agrees(example: Path, tmp_path: Path) -> None:
    prom = tmp_path / "textfile" / "releasectl-local.prom"
    prom.parent.mkdir()
    before = time.time()
    result = run_cli("apply", "--yes", "--metrics-file", prom, cwd=example)
    assert result.code == 0, result
    text = prom.read_text()
    assert [p.name for p in prom.parent.iterdir()] == [prom.name]  # no temporary left over
    assert families(text) == {
        f.name.removesuffix("_total"): f.type for f in FAMILIES
    }  # every family, with its type
    found = samples(text)
    versions = {
        dict(labels)["component"]: dict(labels)["version"]
        for labels in series(found, "releasectl_component_version_info")
    }
    assert versions == {n: str(c["version"]) for n, c in state(example)["components"].items()}
    for component in COMPONENTS:
        assert value(found, "releasectl_step_failures_total", env="local", component=component) == 0
        assert value(found, "releasectl_rollbacks_total", env="local", component=component) == 0
        last = value(
            found, "releasectl_last_success_timestamp_seconds", env="local", component=component
        )
        assert last is not None and before - 1 <= last <= time.time() + 1
    # two config steps, both successful, in the histogram
    assert (
        value(
            found,
            "releasectl_step_duration_seconds_count",
            env="local",
            component="config",
            action="up",
            result="success",
        )
        == 2
    )
    # the backups of this apply: sizes from the history equal the stored files
    backups = {e["component"]: e for e in history(example) if e["action"] == "backup"}
    assert set(backups) == {"config", "policies", "redis"}
    for component, entry in backups.items():
        stored = (
            example / ".releasectl/backups/local" / component / f"{entry['backup']}.bak"
        ).stat()
        assert entry["size"] == stored.st_size > 0
        assert value(found, "releasectl_backup_bytes", env="local", component=component) == (
            stored.st_size
        )
        assert value(
            found, "releasectl_backup_duration_seconds", env="local", component=component
        ) == pytest.approx(entry["duration"])
    apply_entry = history(example)[-1]
    assert apply_entry["action"] == "apply" and apply_entry["duration"] > 0
    assert value(
        found, "releasectl_apply_duration_seconds", env="local", result="success"
    ) == pytest.approx(apply_entry["duration"])
    wait = value(found, "releasectl_lock_wait_seconds", env="local")
    assert wait is not None and 0 <= wait < 5
    assert series(found, "releasectl_step_in_progress_since_seconds") == {}
    # `releasectl metrics` computes the same from state and history; only the run knows the wait
    recorded = samples(metrics_now(example))
    assert {k: v for k, v in found.items() if k[0] != "releasectl_lock_wait_seconds"} == recorded


def test_failed_step_and_rollback_are_counted(example: Path, tmp_path: Path) -> None:
    prom = tmp_path / "m.prom"
    assert run_cli("apply", "--yes", cwd=example).code == 0
    add_failing_redis_migration(example)
    result = run_cli("migrate", "redis", "3", "--yes", "--metrics-file", prom, cwd=example)
    assert result.code == 1, result
    assert "rolled back" in result.err
    found = samples(prom.read_text())
    assert value(found, "releasectl_step_failures_total", env="local", component="redis") == 1
    assert value(found, "releasectl_rollbacks_total", env="local", component="redis") == 1
    assert value(found, "releasectl_step_failures_total", env="local", component="config") == 0
    for action, result_ in (("up", "failed"), ("rollback", "success")):
        count = value(
            found,
            "releasectl_step_duration_seconds_count",
            env="local",
            component="redis",
            action=action,
            result=result_,
        )
        assert count == 1, (action, result_)
    failed = value(found, "releasectl_apply_duration_seconds", env="local", result="failed")
    assert failed is not None and 0 < failed < 60
    # the successful apply before stays on record
    assert value(found, "releasectl_apply_duration_seconds", env="local", result="success")
    assert series(found, "releasectl_step_in_progress_since_seconds") == {}
    # the version did not move
    assert value(
        found, "releasectl_component_version_info", env="local", component="redis", version="2"
    )
    recorded = samples(metrics_now(example))
    assert value(recorded, "releasectl_step_failures_total", env="local", component="redis") == 1
    assert (
        value(recorded, "releasectl_apply_duration_seconds", env="local", result="failed") is None
    )


def test_backup_command_records_duration_and_size(example: Path, tmp_path: Path) -> None:
    assert run_cli("apply", "--yes", cwd=example).code == 0
    prom = tmp_path / "m.prom"
    result = run_cli("backup", "database", "--format", "json", "--metrics-file", prom, cwd=example)
    assert result.code == 0, result
    meta = json.loads(result.out)
    entry = history(example)[-1]
    assert (entry["action"], entry["result"], entry["backup"]) == ("backup", "success", meta["id"])
    assert entry["size"] == meta["size"] > 0 and entry["duration"] >= 0
    found = samples(prom.read_text())
    assert (
        value(found, "releasectl_backup_bytes", env="local", component="database") == (meta["size"])
    )
    assert value(found, "releasectl_apply_duration_seconds", env="local", result="failed") is None
    restored = run_cli(
        "restore", "database", meta["id"], "--yes", "--metrics-file", prom, cwd=example
    )
    assert restored.code == 0, restored
    assert "releasectl_backup_bytes" in prom.read_text()


def _script_workspace(root: Path, snap_from: Path, snap_to: Path, sleep: float) -> Path:
    return make_workspace(
        root,
        components={"hooks": {"type": "script"}},
        targets={"hooks": {"env": {"SNAP_FROM": str(snap_from), "SNAP_TO": str(snap_to)}}},
        releases={"1.0.0": {"hooks": 1}},
        migrations={
            "hooks": {
                "0001_watch": {
                    "up.sh": f"""
                set -e
                sleep {sleep}
                cp "$SNAP_FROM" "$SNAP_TO"
            """,
                    "down.sh": "true\n",
                }
            }
        },
    )


@pytest.mark.parametrize(
    ("heartbeat", "sleep"),
    [("0", 0), ("0.2", 1.0)],
    ids=["at-step-start", "after-heartbeat"],
)
def test_a_running_step_is_published_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, heartbeat: str, sleep: float
) -> None:
    prom, during = tmp_path / "m.prom", tmp_path / "during.prom"
    root = _script_workspace(tmp_path / "ws", prom, during, sleep)
    monkeypatch.setenv("RELEASECTL_METRICS_HEARTBEAT", heartbeat)
    before = time.time()
    result = run_cli("apply", "--yes", "--metrics-file", prom, cwd=root)
    assert result.code == 0, result
    live = samples(during.read_text())  # what the collector saw while the step ran
    since = value(live, "releasectl_step_in_progress_since_seconds", env="local", component="hooks")
    assert since is not None and before - 1 <= since <= time.time()
    assert value(live, "releasectl_component_version_info", env="local", component="hooks") is None
    final = samples(prom.read_text())
    assert series(final, "releasectl_step_in_progress_since_seconds") == {}
    assert value(
        final, "releasectl_component_version_info", env="local", component="hooks", version="1"
    )


def test_short_steps_publish_nothing_before_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prom, during = tmp_path / "m.prom", tmp_path / "during.prom"
    root = _script_workspace(tmp_path / "ws", prom, during, 0)
    (root / "migrations/hooks/0001_watch/up.sh").write_text(
        'test ! -e "$SNAP_FROM" && touch "$SNAP_TO"\n'
    )
    monkeypatch.setenv("RELEASECTL_METRICS_HEARTBEAT", "30")
    result = run_cli("apply", "--yes", "--metrics-file", prom, cwd=root)
    assert result.code == 0, result
    assert during.exists()  # the file did not exist yet while the step ran
    assert prom.exists()


def test_an_interrupted_step_stays_in_progress_until_recover(example: Path, tmp_path: Path) -> None:
    prom = tmp_path / "m.prom"
    crashed = run_proc(
        "apply", "--yes", cwd=example, env={"RELEASECTL_FAILPOINT": "before-run@5"}
    )  # step 6: redis 0 -> 1, killed after its backup
    assert crashed.code == -signal.SIGKILL, crashed
    journal = state(example)["journal"]
    found = samples(metrics_now(example))
    since = value(
        found, "releasectl_step_in_progress_since_seconds", env="local", component="redis"
    )
    from releasectl.util import timeutil

    assert since == pytest.approx(timeutil.parse(journal["started_at"]).timestamp())
    recovered = run_cli("recover", "--metrics-file", prom, cwd=example)
    assert recovered.code == 0, recovered
    after = samples(prom.read_text())
    assert series(after, "releasectl_step_in_progress_since_seconds") == {}
    assert value(after, "releasectl_rollbacks_total", env="local", component="redis") == 1


@pytest.mark.parametrize(
    ("option", "bad", "says"),
    [
        ("--metrics-file", "no/such/dir/m.prom", "does not exist"),
        ("--metrics-file", ".", "is a directory"),
        ("--pushgateway", "ftp://example", "not an http(s) URL"),
        ("--pushgateway", "http://user:pw@127.0.0.1:9091", "credentials"),
    ],
)
def test_bad_metrics_options_change_nothing(
    example: Path, option: str, bad: str, says: str
) -> None:
    result = run_cli("apply", "--yes", option, bad, cwd=example)
    assert result.code == 64, result
    assert option in result.err and says in result.err
    assert not (example / ".releasectl/state/local.json").exists()


def test_unreachable_pushgateway_warns_and_the_apply_stands(example: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("apply", "--yes", "--pushgateway", url, cwd=example)
    assert result.code == 0, result
    assert f"warning: cannot push metrics to {url}" in result.err
    assert state(example)["release"] == "1.1.0"


def test_metrics_of_an_environment_without_state(example: Path) -> None:
    found = samples(metrics_now(example))
    assert value(found, "releasectl_step_failures_total", env="local", component="redis") == 0
    assert series(found, "releasectl_component_version_info") == {}
    unknown = run_cli("metrics", "--env", "nowhere", cwd=example)
    assert unknown.code == 1 and "nowhere" in unknown.err


def _modules_after(code: str, cwd: Path) -> set[str]:
    probe = (
        "import sys, contextlib, io\n"
        "from releasectl.cli.app import main\n"
        "out, err = io.StringIO(), io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        f"    main({code})\n"
        "print('\\n'.join(sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_prometheus_client_loads_only_when_metrics_are_asked_for(example: Path) -> None:
    assert "prometheus_client" not in _modules_after("['--help']", example)
    assert "prometheus_client" not in _modules_after("['apply', '--yes']", example)
    assert "prometheus_client" in _modules_after("['metrics']", example)


def test_a_failed_backup_is_recorded_and_exported(example: Path, tmp_path: Path) -> None:
    assert run_cli("apply", "--yes", cwd=example).code == 0
    # the store cannot make the component's directory: a file stands where it should be
    blocker = example / ".releasectl/backups/local/database"
    blocker.write_text("not a directory\n")
    prom = tmp_path / "m.prom"
    result = run_cli(
        "--log-format", "json", "backup", "database", "--metrics-file", prom, cwd=example
    )
    assert result.code == 1, result
    entry = history(example)[-1]
    assert (entry["action"], entry["result"], entry["component"]) == (
        "backup",
        "failed",
        "database",
    )
    assert entry["duration"] >= 0 and entry["error"]
    found = samples(prom.read_text())
    assert value(found, "releasectl_backup_bytes", env="local", component="database") == 0
    events = [json.loads(line) for line in result.err.splitlines()]
    failed = [e for e in events if e["event"] == "backup.failed"]
    assert len(failed) == 1 and failed[0]["component"] == "database"
    assert run_cli("history", "--verify", cwd=example).code == 0


def test_the_metric_table_in_docs_lists_every_family() -> None:
    from tests.conftest import REPO

    rows = {}
    for line in (REPO / "docs/ops.md").read_text().splitlines():
        if line.startswith("| `releasectl_"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = (cells[1], tuple(c.strip() for c in cells[2].split(",")))
    assert rows == {f.name: (f.type, f.labels) for f in FAMILIES}
