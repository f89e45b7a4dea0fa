"""The migration catalogue and its scan cache (.releasectl/cache/migrations.json): a cached
scan finds exactly what a fresh one finds, and every kind of edit is seen, even one that keeps
the size and the mtime."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from releasectl.planning.checks import migration_problems, secret_problems
from releasectl.secrets import RULES, scan_text
from releasectl.workspace import Workspace, digests, scancache
from releasectl.workspace.catalogue import Catalogue, checksum_dir, scan_catalogue
from releasectl.workspace.digests import digest, digest_many
from releasectl.workspace.scancache import CACHE_DIR, CACHE_FILE, ScanCache

SPECS = [
    ("cache", "redis", "migrations/cache"),
    ("config", "kubernetes", "migrations/config"),
    ("db", "sql", "migrations/db"),
]
AWS_KEY = "AKIA" + "ABCDEFGHIJKLMNOP"  # split so this file holds no literal key


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def make_tree(root: Path) -> None:
    db = root / "migrations/db"
    write(db / "0001_users/up.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY);\r\n")
    write(db / "0001_users/down.sql", "DROP TABLE users;\n")
    write(db / "0001_users/migration.yaml", "description: users\nscope: [users]\ntimeout: 30\n")
    write(db / "0002_roles/up.sql", "\ufeffCREATE TABLE roles (id INTEGER);\n")  # BOM, no down
    write(db / "0003_seed/up.sql", f"-- key {AWS_KEY}\nINSERT INTO users VALUES (1);\n")
    write(db / "0003_seed/down.sql", "DELETE FROM users;\n")
    write(db / "0003_seed/.hidden", "not part of the migration")
    cache = root / "migrations/cache"
    write(cache / "0001_python/migration.py", "def up(r):\n    pass\n\ndef down(r):\n    pass\n")
    write(cache / "0001_python/migration.yaml", "scope: ['auth:*']\nbreaking: true\n")
    write(cache / "0002_noway/migration.py", "def up(r):\n    pass\n")
    config = root / "migrations/config"
    write(config / "0001_base/objects/cm.yaml", "apiVersion: v1\nkind: ConfigMap\n")
    write(config / "0001_base/more.yaml", "apiVersion: v1\nkind: ConfigMap\n")


def wait_past(root: Path) -> None:
    """Wait until the filesystem clock is past every time stamp under `root`, so the scan's
    entries are not racily clean and get cached (a few milliseconds on most systems)."""
    newest = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames, "."]:
            st = os.stat(os.path.join(dirpath, name))
            newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    probe = root / ".probe"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        probe.write_text("x")
        if probe.stat().st_mtime_ns > newest:
            probe.unlink()
            return
        time.sleep(0.002)
    raise AssertionError("the filesystem clock did not move")


def scan(root: Path, *, cache: bool = True) -> Catalogue:
    return scan_catalogue(root, SPECS, ScanCache(root, active=True) if cache else None)


def view(catalogue: Catalogue) -> dict[str, object]:
    """Everything a scan finds, in comparable form."""
    out: dict[str, object] = {"errors": [str(e) for e in catalogue.errors]}
    for name, found in catalogue.components.items():
        for m in found.migrations:
            out[f"{name}/{m.id}"] = (
                m.number,
                m.files,
                m.checksum,
                m.has_down,
                m.meta.model_dump(),
                m.findings,
                str(m.path),
            )
    return out


def cached_entries(root: Path) -> dict[str, str]:
    doc = json.loads((root / CACHE_DIR / CACHE_FILE).read_text())
    entries: dict[str, str] = doc["entries"]
    return entries


def test_a_cached_scan_finds_what_a_fresh_scan_finds(tmp_path: Path) -> None:
    make_tree(tmp_path)
    wait_past(tmp_path)
    fresh = view(scan(tmp_path, cache=False))
    first = view(scan(tmp_path))  # reads the files, writes the cache
    assert len(cached_entries(tmp_path)) == 6
    cache = ScanCache(tmp_path, active=True)
    hit = cache.lookup(
        "migrations/db/0001_users", str(tmp_path / "migrations/db/0001_users"), "sql"
    )
    assert hit is not None and hit.checksum == checksum_dir(tmp_path / "migrations/db/0001_users")
    second = view(scan(tmp_path))  # from the cache
    assert fresh == first == second
    found = scan(tmp_path)
    users = found.components["db"].migrations[0]
    assert users.meta.scope == ("users",) and users.meta.timeout == 30
    assert found.components["db"].migrations[1].has_down is False
    assert [m.has_down for m in found.components["cache"].migrations] == [True, False]
    assert found.components["cache"].migrations[0].meta.breaking is True
    assert found.components["config"].migrations[0].files == ("more.yaml", "objects/cm.yaml")
    assert found.errors == []


def test_checksum_is_the_documented_one(tmp_path: Path) -> None:
    make_tree(tmp_path)
    found = scan(tmp_path, cache=False)
    roles = found.components["db"].migrations[1]
    import hashlib

    body = b"CREATE TABLE roles (id INTEGER);\n"  # BOM removed
    expected = hashlib.sha256(b"up.sql\0" + str(len(body)).encode() + b"\0" + body).hexdigest()
    assert roles.checksum == expected


def test_an_edit_that_keeps_size_and_mtime_is_seen(tmp_path: Path) -> None:
    make_tree(tmp_path)
    wait_past(tmp_path)
    scan(tmp_path)
    target = tmp_path / "migrations/db/0001_users/down.sql"
    before = target.stat()
    target.write_text("DROP TABLE usrrs;\n")  # same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime as cached
    assert target.stat().st_size == before.st_size
    assert target.stat().st_mtime_ns == before.st_mtime_ns
    users = scan(tmp_path).components["db"].migrations[0]
    assert users.checksum == checksum_dir(target.parent)


def test_an_edit_right_after_the_scan_is_seen(tmp_path: Path) -> None:
    """No waiting: the edit may land in the same clock tick as the scan's reads."""
    make_tree(tmp_path)
    wait_past(tmp_path)
    scan(tmp_path)
    for text in ("DROP TABLE x1;\n", "DROP TABLE x2;\n", "DROP TABLE x3;\n"):
        target = tmp_path / "migrations/db/0001_users/down.sql"
        target.write_text(text)
        users = scan(tmp_path).components["db"].migrations[0]
        assert users.checksum == checksum_dir(target.parent)


