"""An environment session: the workspace, the environment's state backend, history, backup
store and targets, opened once per command and shared by the engine and the per-component
operations (backup, restore, unlock)."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Protocol

from releasectl.errors import InputError
from releasectl.models.state import State
from releasectl.models.workspace import MIGRATED_TYPES, ServiceTarget
from releasectl.observe.events import EventSink, LockWaited, LogEvents
from releasectl.state import open_backend
from releasectl.state.anchor import signing_key
from releasectl.state.backups import BackupStore
from releasectl.state.base import Lock, LockInfo, StateBackend
from releasectl.state.history import History
from releasectl.targets.base import NullProgress, Progress, Target, TargetContext, open_target
from releasectl.util import failpoints, timeutil
from releasectl.util.actor import actor as current_actor
from releasectl.workspace import Workspace


class Reporter(Protocol):
    """How the engine tells the CLI what is happening (the core never prints)."""

    def message(self, text: str) -> None: ...
    def progress(self) -> Progress: ...


class NullReporter:
    def message(self, text: str) -> None:
        pass

    def progress(self) -> Progress:
        return NullProgress()


@dataclass
class Session:
    workspace: Workspace
    env: str
    reporter: Reporter = field(default_factory=NullReporter)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    backend: StateBackend | None = None
    actor: str = ""
    events: EventSink = field(default_factory=LogEvents)  # typed events: logs, metrics
    _targets: dict[str, Target] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spec = self.workspace.environment(self.env)
        if self.backend is None:
            self.backend = open_backend(self.workspace, self.env)
        if not self.actor:
            self.actor = current_actor(self.environ)
        key = signing_key(self.spec.history, self.environ)
        self.history = History(self.state_backend, actor=self.actor, key=key)
        self._written: State | None = None  # the last state this session wrote
        # called with (pgid, run id) when a step's script starts; the engine records it
        self.on_process: Callable[[int, str], None] | None = None
        backups = self.spec.backups
        if self.spec.protected and backups.encrypt is False:
            raise self.workspace.unencrypted_protected(self.env)
        encrypt = self.spec.protected if backups.encrypt is None else backups.encrypt
        self.backups = BackupStore(
            self.workspace.root / (backups.path or ".releasectl/backups"),
            self.env,
            encrypt=encrypt,
            key_env=backups.key_env,
            retention=backups.retention,
            environ=dict(self.environ),
        )

    @property
    def state_backend(self) -> StateBackend:
        assert self.backend is not None
        return self.backend

    # --- state ----------------------------------------------------------------------------

    def read_state(self) -> State | None:
        return self.state_backend.read()

    def write_state(self, old: State | None, lock: Lock, **changes: object) -> State:
        """Write `old` with `changes` as the next serial (a new lineage if there was none)."""
        if old is None:
            old = State(env=self.env, lineage=str(uuid.uuid4()), serial=0)
        mine = self._written
        if mine is not None and mine.lineage == old.lineage and mine.serial > old.serial:
            old = mine  # a write in between was this session's own (a step's process group)
        new = old.model_copy(update={**changes, "serial": old.serial + 1})
        new = new.model_copy(update={"history": self.history.anchor_for(new)})
        # model_copy skips validation; round-trip once so a bad update cannot be written
        new = State.model_validate(new.model_dump(by_alias=True))
        failpoints.hit("state-write")
        self.state_backend.write(new, lock)
        self._written = new
        return new

    def process_started(self, pgid: int, run_id: str) -> None:
        if self.on_process is not None:
            self.on_process(pgid, run_id)

    @contextlib.contextmanager
    def backup_stream(self, backup_id: str | None) -> Iterator[IO[bytes] | None]:
        """The plaintext of backup `backup_id` (checksum verified first), or None."""
        if backup_id is None:
            yield None
            return
        meta = self.backups.get(backup_id)
        with self.backups.reader(meta) as src:
            yield src

    # --- locking --------------------------------------------------------------------------

    def lock(self, operation: str, timeout: float | None = None) -> Lock:
        info = LockInfo.new(self.env, self.actor, operation, timeutil.iso())
        cfg = self.spec.lock
        asked = time.monotonic()
        lock = self.state_backend.acquire(
            info, ttl=cfg.ttl, timeout=cfg.timeout if timeout is None else timeout
        )
        self.events.emit(LockWaited(self.env, operation, round(time.monotonic() - asked, 3)))
        taken = getattr(lock, "taken_over", None)
        if isinstance(taken, LockInfo):
            self.history.append(
                "lock-takeover",
                "success",
                error=f"took over a stale lock: {taken.describe()}",
            )
            self.reporter.message(f"took over a stale lock: {taken.describe()}")
        return lock

    # --- targets --------------------------------------------------------------------------

    def target(self, component: str) -> Target:
        if component not in self._targets:
            ctype = self.workspace.component(component).type
            settings = self.workspace.target(self.env, component, self.environ)
            if settings is None:
                if ctype in MIGRATED_TYPES:
                    raise InputError(
                        f"environment {self.env!r} has no target for {ctype} component "
                        f"{component!r}",
                        location=self.workspace.doc.location(("environments", self.env, "targets")),
                    )
                settings = ServiceTarget()
            ctx = TargetContext(
                root=self.workspace.root,
                env=self.env,
                component=component,
                type=ctype,
                settings=settings,
                migrations=self.workspace.catalogue.of(component),
                protected=self.spec.protected,
                environ=self.environ,
                progress=self.reporter.progress(),
                log=self.reporter.message,
                started=self.process_started,
            )
            self._targets[component] = open_target(ctx)
        return self._targets[component]

    def close(self) -> None:
        targets, self._targets = self._targets, {}
        for target in targets.values():
            target.close()

    # --- authorization --------------------------------------------------------------------

    def authorize(
        self, action: str, *, component: str | None = None, breaking: bool = False
    ) -> None:
        """Ask the workspace's Cedar policy (protected environments only); exit 5 on deny."""
        if not self.spec.protected:
            return
        from releasectl.authz import authorize

        # raises DeniedError (exit 5) naming the deciding policy; approvals come from the
        # environment variable the environment names
        authorize(
            self.workspace,
            self.env,
            actor=self.actor,
            action=action,
            component=component,
            breaking=breaking,
            environ=self.environ,
        )
