"""File state backend: `.releasectl/state/<env>.json`, `.releasectl/history/<env>.jsonl` and a
lock file `.releasectl/locks/<env>.lock`.

The lock file is created with O_EXCL and holds the LockInfo as JSON. A lock whose holder ran on
this host and is no longer alive (kill -9, power loss) is stale and is taken over; any other
held lock raises LockHeldError with its holder, so `apply` exits 4.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from releasectl.errors import InputError, LockHeldError, StaleError
from releasectl.models.state import State
from releasectl.state.base import HeldLock, Lock, LockInfo, parse_state, process_alive
from releasectl.util import safefiles
from releasectl.util.fsutil import atomic_write, fsync_dir

MAX_STATE_BYTES = 512 * 1024 * 1024  # the state lists every applied migration


class FileLock(HeldLock):
    def __init__(self, path: Path, info: LockInfo) -> None:
        self.path = path
        self.info = info
        self.taken_over: LockInfo | None = None

    def check(self) -> None:
        held = _read_lock(self.path)
        if held is None or held.id != self.info.id:
            raise LockHeldError(
                f"lost the lock {self.path.name}: "
                + (held.describe() if held else "it was removed")
            )

    def release(self) -> None:
        held = _read_lock(self.path)
        if held is not None and held.id == self.info.id:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def _read_lock(path: Path) -> LockInfo | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LockInfo(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        # a lock file cut short by a crash between create and write
        return LockInfo(
            id="corrupt", env="?", holder="unknown", operation="unknown", host="?", pid=0, since="?"
        )


class FileBackend:
    def __init__(self, directory: Path, env: str, display_root: Path | None = None) -> None:
        self.env = env
        self.directory = directory
        self.state_path = directory / "state" / f"{env}.json"
        self.history_path = directory / "history" / f"{env}.jsonl"
        self.lock_path = directory / "locks" / f"{env}.lock"
        self._root = display_root

    def _display(self, path: Path) -> str:
        if self._root is not None:
            with contextlib.suppress(ValueError):
                return str(path.relative_to(self._root))
        return str(path)

    def describe(self) -> str:
        return self._display(self.state_path)

    def describe_history(self) -> str:
        return self._display(self.history_path)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """An flock on the state directory around read-compare-replace, so a state write and
        an anchor rewrite (which may come from a process that no longer holds the lock) never
        overwrite each other."""
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # --- state --------------------------------------------------------------------------

    def read(self) -> State | None:
        display = self._display(self.state_path)
        if not self.state_path.exists() and not self.state_path.is_symlink():
            return None
        raw = safefiles.read_bytes(self.state_path, display, limit=MAX_STATE_BYTES)
        return parse_state(raw, display)

    def write(self, state: State, lock: Lock | None) -> None:
        if lock is not None:
            lock.check()
        with self._guard():
            old = self.read()
            expected = (old.serial + 1) if old else state.serial
            if state.serial != expected or (old is not None and old.lineage != state.lineage):
                raise StaleError(
                    f"state of {self.env!r} moved on while writing (serial {state.serial}, "
                    f"recorded {old.serial if old else 'none'})"
                )
            text = state.model_dump_json(by_alias=True, indent=2, exclude_none=False) + "\n"
            atomic_write(self.state_path, text)

    def rewrite(self, state: State) -> bool:
        with self._guard():
            old = self.read()
            if old is None or (old.lineage, old.serial) != (state.lineage, state.serial):
                return False
            text = state.model_dump_json(by_alias=True, indent=2, exclude_none=False) + "\n"
            atomic_write(self.state_path, text)
            return True

    # --- lock ---------------------------------------------------------------------------

    def _check_paths(self) -> None:
        """Before anything runs: the state and history files, which may be committed, are
        plain files inside the workspace (a link out is refused, see `util.safefiles`)."""
        for path in (self.state_path, self.history_path):
            if path.exists() or path.is_symlink():
                safefiles.open_stream(path, self._display(path)).close()

    def acquire(self, info: LockInfo, *, ttl: float, timeout: float) -> FileLock:
        del ttl  # a file lock lives until released or its holder dies
        self._check_paths()
        deadline = time.monotonic() + timeout
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(info.as_dict(), indent=2).encode()
        while True:
            try:
                fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                held = _read_lock(self.lock_path)
                if held is None:
                    continue  # released in between
                if self._stale(held):
                    lock = self._take_over(held, info)
                    if lock is not None:
                        return lock
                    continue
                if time.monotonic() >= deadline:
                    raise LockHeldError(
                        f"environment {self.env!r} is locked: {held.describe()}"
                    ) from None
                time.sleep(0.2)
                continue
            try:
                os.write(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_dir(self.lock_path.parent)
            return FileLock(self.lock_path, info)

    def _stale(self, held: LockInfo) -> bool:
        if held.id == "corrupt":
            return True
        return held.host == socket.gethostname() and not process_alive(held.pid, held.started)

    def _take_over(self, held: LockInfo, info: LockInfo) -> FileLock | None:
        # Rename the stale file away first: of two processes racing for it, one wins the rename.
        grave = self.lock_path.with_name(f"{self.lock_path.name}.stale-{info.id}")
        try:
            os.rename(self.lock_path, grave)
        except FileNotFoundError:
            return None
        moved = _read_lock(grave)
        grave.unlink()
        if moved is None or moved.id != held.id:
            return None  # someone else's fresh lock; try again
        lock = self.acquire(info, ttl=0, timeout=0)
        lock.taken_over = held
        return lock

    def current_lock(self) -> LockInfo | None:
        return _read_lock(self.lock_path)

    def break_lock(self, lock_id: str) -> LockInfo:
        held = _read_lock(self.lock_path)
        if held is None:
            raise InputError(f"environment {self.env!r} is not locked")
        if held.id != lock_id:
            raise InputError(
                f"lock id {lock_id!r} does not match the lock of {self.env!r}: " + held.describe()
            )
        self.lock_path.unlink()
        return held

    # --- history ------------------------------------------------------------------------

    def append_history(self, line: str) -> None:
        self.history_path.parent.mkdir(parents=True, exist_ok=True)
        fd = safefiles.open_append(self.history_path, self._display(self.history_path))
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def history_lines(self) -> Iterator[str]:
        if not self.history_path.exists() and not self.history_path.is_symlink():
            return
        display = self._display(self.history_path)
        with io.TextIOWrapper(safefiles.open_stream(self.history_path, display), "utf-8") as fh:
            for raw in fh:
                line = raw.rstrip("\n")
                if line:
                    yield line

    def last_history_line(self) -> str | None:
        if not self.history_path.exists() and not self.history_path.is_symlink():
            return None
        try:
            with safefiles.open_stream(self.history_path, self._display(self.history_path)) as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                block = 4096
                data = b""
                while size > 0:
                    step = min(block, size)
                    size -= step
                    fh.seek(size)
                    data = fh.read(step) + data
                    lines = data.rstrip(b"\n").split(b"\n")
                    if len(lines) > 1 or size == 0:
                        last = lines[-1]
                        return last.decode("utf-8") if last else None
                    block *= 2
        except safefiles.UnsafeFileError:
            raise
        except InputError:  # gone since exists(): no history
            return None
        return None
