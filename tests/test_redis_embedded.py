"""The embedded server (`redis+embedded://PATH`): data saved to PATH on close and seen by the
next, separate process; a server orphaned by a killed process is saved and replaced; users in
one process share one server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from releasectl.clients.redis import Endpoint
from releasectl.clients.redis_embedded import EmbeddedServer
from tests.conftest import REPO

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from releasectl.clients.redis import Endpoint

    root, action, value = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    endpoint = Endpoint("redis+embedded://state/redis.db", root, name="test")
    client = endpoint.client(decode=True)
    print(client.get("greeting"), flush=True)
    if action == "write":
        client.set("greeting", value)
        client.hset("counts", mapping={"runs": value})
        endpoint.close()
    elif action == "kill":
        client.set("greeting", value)
        os.kill(os.getpid(), 9)
    """
)


def run(root: Path, action: str, value: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root), action, value],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    if action != "kill":
        assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_data_persists_across_processes(tmp_path: Path) -> None:
    assert run(tmp_path, "write", "first") == "None"
    assert (tmp_path / "state" / "redis.db").is_file()  # the directory was created
    assert run(tmp_path, "write", "second") == "first"
    assert run(tmp_path, "read", "-") == "second"


def test_orphan_of_a_killed_process_is_saved_and_replaced(tmp_path: Path) -> None:
    run(tmp_path, "write", "before")
    run(tmp_path, "kill", "written-then-killed")
    record = json.loads((tmp_path / "state" / "redis.db.lock").read_text())
    orphan = record["server_pid"]
    os.kill(orphan, 0)  # still running: its owner died without closing it
    assert run(tmp_path, "read", "-") == "written-then-killed"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(orphan, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(orphan, signal.SIGKILL)
        raise AssertionError("the orphaned server was not stopped")


def test_one_server_per_path_in_a_process(tmp_path: Path) -> None:
    first = Endpoint("redis+embedded://db.rdb", tmp_path, name="a")
    second = Endpoint(f"redis+embedded://{tmp_path}/db.rdb", Path("/"), name="b")
    first.client().set("k", "v")
    assert second.client().get("k") == b"v"
    server = EmbeddedServer._running[(tmp_path / "db.rdb").resolve()]
    assert server.users == 2
    first.close()
    assert second.client().get("k") == b"v"  # still served
    second.close()
    assert server.proc is not None and server.proc.poll() is not None
    assert not server.socket.exists()


def test_apply_in_one_process_data_seen_by_the_next(example: Path) -> None:
    from tests.conftest import run_proc

    result = run_proc("apply", "--yes", cwd=example)
    assert result.code == 0, result
    endpoint = Endpoint("redis+embedded://.releasectl/local/redis.db", example, name="check")
    try:
        client = endpoint.client(decode=True)
        assert client.get("schema:redis:version") == "2"
        assert client.hget("config:auth", "session_index_enabled") == "true"
        assert client.sismember("rbac:roles", "admin")
    finally:
        endpoint.close()
    again = run_proc("apply", "--yes", cwd=example)
    assert again.code == 0, again  # nothing to do, and the embedded server starts again cleanly
