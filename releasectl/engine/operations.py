"""Per-component operations outside a plan: backup, restore and unlock (the old framework's
`backup COMPONENT` and `restore COMPONENT BACKUP`), under the lock, authorized and recorded."""

from __future__ import annotations

import socket

from releasectl.engine.apply import Engine
from releasectl.engine.session import Session
from releasectl.errors import InputError, LockHeldError
from releasectl.state.backups import BackupMeta
from releasectl.state.base import LockInfo, process_alive
from releasectl.targets.base import BackupInfo


def backup_component(
    session: Session, component: str, *, lock_timeout: float | None = None
) -> BackupMeta:
    session.workspace.component(component)
    session.backups.check_ready()
    with session.lock(f"backup {component}", lock_timeout):
        try:
            backup_id = Engine(session).take_backup(component, None, None, None)
            session.backups.prune(component)
        finally:
            session.close()
    return session.backups.get(backup_id, component)


def restore_component(
    session: Session, component: str, backup_id: str, *, lock_timeout: float | None = None
) -> tuple[BackupMeta, BackupInfo]:
    session.workspace.component(component)
    meta = session.backups.get(backup_id)
    if meta.component != component:
        raise InputError(f"backup {backup_id} belongs to {meta.component!r}, not {component!r}")
    session.authorize("restore", component=component)
    with session.lock(f"restore {component}", lock_timeout):
        state = session.read_state()
        if state is not None and state.dirty:
            from releasectl.errors import DirtyError

            raise DirtyError(
                f"environment {session.env!r} has an interrupted step: run "
                "`releasectl recover` first"
            )
        try:
            with session.backups.reader(meta) as src:
                info = session.target(component).restore(src)
        except Exception as exc:
            session.history.append(
                "restore", "failed", component=component, backup=backup_id, error=str(exc)
            )
            raise
        finally:
            session.close()
        session.history.append(
            "restore",
            "success",
            component=component,
            backup=backup_id,
            output=f"{info.items} items",
        )
    return meta, info


def unlock(session: Session, lock_id: str, *, force: bool = False) -> LockInfo:
    """Remove the lock `lock_id`. A lock whose holder is alive on this host is refused (exit
    4) unless `force`: breaking it would let two runners change the environment at once."""
    session.authorize("unlock")
    held = session.state_backend.current_lock()
    alive = (
        held is not None
        and held.id == lock_id
        and held.host == socket.gethostname()
        and process_alive(held.pid, held.started)
    )
    if alive and not force:
        assert held is not None
        raise LockHeldError(
            f"refusing to unlock {session.env!r}: the holder is alive on this host "
            f"({held.describe()}); it would go on changing the environment while another run "
            "starts. Wait for it, stop it, or pass --force (recorded in the history)"
        )
    held = session.state_backend.break_lock(lock_id)
    session.history.append(
        "unlock",
        "success",
        error=None,
        output=f"removed lock {held.id}: {held.describe()}",
        forced=True if alive else None,
    )
    return held
