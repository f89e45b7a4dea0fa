"""The target types the fault suite injects faults into: for each, a component with three
migrations, the target settings of an environment, and a picture of the target's data that
two targets at the same version share byte for byte (Redis keys by DUMP, SQL schema and rows,
rendered files, the Cedar policy set, the script's files)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.builders import make_workspace
from tests.cedar_helpers import SCHEMA_V2, V1, V2, tests_yaml

RELEASE = "1.0.0"
TOP = 3  # migrations of every kind; release 1.0.0 pins the component at 3
STATE_PREFIX = "rcstate"  # Redis state keys, left out of the data picture
HISTORY_TABLE = "releasectl_schema_history"

Picture = Any


@dataclass
class Place:
    """Where one fault's targets live: the workspace, and the servers it may use."""

    root: Path
    redis_url: str = ""  # the private server (or the proxy in front of it)
    postgres_url: str = ""  # a fresh database (or the proxy in front of it)
    state: dict[str, Any] = field(default_factory=lambda: {"backend": "file"})
    lock: dict[str, Any] = field(default_factory=dict)
    backups: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Kind:
    name: str
    component: str
    type: str
    migrations: dict[str, dict[str, str]]
    settings: Callable[[Place], dict[str, Any]]
    picture: Callable[[Place], Picture]
    ops: tuple[int, ...]  # operations inside each step (where `in-run` fires), per step
    inside: str = "in-run"  # the failpoint hit between a step's operations
    needs: str = ""  # "redis" or "postgres": the server the kind runs against
    backup: bool = True  # its steps take a backup (SQL steps roll back by transaction/down)

    def write(self, place: Place) -> Path:
        env: dict[str, Any] = {"state": place.state}
        if place.lock:
            env["lock"] = place.lock
        if place.backups:
            env["backups"] = place.backups
        root = make_workspace(
            place.root,
            components={self.component: {"type": self.type}},
            targets={self.component: self.settings(place)},
            env=env,
            releases={RELEASE: {self.component: TOP}},
            migrations={self.component: self.migrations},
        )
        if self.type == "script":
            (root / "data").mkdir(exist_ok=True)
            (root / "data/seed.txt").write_text("seed\n")
        return root


# --- Redis ----------------------------------------------------------------------------------

REDIS_MIGRATIONS = {
    "0001_seed": {
        "up.yaml": """
            ops:
              - hset: {key: 'config:app', fields: {ttl: '60', mode: 'strict', tier: 'gold'}}
              - set: {key: 'k:1', value: 'one'}
              - set: {key: 'k:2', value: 'two'}
              - sadd: {key: 'roles', members: [admin, viewer, auditor]}
              - set: {key: 'schema:cache:version', value: '1'}
        """,
        "down.yaml": """
            ops:
              - del: {keys: ['config:app', 'k:1', 'k:2', 'roles', 'schema:cache:version']}
        """,
    },
    "0002_queues": {
        "up.yaml": """
            ops:
              - rpush: {key: 'queue', values: [a, b, c]}
              - zadd: {key: 'ranks', members: {a: 1, b: 2}}
              - hset: {key: 'config:app', fields: {limit: '10'}}
              - srem: {key: 'roles', members: [auditor]}
              - set: {key: 'schema:cache:version', value: '2'}
        """,
        "down.yaml": """
            ops:
              - del: {keys: ['queue', 'ranks']}
              - hdel: {key: 'config:app', fields: [limit]}
              - sadd: {key: 'roles', members: [auditor]}
              - set: {key: 'schema:cache:version', value: '1'}
        """,
    },
    "0003_rename": {
        "up.yaml": """
            ops:
              - rename: {from: 'k:', to: 'key:'}
              - set: {key: 'key:3', value: 'three'}
              - del: {keys: ['queue']}
              - set: {key: 'schema:cache:version', value: '3'}
        """,
        "down.yaml": """
            ops:
              - del: {keys: ['key:3']}
              - rename: {from: 'key:', to: 'k:'}
              - rpush: {key: 'queue', values: [a, b, c]}
              - set: {key: 'schema:cache:version', value: '2'}
        """,
    },
}


def _redis_picture(url: str, root: Path) -> Picture:
    from releasectl.clients.redis import Endpoint
    from tests.redis_helpers import snapshot

    endpoint = Endpoint(url, root, name="fault suite")
    try:
        keys = snapshot(endpoint.client())
    finally:
        endpoint.close()
    return {k: (t, v, ttl) for k, (t, v, ttl) in keys.items() if not k.startswith(b"rcstate")}


