"""Planning at scale: `releasectl plan --format json` and `releasectl validate` on generated
workspaces of 1,000 to 100,000 migrations, next to Alembic planning the same number of linear
revisions offline (`alembic upgrade head --sql` against SQLite).

Every measurement runs the real CLI in a child process and reads that child's own CPU time and
peak RSS (`os.wait4`). "cold" runs start without releasectl's cache (.releasectl/cache/), as on
a fresh clone; "warm" runs follow a run that wrote it. The OS page cache is warm in both (each
workspace is flushed and read once before it is measured). Up to INTERLEAVE_UP_TO migrations,
each round of releasectl's four runs follows one Alembic run, so both see the same machine.

    .venv/bin/python bench/plan_scale.py                        # mixed, 1k, 10k, 100k
    .venv/bin/python bench/plan_scale.py --sizes 1000,10000 --types all --floors
    .venv/bin/python bench/plan_scale.py --json results.json --plot plan_scale.png

Workspaces and Alembic environments are generated under --workdir (default: a temporary
directory, removed at the end unless --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_BIN = Path(sys.executable).parent
RELEASECTL = str(VENV_BIN / "releasectl")
ALEMBIC = str(VENV_BIN / "alembic")
ALEMBIC_LIMIT = 60.0  # seconds; larger sizes are not tried once Alembic passes this
SETTINGS = {"alembic_limit": ALEMBIC_LIMIT}  # --alembic-limit
# up to this size Alembic runs once before each round of releasectl's runs, for every type
# (larger: once per size, shared by the types)
INTERLEAVE_UP_TO = 20_000

# --- workspace generation ----------------------------------------------------------------

UP_SQL = """-- {component} {number}: {slug}
CREATE TABLE IF NOT EXISTS {table}_{number} (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    payload TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS ix_{table}_{number}_tenant ON {table}_{number} (tenant_id);
INSERT INTO settings (key, value) VALUES ('{component}.schema', '{number}');
"""
DOWN_SQL = """-- {component} {number}: {slug} (down)
DROP INDEX IF EXISTS ix_{table}_{number}_tenant;
DROP TABLE IF EXISTS {table}_{number};
DELETE FROM settings WHERE key = '{component}.schema' AND value = '{number}';
"""
UP_YAML = """ops:
  - set: {{key: "{component}:schema", value: "{number}"}}
  - hset: {{key: "{component}:config", fields: {{step: "{number}", mode: "on"}}}}
"""
DOWN_YAML = """ops:
  - set: {{key: "{component}:schema", value: "{previous}"}}
  - hdel: {{key: "{component}:config", fields: [step]}}
"""
UP_SH = """#!/usr/bin/env bash
set -euo pipefail
echo "{component} up to {number}" >> "$RELEASECTL_WORKSPACE/.releasectl/{component}.log"
"""
DOWN_SH = """#!/usr/bin/env bash
set -euo pipefail
echo "{component} down from {number}" >> "$RELEASECTL_WORKSPACE/.releasectl/{component}.log"
"""
META = """description: {component} step {number}
timeout: 120
breaking: false
"""
META_SCOPED = """description: {component} step {number}, scoped backup
scope: ["{table}_{number}", settings]
"""
META_REDIS = """description: {component} step {number}, scoped backup
scope: ["{component}:*"]
"""
UP_PY = """def up(r):
    r.set("{component}:schema", "{number}")
    r.hset("{component}:config", mapping={{"step": "{number}", "mode": "on"}})


def down(r):
    r.set("{component}:schema", "{previous}")
    r.hdel("{component}:config", "step")
"""
CEDAR_SCHEMA = """entity User in [Team];
entity Team;
entity Document;
action view, edit appliesTo {{ principal: User, resource: Document }};
"""
CEDAR_POLICY = """// {component} step {number}
@id("{component}-view-{number}")
permit (principal in Team::"t{number}", action == Action::"view", resource);

@id("{component}-edit-{number}")
forbid (principal, action == Action::"edit", resource) unless {{ principal == User::"u{number}" }};
"""
CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {component}-config
  labels:
    app.kubernetes.io/name: {component}
data:
  step: "{number}"
  settings.conf: |
    mode on
    level {number}
"""
# --types: what the migrated components are ("mixed": mostly sql, some redis and script)
KINDS = ("mixed", "script", "sql", "sql-postgres", "redis", "redis-python", "cedar", "kubernetes")
COMPONENT_TYPE = {"sql-postgres": "sql", "redis-python": "redis"}
WORDS = ("users", "roles", "audit", "sessions", "tokens", "billing", "quota", "events", "tenants")


@dataclass
class Shape:
    migrations: int
    components: int
    migrated: int
    services: int
    by_type: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0


def component_count(migrations: int) -> int:
    """About 100 migrations per component, between 10 and 1,000 components."""
    return max(10, min(1000, migrations // 100))


def generate_workspace(root: Path, migrations: int, seed: int = 1, kind: str = "mixed") -> Shape:
    """A workspace with `migrations` migrations: mostly sql (up.sql + down.sql), some redis
    and script, one in ten with migration.yaml; services on top; a random `needs` DAG; two
    releases, the newest pinning every component at its latest version. With `kind` other
    than "mixed", every migrated component is of that kind (see KINDS)."""
    rng = random.Random(seed)
    total = component_count(migrations)
    services = max(1, total // 20)
    migrated = total - services
    names = [f"c{i:04d}" for i in range(total)]
    rng.shuffle(names)  # services and types spread over the graph, not clustered
    service_names = set(names[:services])
    types: dict[str, str] = {}
    for index, name in enumerate(sorted(set(names) - service_names)):
        types[name] = "redis" if index % 25 == 3 else "script" if index % 25 == 7 else "sql"
        if kind != "mixed":
            types[name] = kind
    for name in service_names:
        types[name] = "service"
    order = sorted(names)  # needs only point backwards in this order: a DAG
    needs: dict[str, list[str]] = {}
    for index, name in enumerate(order):
        earlier = order[max(0, index - 50) : index]
        needs[name] = sorted(rng.sample(earlier, min(len(earlier), rng.randint(0, 3))))

    per = [
        migrations // migrated + (1 if i < migrations % migrated else 0) for i in range(migrated)
    ]
    counts = dict(zip(sorted(n for n in names if n not in service_names), per, strict=True))
    shape = Shape(migrations, total, migrated, services)
    for name in order:
        shape.by_type[types[name]] = shape.by_type.get(types[name], 0) + counts.get(name, 0)

    root.mkdir(parents=True, exist_ok=True)
    for name in order:
        ctype = types[name]
        if ctype == "service":
            continue
        base = root / "migrations" / name
        table = f"{name}_{WORDS[int(name[1:]) % len(WORDS)]}"
        for number in range(1, counts[name] + 1):
            slug = f"{WORDS[number % len(WORDS)]}_{number}"
            directory = base / f"{number:04d}_{slug}"
            directory.mkdir(parents=True)
            values = {
                "component": name,
                "number": number,
                "previous": number - 1,
                "slug": slug,
                "table": table,
            }
            parts: dict[str, str] = {}
            if ctype in ("sql", "sql-postgres"):
                parts = {"up.sql": UP_SQL, "down.sql": DOWN_SQL}
            elif ctype == "redis":
                parts = {"up.yaml": UP_YAML, "down.yaml": DOWN_YAML}
            elif ctype == "redis-python":
                parts = {"migration.py": UP_PY, "migration.yaml": META_REDIS}
            elif ctype == "cedar":
                parts = {"schema.cedarschema": CEDAR_SCHEMA, "policies.cedar": CEDAR_POLICY}
            elif ctype == "kubernetes":
                parts = {"configmap.yaml": CONFIGMAP}
            else:
                parts = {"up.sh": UP_SH, "down.sh": DOWN_SH}
            if number % 10 == 0 and "migration.yaml" not in parts:
                scoped = number % 20 == 0 and ctype in ("sql", "sql-postgres", "redis")
                parts["migration.yaml"] = (
                    (META_REDIS if ctype == "redis" else META_SCOPED) if scoped else META
                )
            for file_name, template in parts.items():
                text = template.format(**values)
                (directory / file_name).write_text(text)
                shape.files += 1
                shape.bytes += len(text)

    lines = [
        "apiVersion: releasectl/v1",
        "kind: Workspace",
        f"name: scale-{migrations}",
        f"description: generated by bench/plan_scale.py ({migrations} migrations)",
        "components:",
    ]
    for name in order:
        deps = f", needs: [{', '.join(needs[name])}]" if needs[name] else ""
        ctype = COMPONENT_TYPE.get(types[name], types[name])
        lines.append(f"  {name}: {{type: {ctype}{deps}}}")
    lines += ["environments:", "  local:", "    state: {backend: file}", "    targets:"]
    for name in order:
        ctype = types[name]
        if ctype == "sql":
            target = f'{{url: "sqlite:///.releasectl/local/{name}.db"}}'
        elif ctype == "sql-postgres":
            target = '{url: "postgresql://postgres@127.0.0.1:5432/test"}'
        elif ctype in ("redis", "redis-python"):
            target = '{url: "redis+embedded://.releasectl/local/redis.db"}'
        elif ctype == "kubernetes":
            target = f"{{mode: render, path: deploy/{name}}}"
        elif ctype == "cedar":
            target = "{}"
        elif ctype == "script":
            target = "{shell: bash}"
        else:
            target = "{mode: record}"
        lines.append(f"      {name}: {target}")
    (root / "releasectl.yaml").write_text("\n".join(lines) + "\n")

    releases = root / "releases"
    releases.mkdir()
    for version, fraction in (("0.9.0", 2), ("1.0.0", 1)):
        lines = [
            "apiVersion: releasectl/v1",
            "kind: Release",
            f"version: {version}",
            f"description: every component at {'half' if fraction == 2 else 'its latest'} version",
            "components:",
        ]
        for name in order:
            if types[name] == "service":
                requires = ", ".join(
                    f'{dep}: ">={counts[dep] // fraction}"'
                    for dep in needs[name]
                    if types[dep] != "service"
                )
                tail = f", requires: {{{requires}}}" if requires else ""
                lines.append(f"  {name}: {{version: {version}{tail}}}")
            else:
                lines.append(f"  {name}: {{version: {counts[name] // fraction}}}")
        if version == "1.0.0":
            lines.append('upgrades_from: ">=0.9.0,<1.0.0"')
        (releases / f"{version}.yaml").write_text("\n".join(lines) + "\n")
    return shape


# --- Alembic ------------------------------------------------------------------------------

ALEMBIC_INI = """[alembic]
script_location = %(here)s/alembic
sqlalchemy.url = sqlite:///%(here)s/bench.db

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = logging.StreamHandler
args = (sys.stderr,)
formatter = generic

[formatter_generic]
format = %(levelname)s %(message)s
"""
ALEMBIC_ENV = """from alembic import context

config = context.config


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    raise SystemExit("this benchmark environment is offline only (use --sql)")
"""
ALEMBIC_MAKO = '''"""${message}"""
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''
ALEMBIC_REVISION = '''"""{slug}

Revision ID: {rev}
Revises: {down}
"""
from alembic import op

revision = "{rev}"
down_revision = {down_repr}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""{up}""")


def downgrade() -> None:
    op.execute("""{down_sql}""")
'''


def generate_alembic(root: Path, revisions: int) -> None:
    """An offline-only Alembic environment with `revisions` linear revisions whose SQL is the
    same size as the sql migrations of the releasectl workspace."""
    versions = root / "alembic" / "versions"
    versions.mkdir(parents=True)
    (root / "alembic.ini").write_text(ALEMBIC_INI)
    (root / "alembic" / "env.py").write_text(ALEMBIC_ENV)
    (root / "alembic" / "script.py.mako").write_text(ALEMBIC_MAKO)
    previous: str | None = None
    for number in range(1, revisions + 1):
        rev = f"{number:012x}"
        slug = f"{WORDS[number % len(WORDS)]}_{number}"
        values = {
            "component": "app",
            "number": number,
            "slug": slug,
            "table": f"app_{WORDS[number % len(WORDS)]}",
        }
        text = ALEMBIC_REVISION.format(
            slug=slug,
            rev=rev,
            down=previous or "",
            down_repr=repr(previous),
            up=UP_SQL.format(**values),
            down_sql=DOWN_SQL.format(**values),
        )
        (versions / f"{rev}_{slug}.py").write_text(text)
        previous = rev


# --- measuring ----------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float  # wall time
    cpu: float  # user + system time of the child
    max_rss_kib: int
    code: int
    out_bytes: int


def run(cmd: list[str], cwd: Path, timeout: float | None = None) -> Run:
    """Run `cmd` once; wall time and the child's own peak RSS (ru_maxrss, KiB on Linux)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, env=_child_env())
        deadline = None if timeout is None else start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                cpu = usage.ru_utime + usage.ru_stime
                return Run(time.perf_counter() - start, cpu, usage.ru_maxrss, -9, 0)
            time.sleep(0.001)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        size = out.seek(0, os.SEEK_END)
        if proc.returncode not in (0, 2):
            err.seek(0)
            tail = err.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode} in {cwd}:\n{tail}")
        cpu = usage.ru_utime + usage.ru_stime
        return Run(seconds, cpu, usage.ru_maxrss, proc.returncode, size)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEASECTL_")}
    env["PYTHONDONTWRITEBYTECODE"] = "0"
    return env


def clear_cache(workspace: Path) -> None:
    shutil.rmtree(workspace / ".releasectl" / "cache", ignore_errors=True)


def median_run(runs: list[Run]) -> Run:
    ordered = sorted(runs, key=lambda r: r.seconds)
    return ordered[len(ordered) // 2]


@dataclass
class Row:
    kind: str
    migrations: int
    components: int
    files: int
    # medians of wall time (s) and of CPU time (user + system, s) of the child
    plan_cold: float
    plan_warm: float
    validate_cold: float
    validate_warm: float
    plan_cold_cpu: float
    plan_warm_cpu: float
    plan_steps: int
    rss_plan_mib: float
    rss_validate_mib: float
    alembic: float | None = None
    alembic_cpu: float | None = None
    alembic_rss_mib: float | None = None
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after

    def ratio(self, which: str) -> float | None:
        """How many times faster than Alembic `which` ("plan_cold", "validate_warm", ...) is."""
        if self.alembic is None:
            return None
        return float(self.alembic / getattr(self, which))


PLAN = [RELEASECTL, "plan", "--format", "json"]
VALIDATE = [RELEASECTL, "validate"]


def measure_releasectl(
    workspace: Path, repeat: int, alembic: tuple[list[str], Path] | None = None
) -> dict[str, list[Run]]:
    """Interleaved: cold plan, warm plan, cold validate, warm validate, `repeat` times, each
    round after one run of `alembic` (command, directory) when given."""
    runs: dict[str, list[Run]] = {k: [] for k in ("al", "pc", "pw", "vc", "vw")}
    for _ in range(repeat):
        if alembic is not None:
            runs["al"].append(run(alembic[0], alembic[1], timeout=SETTINGS["alembic_limit"]))
        clear_cache(workspace)
        runs["pc"].append(run(PLAN, workspace))
        runs["pw"].append(run(PLAN, workspace))
        clear_cache(workspace)
        runs["vc"].append(run(VALIDATE, workspace))
        runs["vw"].append(run(VALIDATE, workspace))
    return runs


def count_steps(workspace: Path) -> int:
    out = subprocess.run(PLAN, cwd=workspace, capture_output=True, check=True, env=_child_env())
    return len(json.loads(out.stdout)["steps"])


_ALEMBIC: dict[int, tuple[float, float, float] | None] = {}  # by size: one run serves every type


def measure_alembic(size: int, workdir: Path, repeat: int) -> tuple[float, float, float] | None:
    """Median wall and CPU seconds and peak RSS (MiB) of `alembic upgrade head --sql`."""
    if size in _ALEMBIC:
        return _ALEMBIC[size]
    env = workdir / f"alembic-{size}"
    if not (env / "alembic.ini").exists():
        shutil.rmtree(env, ignore_errors=True)
        generate_alembic(env, size)
    cmd = [ALEMBIC, "-c", str(env / "alembic.ini"), "upgrade", "head", "--sql"]
    limit = SETTINGS["alembic_limit"]
    first = run(cmd, env, timeout=limit)
    found = None
    if first.code != -9:
        more = [first] + [run(cmd, env, timeout=limit) for _ in range(repeat - 1)]
        found = (
            median_run(more).seconds,
            sorted(r.cpu for r in more)[len(more) // 2],
            max(r.max_rss_kib for r in more) / 1024,
        )
    _ALEMBIC[size] = found
    return found


def measure(size: int, kind: str, workdir: Path, repeat: int, alembic: bool) -> Row:
    workspace = workdir / f"ws-{kind}-{size}"
    shape_file = workdir / f"ws-{kind}-{size}.shape.json"
    if not shape_file.exists():
        shutil.rmtree(workspace, ignore_errors=True)
        started = time.perf_counter()
        shape = generate_workspace(workspace, size, kind=kind)
        print(
            f"  generated {size} {kind} migrations in {shape.components} components "
            f"({shape.by_type}, {shape.files} files, {shape.bytes / 1e6:.1f} MB) "
            f"in {time.perf_counter() - started:.1f}s",
            file=sys.stderr,
        )
        shape_file.write_text(json.dumps(asdict(shape)))
        time.sleep(1)  # let the files age past the scan's racy window (see scancache)
    # the first run must not pay for writing back what generation left dirty, nor for
    # reading from disk: flush, then read everything once (a validate, not measured)
    os.sync()
    run(VALIDATE, workspace)
    clear_cache(workspace)
    shape_data = json.loads(shape_file.read_text())
    load_before = os.getloadavg()[0]
    interleaved = alembic and size <= INTERLEAVE_UP_TO
    found = measure_alembic(size, workdir, 1 if interleaved else repeat) if alembic else None
    together = None
    if interleaved and found is not None:
        env = workdir / f"alembic-{size}"
        together = ([ALEMBIC, "-c", str(env / "alembic.ini"), "upgrade", "head", "--sql"], env)
    runs = measure_releasectl(workspace, repeat, together)
    if runs["al"] and all(r.code != -9 for r in runs["al"]):
        al = runs.pop("al")
        found = (
            median_run(al).seconds,
            sorted(r.cpu for r in al)[len(al) // 2],
            max(r.max_rss_kib for r in al) / 1024,
        )
    runs.pop("al", None)
    med = {k: median_run(v) for k, v in runs.items()}
    cpu = {k: sorted(r.cpu for r in v)[len(v) // 2] for k, v in runs.items()}
    row = Row(
        kind=kind,
        migrations=size,
        components=shape_data["components"],
        files=shape_data["files"],
        plan_cold=med["pc"].seconds,
        plan_warm=med["pw"].seconds,
        validate_cold=med["vc"].seconds,
        validate_warm=med["vw"].seconds,
        plan_cold_cpu=cpu["pc"],
        plan_warm_cpu=cpu["pw"],
        plan_steps=count_steps(workspace),
        rss_plan_mib=max(r.max_rss_kib for r in runs["pc"] + runs["pw"]) / 1024,
        rss_validate_mib=max(r.max_rss_kib for r in runs["vc"] + runs["vw"]) / 1024,
    )
    if found is not None:
        row.alembic, row.alembic_cpu, row.alembic_rss_mib = found
    row.load = (load_before, os.getloadavg()[0])
    return row


def floors(workdir: Path, size: int, repeat: int) -> dict[str, float]:
    """What no plan of this workspace can go below: starting Python, importing releasectl,
    and reading and hashing every file of the migrations (plain Python, one process)."""
    workspace = workdir / f"ws-script-{size}"
    read_all = (
        "import hashlib, os, sys\n"
        "for top, dirs, files in os.walk(sys.argv[1]):\n"
        "    for name in files:\n"
        "        with open(os.path.join(top, name), 'rb') as fh:\n"
        "            hashlib.sha256(fh.read()).digest()\n"
    )
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "releasectl --version": [RELEASECTL, "--version"],
        f"read + sha256 every file ({size:,} script migrations)": [
            sys.executable,
            "-c",
            read_all,
            str(workspace / "migrations"),
        ],
        f"bash -n, one process per part (first 2,000 parts of {size:,})": [
            "bash",
            "-c",
            'n=0; for f in migrations/*/*/*.sh; do bash -n "$f"; n=$((n+1)); '
            "[ $n -ge 2000 ] && break; done",
        ],
    }
    return {
        name: median_run([run(cmd, workspace) for _ in range(repeat)]).seconds
        for name, cmd in commands.items()
    }


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def table(rows: list[Row]) -> str:
    """Wall time (median), CPU time (user + system) in brackets, and how many times faster
    than Alembic in the same run."""
    head = (
        "| type | migrations | plan cold | plan warm | validate cold | validate warm "
        "| Alembic `upgrade head --sql` | vs Alembic: plan cold / warm, validate cold / warm "
        "| peak RSS plan (KiB per migration) | load |"
    )
    lines = [head, "|---|" + "---:|" * 9]
    for r in rows:
        if r.alembic is not None:
            alembic = f"{r.alembic:.2f} s [{r.alembic_cpu:.2f}]"
            ratio = " / ".join(
                f"{r.ratio(w):.1f}x"
                for w in ("plan_cold", "plan_warm", "validate_cold", "validate_warm")
            )
        else:
            alembic, ratio = f"not run (> {SETTINGS['alembic_limit']:.0f} s)", "-"
        per = r.rss_plan_mib * 1024 / r.migrations
        lines.append(
            f"| {r.kind} | {r.migrations:,} "
            f"| {r.plan_cold:.2f} s [{r.plan_cold_cpu:.2f}] "
            f"| {r.plan_warm:.2f} s [{r.plan_warm_cpu:.2f}] "
            f"| {r.validate_cold:.2f} s | {r.validate_warm:.2f} s "
            f"| {alembic} | {ratio} | {r.rss_plan_mib:.0f} MiB ({per:.1f}) "
            f"| {r.load[0]:.1f}-{r.load[1]:.1f} |"
        )
    return "\n".join(lines)


def plot(rows: list[Row], path: Path) -> None:
    """Cold and warm plan time against size, per type, with Alembic (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for kind in sorted({r.kind for r in rows}):
        mine = sorted((r for r in rows if r.kind == kind), key=lambda r: r.migrations)
        sizes = [r.migrations for r in mine]
        ax.plot(sizes, [r.plan_cold for r in mine], marker="o", label=f"{kind} cold")
        if kind == "mixed":
            ax.plot(sizes, [r.plan_warm for r in mine], marker="s", ls="--", label="mixed warm")
    by_size: dict[int, list[float]] = {}
    for r in rows:
        if r.alembic is not None:
            by_size.setdefault(r.migrations, []).append(r.alembic)
    alembic = [(size, sorted(v)[len(v) // 2]) for size, v in sorted(by_size.items())]
    if alembic:
        ax.plot(*zip(*alembic, strict=True), marker="x", color="black", lw=2, label="Alembic")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("migrations")
    ax.set_ylabel("seconds (wall, median)")
    ax.set_title("releasectl plan --format json (cold, warm) and alembic upgrade head --sql")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument(
        "--types", default="mixed", help=f"comma-separated, of {', '.join(KINDS)} (or all)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--workdir", type=Path, help="where to generate (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the generated workspaces")
    parser.add_argument("--no-alembic", action="store_true")
    parser.add_argument(
        "--alembic-limit", type=float, default=ALEMBIC_LIMIT, help="seconds before giving up"
    )
    parser.add_argument("--floors", action="store_true", help="also measure the floors")
    parser.add_argument("--json", type=Path, help="also write the raw rows as JSON")
    parser.add_argument("--plot", type=Path, help="also draw the figure (PNG; matplotlib)")
    parser.add_argument(
        "--from-json",
        type=Path,
        action="append",
        help="measure nothing: print and plot the rows of earlier --json files",
    )
    args = parser.parse_args(argv)
    if args.from_json:
        fields = set(Row.__dataclass_fields__)
        saved = [
            Row(**{k: v for k, v in row.items() if k in fields})
            for path in args.from_json
            for row in json.loads(path.read_text())["rows"]
        ]
        print(table(saved))
        if args.plot:
            plot(saved, args.plot)
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    SETTINGS["alembic_limit"] = args.alembic_limit
    kinds = list(KINDS) if args.types == "all" else args.types.split(",")
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown type(s): {', '.join(sorted(unknown))}")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="releasectl-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}", file=sys.stderr)
    rows: list[Row] = []
    found_floors: dict[str, float] = {}
    try:
        for size in sorted(sizes):
            alembic = not args.no_alembic
            for kind in kinds:
                print(f"{size} {kind} migrations ...", file=sys.stderr)
                row = measure(size, kind, workdir, args.repeat, alembic)
                rows.append(row)
                print(table([row]).splitlines()[-1], file=sys.stderr)
        if args.floors:
            size = max(s for s in sizes if s <= 10000) if min(sizes) <= 10000 else min(sizes)
            if not (workdir / f"ws-script-{size}").exists():
                generate_workspace(workdir / f"ws-script-{size}", size, kind="script")
            found_floors = floors(workdir, size, args.repeat)
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"Machine: {machine()}, {time.strftime('%Y-%m-%d')}\n")
    print(table(rows))
    if found_floors:
        print("\n| floor | seconds |\n|---|---:|")
        for name, seconds in found_floors.items():
            print(f"| {name} | {seconds:.3f} |")
    if args.plot:
        plot(rows, args.plot)
    if args.json:
        data = [
            {
                **asdict(r),
                **{
                    f"ratio_{w}": r.ratio(w)
                    for w in ("plan_cold", "plan_warm", "validate_cold", "validate_warm")
                },
            }
            for r in rows
        ]
        doc = {"machine": machine(), "rows": data, "floors": found_floors}
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
