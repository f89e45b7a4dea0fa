"""The operations kit against the real thing: a private Pushgateway and a private Prometheus
(Debian's packages; free loopback ports, their own data directories, stopped by pid) scrape
what applies of the example pushed, a failed step and its rollback included; the alert rules
pass `promtool check rules` and `promtool test rules`; the Grafana dashboard uses only names
an apply exports, and Prometheus accepts every one of its expressions."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from releasectl.observe.metrics import FAMILIES, sample_names
from tests.builders import add_failing_redis_migration
from tests.conftest import REPO, free_port, run_cli
from tests.metrics_helpers import families, samples
from tests.promql import grafana_to_promql, metric_names

OPS = REPO / "docs" / "ops"


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def _binary(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:  # pragma: no cover - .ci/run installs it
        pytest.fail(f"{name} is not on PATH (apt-get install prometheus prometheus-pushgateway)")
    return exe


@contextlib.contextmanager
def _serve(cmd: list[str], port: int, workdir: Path) -> Iterator[Server]:
    log = workdir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{url}/-/ready", timeout=2) as resp,
            ):
                if resp.status == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{cmd[0]} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield Server(url, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    cmd = [_binary("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}"]
    with _serve(cmd, port, tmp_path_factory.mktemp("pushgateway")) as server:
        yield server


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory, pushgateway: Server) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("prometheus")
    target = pushgateway.url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "pushgateway",
                "honor_labels": True,  # keep job="releasectl" and env from the push
                "static_configs": [{"targets": [target]}],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    cmd = [
        _binary("prometheus"),
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with _serve(cmd, port, workdir) as server:
        yield server


def query(server: Server, expr: str) -> list[dict[str, Any]]:
    url = f"{server.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def eventually(
    server: Server, expr: str, ok: Callable[[list[dict[str, Any]]], bool], timeout: float = 30
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        result = query(server, expr)
        if ok(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


Key = tuple[str, frozenset[tuple[str, str]]]


def _key(name: str, labels: dict[str, str]) -> Key:
    clean = {k: v for k, v in labels.items() if k not in ("__name__", "job", "instance")}
    if "le" in clean:  # the Pushgateway re-renders bounds in Go's float format
        clean["le"] = repr(float(clean["le"]))
    return name, frozenset(clean.items())


def test_pushed_apply_failure_and_rollback_reach_prometheus(
    example: Path, prometheus: Server, pushgateway: Server
) -> None:
    first = run_cli("apply", "--yes", "--pushgateway", pushgateway.url, cwd=example)
    assert first.code == 0, first
    add_failing_redis_migration(example)
    failed = run_cli(
        "migrate", "redis", "3", "--yes", "--pushgateway", pushgateway.url, cwd=example
    )
    assert failed.code == 1 and "rolled back" in failed.err, failed

    pushed = eventually(
        prometheus,
        'releasectl_step_failures_total{job="releasectl", env="local", component="redis"}',
        lambda r: len(r) == 1 and r[0]["value"][1] == "1",
    )
    assert [s["value"][1] for s in pushed] == ["1"], pushed

    # every series Prometheus holds is one releasectl computed, with the same value
    everything = query(prometheus, '{job="releasectl", __name__=~"releasectl_.*"}')
    in_prometheus = {
        _key(s["metric"]["__name__"], s["metric"]): float(s["value"][1]) for s in everything
    }
    assert all(s["metric"]["job"] == "releasectl" for s in everything)
    expected = {
        _key(name, dict(labels)): v
        for (name, labels), v in samples(run_cli("metrics", cwd=example).out).items()
    }
    extra = set(in_prometheus) - set(expected)
    assert extra == {
        ("releasectl_lock_wait_seconds", frozenset({("env", "local")})),
        ("releasectl_apply_duration_seconds", frozenset({("env", "local"), ("result", "failed")})),
    }
    assert set(expected) <= set(in_prometheus)
    for key, want in expected.items():
        assert in_prometheus[key] == pytest.approx(want), key

    def one(expr: str) -> dict[str, float]:
        return {
            s["metric"].get("component", ""): float(s["value"][1]) for s in query(prometheus, expr)
        }

    assert one('releasectl_rollbacks_total{env="local"}') == {
        "auth-service": 0,
        "config": 0,
        "database": 0,
        "policies": 0,
        "policy-service": 0,
        "redis": 1,
    }
    assert one(
        'releasectl_step_duration_seconds_count{env="local", action="up", result="failed"}'
    ) == {"redis": 1}
    assert one(
        'releasectl_step_duration_seconds_count{env="local", action="rollback", result="success"}'
    ) == {"redis": 1}
    assert (
        one('releasectl_step_duration_seconds_count{env="local", action="up", result="success"}')[
            "redis"
        ]
        == 2
    )
    versions = query(prometheus, 'releasectl_component_version_info{env="local"}')
    assert {s["metric"]["component"]: s["metric"]["version"] for s in versions} == {
        "auth-service": "1.3.0",
        "config": "2",
        "database": "1",
        "policies": "1",
        "policy-service": "1.1.0",
        "redis": "2",
    }
    assert query(prometheus, "releasectl_step_in_progress_since_seconds") == []
    # the redis backup of the failed step is the last one: its size, from the history
    entries = json.loads(run_cli("history", "--format", "json", cwd=example).out)
    last_redis = [e for e in entries if e["action"] == "backup" and e["component"] == "redis"][-1]
    assert one('releasectl_backup_bytes{env="local"}')["redis"] == last_redis["size"]
    failed_run = one('releasectl_apply_duration_seconds{env="local", result="failed"}')
    assert 0 < failed_run[""] < 60

    # the dashboard's expressions all parse and run against this Prometheus
    for expr in _dashboard_exprs():
        query(prometheus, grafana_to_promql(expr))


def test_alert_rules_pass_promtool() -> None:
    promtool = _binary("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", str(OPS / "alerts.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 6 rules found" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", str(OPS / "alerts.test.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_alerts_use_only_exported_names() -> None:
    from ruamel.yaml import YAML

    rules = YAML(typ="safe").load((OPS / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert len(exprs) == 6
    for expr in exprs:
        names = metric_names(expr)
        assert names and names <= sample_names(), (expr, names - sample_names())


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((OPS / "grafana-dashboard.json").read_text())
    return data


def _dashboard_exprs() -> list[str]:
    exprs = []
    for panel in _dashboard()["panels"]:
        for target in panel.get("targets", []):
            exprs.append(target["expr"])
    return exprs


def test_dashboard_uses_only_what_an_apply_exports(example: Path, tmp_path: Path) -> None:
    prom = tmp_path / "m.prom"
    assert run_cli("apply", "--yes", "--metrics-file", prom, cwd=example).code == 0
    exported: set[str] = set()
    for name, kind in families(prom.read_text()).items():
        suffixes = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",)}
        exported.update(name + s for s in suffixes.get(kind, ("",)))
    assert exported == sample_names()
    dashboard = _dashboard()
    titles = {p["title"] for p in dashboard["panels"] if p["type"] != "row"}
    for wanted in (
        "Status by component and environment",
        "History timeline",
        "Step durations (p95)",
        "Failures and rollbacks",
        "Backup status",
        "Backup size",
    ):
        assert wanted in titles
    used: set[str] = set()
    for expr in _dashboard_exprs():
        names = metric_names(expr)
        assert names, expr
        assert names <= exported, (expr, names - exported)
        used |= names
    variable = dashboard["templating"]["list"][1]["definition"]
    assert variable == "label_values(releasectl_component_version_info, env)"
    # every family but the histogram (used through its series) has a place on the dashboard
    plain = {f.name for f in FAMILIES if f.type != "histogram"}
    assert plain <= used, plain - used