def test_racily_clean_entries_are_not_kept(tmp_path: Path) -> None:
    make_tree(tmp_path)
    wait_past(tmp_path)
    scan(tmp_path)
    target = tmp_path / "migrations/db/0002_roles/up.sql"
    future = time.time_ns() + 3_600 * 10**9  # newer than the scan's clock: maybe racy
    os.utime(target, ns=(future, future))
    scan(tmp_path)
    entries = cached_entries(tmp_path)
    assert "migrations/db/0002_roles" not in entries
    assert "migrations/db/0001_users" in entries  # the others stay cached
    # the racy entry is read again, so an edit keeping size and mtime is still seen
    target.write_text("CREATE TABLE rolez (id INTEGER);\n")
    os.utime(target, ns=(future, future))
    roles = scan(tmp_path).components["db"].migrations[1]
    assert roles.checksum == checksum_dir(target.parent)


def test_added_removed_and_renamed_files_and_migrations_are_seen(tmp_path: Path) -> None:
    make_tree(tmp_path)
    wait_past(tmp_path)
    scan(tmp_path)
    base = tmp_path / "migrations/db"
    write(base / "0002_roles/down.sql", "DROP TABLE roles;\n")
    write(tmp_path / "migrations/config/0001_base/objects/extra.yaml", "kind: ConfigMap\n")
    (base / "0003_seed/down.sql").rename(base / "0003_seed/verify.sql")
    write(base / "0004_more/up.sql", "SELECT 1;\n")
    found = scan(tmp_path)
    db = found.components["db"].migrations
    assert [m.id for m in db] == ["0001_users", "0002_roles", "0003_seed", "0004_more"]
    assert db[1].has_down is True and db[1].files == ("down.sql", "up.sql")
    assert db[2].files == ("up.sql", "verify.sql") and db[2].has_down is False
    config = found.components["config"].migrations[0]
    assert config.files == ("more.yaml", "objects/cm.yaml", "objects/extra.yaml")
    assert view(found) == view(scan(tmp_path, cache=False))
    (base / "0004_more/up.sql").unlink()
    (base / "0004_more").rmdir()
    found = scan(tmp_path)
    assert [m.id for m in found.components["db"].migrations][-1] == "0003_seed"
    assert "migrations/db/0004_more" not in cached_entries(tmp_path)