EMBEDDED = "redis+embedded://.releasectl/data/redis.db"

REDIS = Kind(
    name="redis",
    component="cache",
    type="redis",
    migrations=REDIS_MIGRATIONS,
    settings=lambda place: {"url": EMBEDDED},
    picture=lambda place: _redis_picture(EMBEDDED, place.root),
    ops=(5, 5, 4),
)
REDIS_SERVER = Kind(
    name="redis-server",
    component="cache",
    type="redis",
    migrations=REDIS_MIGRATIONS,
    settings=lambda place: {"url": place.redis_url},
    picture=lambda place: _redis_picture(place.redis_url, place.root),
    ops=(5, 5, 4),
    needs="redis",
)

# --- SQL ------------------------------------------------------------------------------------

SQL_MIGRATIONS = {
    "0001_users": {
        "up.sql": """
            CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
            INSERT INTO users (id, name) VALUES (1, 'ada');
            INSERT INTO users (id, name) VALUES (2, 'bob');
            CREATE INDEX users_name ON users (name);
        """,
        "down.sql": "DROP TABLE users;\n",
    },
    "0002_roles": {
        "up.sql": """
            CREATE TABLE roles (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
            INSERT INTO roles (id, title) VALUES (1, 'admin');
            ALTER TABLE users ADD COLUMN role_id INTEGER;
            UPDATE users SET role_id = 1 WHERE id = 1;
        """,
        "down.sql": """
            ALTER TABLE users DROP COLUMN role_id;
            DROP TABLE roles;
        """,
    },
    "0003_audit": {
        "up.sql": """
            CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT NOT NULL);
            INSERT INTO audit (id, what) VALUES (1, 'created');
            INSERT INTO audit (id, what) VALUES (2, 'upgraded');
            UPDATE users SET name = upper(name);
        """,
        "down.sql": """
            UPDATE users SET name = lower(name);
            DROP TABLE audit;
        """,
    },
}


def _sqlite_picture(place: Place) -> Picture:
    """Tables (columns as PRAGMA table_info gives them, not the DDL text an ALTER rewrites),
    indexes and rows."""
    import sqlite3

    path = place.root / ".releasectl/data/app.db"
    if not path.exists():
        return {}
    conn = sqlite3.connect(path)
    try:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                "'sqlite_%' AND name != ? ORDER BY name",
                (HISTORY_TABLE,),
            )
        ]
        out: dict[str, Any] = {}
        for name in tables:
            columns = sorted(
                (c[1], c[2], c[3], c[5]) for c in conn.execute(f'PRAGMA table_info("{name}")')
            )
            indexes = sorted(i[1] for i in conn.execute(f'PRAGMA index_list("{name}")'))
            select = ", ".join(f'"{c[0]}"' for c in columns)
            rows = conn.execute(f'SELECT {select} FROM "{name}" ORDER BY 1').fetchall()
            out[name] = (columns, indexes, rows)
        return out
    finally:
        conn.close()


def _postgres_picture(place: Place) -> Picture:
    import psycopg

    with psycopg.connect(place.postgres_url, autocommit=True) as conn:
        columns = conn.execute(  # by name: a column dropped and added again moves to the end
            "SELECT table_name, column_name, data_type, is_nullable "
            "FROM information_schema.columns WHERE table_schema = 'public' AND table_name != %s "
            "ORDER BY table_name, column_name",
            (HISTORY_TABLE,),
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename != %s ORDER BY indexname",
            (HISTORY_TABLE,),
        ).fetchall()
        out: dict[str, Any] = {"columns": columns, "indexes": indexes}
        for table in sorted({c[0] for c in columns}):
            names = sorted(c[1] for c in columns if c[0] == table)
            select = ", ".join(f'"{n}"' for n in names)
            out[table] = conn.execute(f'SELECT {select} FROM "{table}" ORDER BY 1').fetchall()
        return out


SQLITE = Kind(
    name="sqlite",
    component="db",
    type="sql",
    migrations=SQL_MIGRATIONS,
    settings=lambda place: {"url": "sqlite:///.releasectl/data/app.db"},
    picture=_sqlite_picture,
    ops=(4, 4, 4),
    backup=False,
)
POSTGRES = Kind(
    name="postgres",
    component="db",
    type="sql",
    migrations=SQL_MIGRATIONS,
    settings=lambda place: {"url": place.postgres_url},
    picture=_postgres_picture,
    ops=(4, 4, 4),
    needs="postgres",
    backup=False,
)

