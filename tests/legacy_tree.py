"""An old framework tree, built the way its guide describes it, and the data it left behind.

```
legacy/scripts/migrations/
  migration-framework.sh
  migrations/redis/v1_initial_settings.sh, v2_monitoring.sh, rollback_1_to_0.sh, rollback_2_to_1.sh
  migrations/database/001_initial_schema.sh, 002_user_locale.sh, rollback/rollback_*_to_*.sh
  migrations/config/v1_base_config.sh (kubectl apply), rollback_1_to_0.sh
  migrations/policies/v1_rbac.sh, v2_guardrails.sh (plain shell: files), rollbacks
  state/redis_version (2), database_version (2), config_version (1), policies_version (2)
  state/migration_history.csv   header row; a failure of database 2 and its rollback in it
  backups/redis_20250301.rdb, database_20250301.sql
legacy/scripts/version-management.sh
```

`run_old_framework` puts the Redis keys and SQLite tables there as the old scripts would have:
the same commands and SQL, sent through a real client.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import redis as redis_lib

REDIS_UP: dict[int, list[tuple[str, ...]]] = {
    1: [
        ("HSET", "config:auth", "session_ttl_seconds", "3600", "max_login_attempts", "5"),
        ("SADD", "rbac:roles", "admin", "operator", "viewer"),
        ("SET", "schema:redis:version", "1"),
    ],
    2: [
        ("HSET", "monitoring:thresholds", "failed_logins_per_minute", "50"),
        ("SET", "schema:redis:version", "2"),
    ],
}
REDIS_DOWN: dict[int, list[tuple[str, ...]]] = {
    1: [("DEL", "config:auth", "rbac:roles", "schema:redis:version")],
    2: [("DEL", "monitoring:thresholds"), ("SET", "schema:redis:version", "1")],
}
SQL_UP = {
    1: "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);\n"
    "INSERT INTO users (email) VALUES ('admin@example.com');",
    2: "ALTER TABLE users ADD COLUMN locale TEXT NOT NULL DEFAULT 'en';",
}
SQL_DOWN = {
    1: "DROP TABLE users;",
    2: "ALTER TABLE users DROP COLUMN locale;",
}
HISTORY = """\
timestamp,component,version,event
2025-02-01 09:00:00,redis,1,migration_started
2025-02-01 09:00:01,redis,1,migration_completed
2025-02-01 09:00:01,redis,1,version_updated
2025-02-01 09:05:00,database,1,migration_started
2025-02-01 09:05:02,database,1,migration_completed
2025-02-01 09:05:02,database,1,version_updated
2025-02-03 14:00:00,database,2,migration_started
2025-02-03 14:00:03,database,2,migration_failed
2025-02-03 14:00:04,database,2,rollback_started
2025-02-03 14:00:05,database,1,rollback_completed
2025-02-04 10:00:00,database,2,migration_started
2025-02-04 10:00:02,database,2,migration_completed
2025-02-04 10:00:02,database,2,version_updated
2025-02-05 11:00:00,redis,2,migration_started
2025-02-05 11:00:01,redis,2,migration_completed
2025-02-05 11:00:01,redis,2,version_updated
"""
REDIS_CONNECT = 'redis-cli -h "${REDIS_HOST:-127.0.0.1}" -p "${REDIS_PORT:-6379}"'


def _redis_script(purpose: str, commands: list[tuple[str, ...]]) -> str:
    lines = [
        "#!/bin/bash",
        f"# Purpose: {purpose}",
        "set -euo pipefail",
        f'echo "redis: {purpose}"',
    ]
    lines += [f"{REDIS_CONNECT} {' '.join(command)}" for command in commands]
    return "\n".join(lines) + "\n"


def _sql_script(description: str, sql: str) -> str:
    return (
        "#!/bin/bash\n"
        f'MIGRATION_DESCRIPTION="{description}"\n'
        "set -e\n"
        "sqlite3 \"$DB_PATH\" <<'SQL'\n"
        "BEGIN;\n"
        f"{sql}\n"
        "COMMIT;\n"
        "SQL\n"
        'echo "database migrated"\n'
    )


def _files_script(purpose: str, body: str) -> str:
    return f"#!/bin/bash\n# Purpose: {purpose}\nset -e\n{body}\n"


def build_tree(root: Path, *, history: str = HISTORY) -> Path:
    """The old repository at `root`; returns it."""
    base = root / "scripts" / "migrations"
    mig = base / "migrations"
    files: dict[str, str] = {
        "redis/v1_initial_settings.sh": _redis_script("Initial settings", REDIS_UP[1]),
        "redis/v2_monitoring.sh": _redis_script("Monitoring thresholds", REDIS_UP[2]),
        "redis/rollback_1_to_0.sh": _redis_script("Remove initial settings", REDIS_DOWN[1]),
        "redis/rollback_2_to_1.sh": _redis_script("Remove monitoring", REDIS_DOWN[2]),
        "database/001_initial_schema.sh": _sql_script("Users table", SQL_UP[1]),
        "database/002_user_locale.sh": _sql_script("Users get a locale", SQL_UP[2]),
        "database/rollback/rollback_1_to_0.sh": _sql_script("Drop users", SQL_DOWN[1]),
        "database/rollback/rollback_2_to_1.sh": _sql_script("Drop locale", SQL_DOWN[2]),
        "config/v1_base_config.sh": _files_script(
            "Base config", 'kubectl apply -f "$(dirname "$0")/manifests/base.yaml"'
        ),
        "config/rollback_1_to_0.sh": _files_script(
            "Remove base config", 'kubectl delete -f "$(dirname "$0")/manifests/base.yaml"'
        ),
        "config/manifests/base.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\n",
        "policies/v1_rbac.sh": _files_script(
            "RBAC policies",
            'mkdir -p "$POLICY_DIR"\necho "permit(principal, action, resource);"'
            ' > "$POLICY_DIR/rbac.cedar"',
        ),
        "policies/v2_guardrails.sh": _files_script(
            "Guardrails", 'echo "forbid(principal, action, resource);" > "$POLICY_DIR/guard.cedar"'
        ),
        "policies/rollback_1_to_0.sh": _files_script("", 'rm -f "$POLICY_DIR/rbac.cedar"'),
        "policies/rollback_2_to_1.sh": _files_script("", 'rm -f "$POLICY_DIR/guard.cedar"'),
    }
    for rel, text in files.items():
        path = mig / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    state = base / "state"
    state.mkdir(parents=True)
    for name, version in (("redis", 2), ("database", 2), ("config", 1), ("policies", 2)):
        (state / f"{name}_version").write_text(f"{version}\n")
    (state / "migration_history.csv").write_text(history)
    (base / "backups").mkdir()
    (base / "backups" / "redis_20250301.rdb").write_bytes(b"REDIS0009")
    (base / "backups" / "database_20250301.sql").write_text("-- dump\n")
    (base / "migration-framework.sh").write_text("#!/bin/bash\n# the old framework\n")
    (root / "scripts" / "version-management.sh").write_text("#!/bin/bash\n")
    return root


def run_old_framework(
    redis_client: redis_lib.Redis, db_path: Path, *, redis: int = 2, sql: int = 2
) -> None:
    """What the old framework did to the data stores, up to the given versions."""
    for version in range(1, redis + 1):
        for command in REDIS_UP[version]:
            cast(Any, redis_client).execute_command(*command)  # the old scripts' commands
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db_path) as conn:
        for version in range(1, sql + 1):
            conn.executescript(SQL_UP[version])
    conn.close()
