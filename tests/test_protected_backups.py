"""A protected environment restores only authenticated, encrypted backups: a plain backup,
or a sealed one moved to another component or id, copied into its backup directory is
refused before anything is deleted (the example's `prod`, on embedded Redis servers)."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from releasectl.clients.redis import Endpoint
from releasectl.state.backups import BackupError, BackupStore
from tests.conftest import run_cli

KEY = base64.b64encode(bytes(range(32))).decode()
PROD_REDIS = "redis+embedded://.releasectl/prod/redis.db"


@pytest.fixture
def prod(example: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """`prod` on embedded servers, alice (an admin of authz/entities.yaml) at the wheel."""
    monkeypatch.setenv("RELEASECTL_STATE_URL", "redis+embedded://.releasectl/prod/state.db")
    monkeypatch.setenv("REDIS_URL", PROD_REDIS)
    monkeypatch.setenv("DATABASE_URL", "sqlite:///.releasectl/prod/platform.db")
    monkeypatch.setenv("RELEASECTL_BACKUP_KEY", KEY)
    monkeypatch.setenv("RELEASECTL_ACTOR", "alice")
    endpoint = Endpoint(PROD_REDIS, example, name="prod redis")
    client = endpoint.client(decode=True)
    client.hset("config:auth", mapping={"session_ttl": "prod-value", "mfa_required": "true"})
    client.set("prod:only", "keep me")
    yield example
    endpoint.close()


def prod_keys(root: Path) -> dict[str, object]:
    endpoint = Endpoint(PROD_REDIS, root, name="prod redis")
    try:
        client = endpoint.client(decode=True)
        return {
            "config:auth": client.hgetall("config:auth"),
            "prod:only": client.get("prod:only"),
            "keys": sorted(client.keys("*")),
        }
    finally:
        endpoint.close()


def local_backup(root: Path) -> str:
    """A real, plain backup of the `local` environment's Redis (unprotected)."""
    assert run_cli("apply", "--yes", cwd=root).code == 0
    made = run_cli("backup", "redis", cwd=root)
    assert made.code == 0, made
    listed = run_cli("backup", "--list", "redis", "--format", "json", cwd=root)
    backups = json.loads(listed.out)
    assert backups and not backups[-1]["encrypted"]
    return str(backups[-1]["id"])


def plant(root: Path, backup_id: str, source_env: str, component: str = "redis") -> None:
    """Copy a backup into prod's backup directory, its metadata made to look like prod's."""
    src = root / ".releasectl/backups" / source_env / "redis"
    dest = root / ".releasectl/backups/prod" / component
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / f"{backup_id}.bak", dest / f"{backup_id}.bak")
    meta = json.loads((src / f"{backup_id}.json").read_text())
    meta.update(env="prod", component=component)
    (dest / f"{backup_id}.json").write_text(json.dumps(meta))


def test_a_plain_backup_copied_into_prod_is_refused(prod: Path) -> None:
    before = prod_keys(prod)
    backup_id = local_backup(prod)
    plant(prod, backup_id, "local")
    result = run_cli("restore", "redis", backup_id, "--env", "prod", "--yes", cwd=prod)
    assert result.code == 1, result
    assert f"backup {backup_id} is not encrypted" in result.err
    assert "restores only authenticated ones" in result.err
    assert prod_keys(prod) == before  # nothing deleted, nothing written


def test_a_sealed_backup_of_another_component_does_not_open(prod: Path) -> None:
    made = run_cli("backup", "redis", "--env", "prod", cwd=prod)
    assert made.code == 0, made
    listed = run_cli("backup", "--list", "redis", "--env", "prod", "--format", "json", cwd=prod)
    sealed = json.loads(listed.out)[-1]
    assert sealed["encrypted"]
    # the same sealed file, presented as a backup of another component
    store = BackupStore(
        prod / ".releasectl/backups",
        "prod",
        encrypt=True,
        key_env="RELEASECTL_BACKUP_KEY",
        retention=50,
        environ={"RELEASECTL_BACKUP_KEY": KEY},
    )
    plant(prod, sealed["id"], "prod", component="database")
    meta = store.get(sealed["id"], "database")
    with pytest.raises(BackupError, match="wrong key or the file was altered"), store.reader(meta):
        pass
    # prod's own, untouched, still opens
    with store.reader(store.get(sealed["id"], "redis")) as src:
        assert src.read(1)


def test_a_protected_environment_cannot_turn_encryption_off(prod: Path) -> None:
    path = prod / "releasectl.yaml"
    text = path.read_text()
    path.write_text(
        text.replace(
            "backups: {retention: 50, encrypt: true}", "backups: {retention: 50, encrypt: false}"
        )
    )
    result = run_cli("validate", cwd=prod)
    assert result.code == 1
    assert (
        "environments.prod.backups.encrypt: a protected environment always encrypts" in result.err
    )
    result = run_cli("backup", "redis", "--env", "prod", cwd=prod)
    assert result.code == 1 and "always encrypts its backups" in result.err


def test_an_unprotected_environment_still_restores_its_plain_backups(example: Path) -> None:
    backup_id = local_backup(example)
    result = run_cli("restore", "redis", backup_id, "--yes", cwd=example)
    assert result.code == 0, result