# --- rendered config ------------------------------------------------------------------------


def _configmap(name: str, **data: str) -> str:
    body = ", ".join(f"{k}: {v!r}" for k, v in data.items())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{{body}}}\n"


CONFIG_MIGRATIONS = {
    "0001_base": {
        "app.yaml": _configmap("app", LEVEL="info", TLS="false"),
        "worker.yaml": _configmap("worker", THREADS="4"),
    },
    "0002_harden": {
        "app.yaml": _configmap("app", LEVEL="info", TLS="true"),
        "worker.yaml": _configmap("worker", THREADS="8"),
        "limits.yaml": _configmap("limits", RPS="100"),
    },
    "0003_split": {
        "app.yaml": _configmap("app", LEVEL="warn", TLS="true"),
        "limits.yaml": _configmap("limits", RPS="200"),
        "queue.yaml": _configmap("queue", SIZE="1000"),
    },
}


def _files(directory: Path) -> Picture:
    if not directory.is_dir():
        return {}
    out: dict[str, str] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            out[path.relative_to(directory).as_posix()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    return out


CONFIG = Kind(
    name="config",
    component="config",
    type="kubernetes",
    migrations=CONFIG_MIGRATIONS,
    settings=lambda place: {"mode": "render", "path": "deploy/config"},
    picture=lambda place: _files(place.root / "deploy/config"),
    ops=(2, 3, 3),
)

# --- Cedar ----------------------------------------------------------------------------------

AUDIT = (
    '@id("auditors-view")\n'
    'permit (principal in Role::"auditor", action == Action::"view", resource);\n'
)
V3 = {
    **{k: v for k, v in V2.items() if k != "tests/basic.yaml"},
    "audit.cedar": AUDIT,
    "schema.cedarschema": SCHEMA_V2,
    "tests/basic.yaml": tests_yaml(
        ("admin applies", "alice", "apply", "allow"),
        ("nobody unlocks", "alice", "unlock", "deny"),
    ),
}


def _policy_set(place: Place) -> Picture:
    from releasectl.cedarlib.stores import DirStore

    files = DirStore(place.root / "deploy/policies", "deploy/policies").read()
    if files is None:
        return {}
    return {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}


CEDAR = Kind(
    name="cedar",
    component="policies",
    type="cedar",
    migrations={"0001_roles": V1, "0002_unlock": V2, "0003_audit": V3},
    settings=lambda place: {"store": "dir", "path": "deploy/policies"},
    picture=_policy_set,
    ops=(1, 1, 1),
    inside="cedar-store-before-swap",
)

# --- scripts --------------------------------------------------------------------------------

SCRIPT_MIGRATIONS = {
    "0001_one": {
        "migration.yaml": "scope: [data]\ntimeout: 60\n",
        "up.sh": """
            echo one > data/one.txt
            echo 1 >> data/log.txt
        """,
        "down.sh": """
            rm -f data/one.txt
            if [ -f data/log.txt ]; then sed -i '$d' data/log.txt; fi
        """,
    },
    "0002_two": {
        "migration.yaml": "scope: [data]\ntimeout: 60\n",
        "up.sh": """
            echo two > data/two.txt
            touch "$RELEASECTL_WORKSPACE/.running-2"
            sleep 0.4
            echo 2 >> data/log.txt
        """,
        "down.sh": """
            rm -f data/two.txt
            if [ -f data/log.txt ]; then sed -i '$d' data/log.txt; fi
        """,
    },
    "0003_rename": {
        "migration.yaml": "scope: [data]\ntimeout: 60\n",
        "up.sh": """
            mv data/one.txt data/uno.txt
            echo 3 >> data/log.txt
        """,
        "down.sh": """
            if [ -f data/uno.txt ]; then mv data/uno.txt data/one.txt; fi
            if [ -f data/log.txt ]; then sed -i '$d' data/log.txt; fi
        """,
    },
}

SCRIPT = Kind(
    name="script",
    component="hooks",
    type="script",
    migrations=SCRIPT_MIGRATIONS,
    settings=lambda place: {},
    picture=lambda place: _files(place.root / "data"),
    ops=(1, 1, 1),
)

KINDS: dict[str, Kind] = {
    k.name: k for k in (REDIS, REDIS_SERVER, SQLITE, POSTGRES, CONFIG, CEDAR, SCRIPT)
}


def copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, symlinks=True)