def test_a_corrupt_or_foreign_cache_is_ignored(tmp_path: Path) -> None:
    make_tree(tmp_path)
    wait_past(tmp_path)
    expected = view(scan(tmp_path, cache=False))
    path = tmp_path / CACHE_DIR / CACHE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    for garbage in (b"\x00\xff not json", b"[1, 2]", b'{"format": 2, "code": "x"}'):
        path.write_bytes(garbage)
        assert view(scan(tmp_path)) == expected
    scan(tmp_path)
    doc = json.loads(path.read_text())
    doc["entries"] = dict.fromkeys(doc["entries"], "sql\0short")  # entries of the wrong shape
    path.write_text(json.dumps(doc))
    assert view(scan(tmp_path)) == expected
    doc = json.loads(path.read_text())
    assert doc["code"] == scancache.code_stamp()
    assert (tmp_path / CACHE_DIR / ".gitignore").read_text().endswith("*\n")


def test_a_changed_component_type_is_read_again(tmp_path: Path) -> None:
    write(tmp_path / "migrations/x/0001_a/up.sh", "echo up\n")
    write(tmp_path / "migrations/x/0001_a/up.sql", "SELECT 1;\n")
    write(tmp_path / "migrations/x/0001_a/down.sh", "echo down\n")
    wait_past(tmp_path)
    as_sql = scan_catalogue(tmp_path, [("x", "sql", "migrations/x")], ScanCache(tmp_path))
    as_script = scan_catalogue(tmp_path, [("x", "script", "migrations/x")], ScanCache(tmp_path))
    assert as_sql.components["x"].migrations[0].has_down is False
    assert as_script.components["x"].migrations[0].has_down is True


def test_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path)
    monkeypatch.setenv("RELEASECTL_CACHE", "0")
    scan_catalogue(tmp_path, SPECS, ScanCache(tmp_path))
    assert not (tmp_path / CACHE_DIR).exists()


def test_a_read_only_workspace_scans_without_a_cache(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root writes anyway: stand a file where the cache directory would go instead
        make_tree(tmp_path)
        write(tmp_path / ".releasectl", "a file, not a directory")
    else:
        make_tree(tmp_path)
        tmp_path.chmod(0o555)
    try:
        assert view(scan(tmp_path)) == view(scan(tmp_path, cache=False))
    finally:
        tmp_path.chmod(0o755)


def test_forked_helpers_give_the_same_digests(tmp_path: Path) -> None:
    make_tree(tmp_path)
    tasks = []
    from releasectl.workspace.catalogue import LAYOUTS

    for _, type_, directory in SPECS:
        for entry in sorted(os.listdir(tmp_path / directory)):
            tasks.append((str(tmp_path / directory / entry), type_, LAYOUTS[type_].down))
    serial = digest_many(tasks, processes=1)
    forked = digest_many(tasks, processes=2, min_tasks=1)
    assert [d.checksum for d in forked] == [d.checksum for d in serial]
    assert forked == serial
    assert serial[0] == digest(*tasks[0])


def test_secret_findings_match_the_rules(tmp_path: Path) -> None:
    make_tree(tmp_path)
    wait_past(tmp_path)
    for _ in range(2):  # cold, then from the cache
        seed = scan(tmp_path).components["db"].migrations[2]
        errors = [str(e) for e in secret_problems(seed)]
        assert errors == [
            "migrations/db/0003_seed/up.sql:1: literal secret (AWS access key id) at column 8: "
            "reference it from the environment instead (${env:VAR}, ExternalSecret)"
        ]


SAMPLES = {
    "aws-access-key": AWS_KEY,
    "aws-secret-key": "Aws_Secret = '" + "a" * 40 + "'",
    "private-key": "-----BEGIN RSA PRIVATE " + "KEY-----",
    "github-token": "ghp_" + "a" * 36,
    "github-pat": "github_pat_" + "a" * 60,
    "gitlab-token": "glpat-" + "a" * 20,
    "slack-token": "xoxb-" + "1" * 12,
    "google-api-key": "AIza" + "a" * 35,
    "stripe-key": "sk_live_" + "a" * 24,
    "jwt": "eyJ" + "a" * 12 + ".eyJ" + "b" * 12 + "." + "c" * 12,
    "url-password": "postgres://admin:" + "hunter2" + "@db/x",
    "generic-assignment": "DB_SIGNING_KEY=" + "hunter2-long-random-xyz",
    "sql-password": "CREATE ROLE app PASSWORD '" + "Zq8-long-random-xyz" + "'",
}


def test_the_literal_precheck_knows_every_rule() -> None:
    # a rule without words is always run (correct but slow): keep the table complete
    assert {rule for rule, _, _ in RULES} == set(digests.KEYWORDS)
    assert set(SAMPLES) == set(digests.KEYWORDS)
    for rule, sample in SAMPLES.items():
        text = f"line one\nvalue: {sample}\n"
        assert rule in {f.rule for f in scan_text(text)}, rule
        assert digests.may_hold_secret(text), rule
        found = digests.secret_findings("f.txt", text.encode())
        assert [(f[1], f[3], f[4]) for f in found] == [
            (f.rule, f.line, f.column) for f in scan_text(text)
        ]
    assert not digests.may_hold_secret("CREATE TABLE users (id INTEGER);\n")
    # re's (?i) matches LATIN SMALL LETTER LONG S as "s": so does the pre-check
    assert digests.may_hold_secret("-- the AW\u017f region\n")


def workspace(root: Path) -> Workspace:
    write(
        root / "releasectl.yaml",
        "apiVersion: releasectl/v1\nkind: Workspace\nname: ws\ncomponents:\n"
        "  cache: {type: redis}\n  db: {type: sql}\n"
        "environments:\n  local:\n    targets:\n"
        "      cache: {url: 'redis+embedded://.releasectl/r.db'}\n"
        "      db: {url: 'sqlite:///.releasectl/db.sqlite'}\n",
    )
    return Workspace.load(root)


def test_target_problems_are_cached_with_the_migration(tmp_path: Path) -> None:
    base = tmp_path / "migrations/cache/0001_keys"
    write(base / "up.yaml", "ops:\n  - set: {key: 'other:x', value: '1'}\n")
    write(base / "down.yaml", "ops:\n  - del: {keys: ['other:x']}\n")
    write(base / "migration.yaml", "scope: ['auth:*']\n")
    write(tmp_path / "migrations/db/0001_a/up.sql", "CREATE TABLE a (id INTEGER);\n")
    wait_past(tmp_path)
    cold = [str(e) for e in migration_problems(workspace(tmp_path))]
    assert any("outside the migration's scope" in e for e in cold), cold
    doc = json.loads((tmp_path / CACHE_DIR / CACHE_FILE).read_text())
    assert set(doc["problems"]) == {"migrations/cache/0001_keys", "migrations/db/0001_a"}
    warm = [str(e) for e in migration_problems(workspace(tmp_path))]
    assert warm == cold
    write(base / "up.yaml", "ops:\n  - set: {key: 'auth:x', value: '1'}\n")
    write(base / "down.yaml", "ops:\n  - del: {keys: ['auth:x']}\n")
    fixed = [str(e) for e in migration_problems(workspace(tmp_path))]
    assert fixed == [], fixed


def test_checks_shared_with_helpers_report_what_one_process_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from releasectl.planning import checks

    for n in range(1, 9):
        base = tmp_path / f"migrations/cache/{n:04d}_keys"
        key = "auth" if n % 2 else "other"
        write(base / "up.yaml", f"ops:\n  - set: {{key: '{key}:{n}', value: '1'}}\n")
        write(base / "down.yaml", f"ops:\n  - del: {{keys: ['{key}:{n}']}}\n")
        write(base / "migration.yaml", "scope: ['auth:*']\n")
        write(tmp_path / f"migrations/db/{n:04d}_t/up.sql", f"CREATE TABLE t{n} (id INTEGER);\n")
    monkeypatch.setenv("RELEASECTL_CACHE", "0")
    monkeypatch.setenv("RELEASECTL_JOBS", "1")
    ws = workspace(tmp_path)
    alone = [(str(e), type(e)) for e in migration_problems(ws)]
    assert len(alone) == 8  # up and down of the four migrations outside their scope
    monkeypatch.setattr(checks, "CHECKS_IN_HELPERS", 1)
    migrations = [m for found in ws.catalogue.components.values() for m in found.migrations]
    checker = checks._Checker()
    shared = checks._check_in_parallel(migrations, checker, processes=2)
    assert sorted(shared) == list(range(len(migrations)))  # every result came back
    found = [(str(e), type(e)) for i in sorted(shared) for e in shared[i]]
    assert sorted(found, key=str) == sorted(alone, key=str)


def test_binary_files_are_not_scanned_for_secrets(tmp_path: Path) -> None:
    from releasectl.workspace.digests import is_binary

    assert is_binary("blob.bin", b"\x00\x01" + AWS_KEY.encode())
    assert is_binary("dump.gz", b"text")
    assert not is_binary("up.sql", AWS_KEY.encode())
    root = tmp_path / "ws"
    (root / "migrations/db/0001_t").mkdir(parents=True)
    (root / "migrations/db/0001_t/up.sql").write_text("SELECT 1;\n")
    (root / "migrations/db/0001_t/fixture.bin").write_bytes(b"\x00" * 10 + AWS_KEY.encode())
    from releasectl.workspace.catalogue import scan_component

    found, errors = scan_component(root, "db", "sql", "migrations/db")
    assert errors == [] and found.migrations[0].findings == ()
    (root / "migrations/db/0001_t/notes.txt").write_text(f"key {AWS_KEY}\n")
    found, _ = scan_component(root, "db", "sql", "migrations/db")
    findings = found.migrations[0].findings
    assert findings is not None and [f[0] for f in findings] == ["notes.txt"]


def test_the_cache_keeps_where_a_secret_is_never_its_value(tmp_path: Path) -> None:
    """Issue 9: a refused secret is not copied into .releasectl/cache; a warm run, which takes
    the findings from the cache, still refuses every one of them."""
    from tests.builders import make_workspace
    from tests.conftest import run_cli

    secrets_by_part = {name: f"echo start\n{sample}\n" for name, sample in SAMPLES.items()}
    migrations = {
        f"{n:04d}_{name}": {"up.sh": text, "down.sh": "echo down\n"}
        for n, (name, text) in enumerate(sorted(secrets_by_part.items()), start=1)
    }
    ws = make_workspace(
        tmp_path / "ws",
        components={"jobs": {"type": "script"}},
        targets={"jobs": {"shell": "bash"}},
        releases={"1.0.0": {"jobs": len(migrations)}},
        migrations={"jobs": migrations},
    )
    time.sleep(0.05)  # past the racy window: the entries are kept
    cold = run_cli("validate", cwd=ws)
    warm = run_cli("validate", cwd=ws)
    assert cold.code == warm.code == 1
    for result in (cold, warm):
        assert result.err.count("literal secret") == len(SAMPLES), result
    cached = (ws / CACHE_DIR / CACHE_FILE).read_text()
    assert json.loads(cached)["findings"]  # the warm run had them from here
    stored = "".join(
        p.read_text(errors="replace") for p in (ws / ".releasectl").rglob("*") if p.is_file()
    )
    for sample in SAMPLES.values():
        value = sample.split("=", 1)[-1].split("'")[-2 if "'" in sample else -1].strip()
        assert value not in stored, value
        assert sample not in stored
