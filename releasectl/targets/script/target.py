"""The `script` target: the old framework's shell migrations (`up.sh`, `down.sh`, `verify.sh`).

Each part runs with the target's `shell` in its `workdir`, in its own process group, with the
step's timeout (on expiry the whole group is killed) and with the RELEASECTL_* variables plus
the target's `env:` settings. Its output is captured (the last 64 KiB, redacted) for the
history. A backup covers the migration's `scope:` paths. Rollback runs the reverse part first
(down.sh after a failed up), while the files are still as the failed part left them, then puts
the scope's files back exactly. See docs/scripts.md.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from releasectl.errors import Location, TargetError
from releasectl.models.workspace import ScriptTarget as ScriptSettings
from releasectl.secrets import redact, register
from releasectl.targets.base import BackupInfo, BaseTarget, Failure
from releasectl.targets.script import files as scriptfiles
from releasectl.targets.script import proc as scriptproc
from releasectl.util.deadline import Deadline, StepStopped, StepTimeout

if TYPE_CHECKING:
    from releasectl.models.plan import Step
    from releasectl.workspace.catalogue import Migration

SECRET_NAME = re.compile(r"(?i)(pass|secret|token|key|credential|auth)")


class ScriptFailed(TargetError):
    """A part exited non-zero; `output` is what it printed (redacted, the tail)."""

    def __init__(self, message: str, *, location: Location, output: str) -> None:
        super().__init__(message, location=location)
        self.output = output


class ScriptTimeout(StepTimeout):
    def __init__(self, message: str, *, location: Location, output: str) -> None:
        super().__init__(message, location=location)
        self.output = output


class ScriptTarget(BaseTarget):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        for name, value in self._settings().env.items():
            if SECRET_NAME.search(name):
                register(value)  # an interpolated secret never reaches the history

    def _settings(self) -> ScriptSettings:
        settings = self.ctx.settings
        return settings if isinstance(settings, ScriptSettings) else ScriptSettings()

    def _shell(self) -> list[str]:
        argv = shlex.split(self._settings().shell)
        if not argv:
            raise TargetError(f"{self.ctx.component}: the target's shell is empty")
        return argv

    def _workdir(self) -> Path:
        return self.ctx.path(self._settings().workdir)

    # --- pre-check -------------------------------------------------------------------------

    def check(self, step: Step | None, migration: Migration | None) -> None:
        shell = self._shell()[0]
        if shutil.which(shell) is None:
            raise TargetError(f"{self.ctx.component}: shell {shell!r} not found on PATH")
        workdir = self._workdir()
        if not workdir.is_dir():
            raise TargetError(f"{self.ctx.component}: workdir {workdir} is not a directory")
        if step is not None and step.action in ("up", "down"):
            migration = self._need(step, migration)
            part = f"{step.action}.sh"
            if part not in migration.files:
                raise TargetError(f"no {part}", location=Location(migration.rel))
            scriptfiles.check_scope(list(migration.meta.scope or ()))

    def _need(self, step: Step, migration: Migration | None) -> Migration:
        if migration is None:
            raise TargetError(f"{self.ctx.component}: step {step.action} has no migration")
        return migration

    # --- running parts ---------------------------------------------------------------------

    def environment(
        self, action: str, step: Step, migration: Migration, *, rollback: bool = False
    ) -> dict[str, str]:
        env = dict(self.ctx.environ) if self.ctx.environ else dict(os.environ)
        env.update(self._settings().env)
        env.update(
            {
                "RELEASECTL_ENV": self.ctx.env,
                "RELEASECTL_COMPONENT": self.ctx.component,
                "RELEASECTL_ACTION": action,
                "RELEASECTL_FROM": "" if step.from_ is None else str(step.from_),
                "RELEASECTL_TO": "" if step.to is None else str(step.to),
                "RELEASECTL_MIGRATION": migration.id,
                "RELEASECTL_MIGRATION_DIR": str(migration.path),
                "RELEASECTL_WORKSPACE": str(self.ctx.root),
                "RELEASECTL_ROLLBACK": "1" if rollback else "0",
            }
        )
        return env

    def run_part(
        self,
        part: str,
        step: Step,
        migration: Migration,
        deadline: Deadline,
        *,
        rollback: bool = False,
    ) -> str:
        """Run `part`; returns its captured output, raises TargetError / StepTimeout."""
        where = Location(f"{migration.rel}/{part}")
        if part not in migration.files:
            raise TargetError(f"no {part}", location=Location(migration.rel))
        action = part.removesuffix(".sh")
        argv = [*self._shell(), str(migration.file(part))]
        result = scriptproc.run(
            argv,
            cwd=self._workdir(),
            env=self.environment(action, step, migration, rollback=rollback),
            deadline=deadline,
            started=self.ctx.started,
        )
        head = f"$ {part} ({_exit_text(result.returncode)}, {result.duration:.2f} s)"
        if result.note:
            head += f"\n[{result.note}]"
        output = redact(f"{head}\n{result.output}".rstrip("\n"))
        tail = redact(result.last_lines())
        last = f"; last output:\n{tail}" if tail else ""
        reason = deadline.stopped() if result.timed_out else None
        if reason is not None:
            raise StepStopped(
                f"stopped after {result.duration:.1f} s: {reason}; its process group was "
                f"killed{last}",
                reason=reason,
                location=where,
            )
        if result.timed_out:
            raise ScriptTimeout(
                f"timed out after {result.duration:.1f} s: its process group was killed{last}",
                location=where,
                output=output,
            )
        if result.returncode != 0:
            raise ScriptFailed(
                f"{_exit_text(result.returncode)}{last}", location=where, output=output
            )
        return output

    def run(self, step: Step, migration: Migration | None, deadline: Deadline) -> str:
        migration = self._need(step, migration)
        if step.action not in ("up", "down"):
            raise TargetError(f"{self.ctx.component}: a script component cannot {step.action}")
        return self.run_part(f"{step.action}.sh", step, migration, deadline)

    def verify(self, step: Step, migration: Migration | None, deadline: Deadline) -> None:
        # verify.sh checks the state up.sh leaves; a down has nothing it could check
        if step.action != "up" or migration is None or "verify.sh" not in migration.files:
            return
        self.run_part("verify.sh", step, migration, deadline)

    # --- backup, restore, rollback ---------------------------------------------------------

    def _scope(self, migration: Migration | None) -> list[str]:
        if migration is not None:
            return list(migration.meta.scope or ())
        found = self.ctx.migrations
        paths = {p for m in (found.migrations if found else []) for p in (m.meta.scope or ())}
        return sorted(paths)

    def backup(self, step: Step | None, migration: Migration | None, out: IO[bytes]) -> BackupInfo:
        return scriptfiles.backup(self.ctx.root, self._scope(migration), out)

    def restore(self, src: IO[bytes]) -> BackupInfo:
        return scriptfiles.restore(self.ctx.root, src)

    def rollback(
        self, step: Step, migration: Migration | None, backup: IO[bytes] | None, failure: Failure
    ) -> str:
        if failure.phase in ("check", "backup"):
            return "nothing had run"
        if failure.started is False:  # a crash before its script started: restore the scope
            if backup is None:
                return "nothing had run"
            info = self.restore(backup)
            return f"nothing had run; restored {', '.join(info.scope)} ({info.items} entries)"
        migration = self._need(step, migration)
        reverse = "down.sh" if step.action == "up" else "up.sh"
        done: list[str] = []
        failed: TargetError | None = None
        # The reverse part first: it sees the files as the failed part left them (a state
        # file naming what up.sh created, say); the backup then puts the files back exactly.
        if reverse in migration.files:
            reverse_step = step.model_copy(update={"from_": step.to, "to": step.from_})
            try:
                deadline = Deadline.after(self.timeout(migration))
                self.run_part(reverse, reverse_step, migration, deadline, rollback=True)
                done.append(f"ran {reverse}")
            except TargetError as exc:
                failed = exc
        if backup is not None:
            info = self.restore(backup)
            if info.scope:
                done.append(f"restored {', '.join(info.scope)} ({info.items} entries)")
        if failed is not None:
            restored = f"; {done[-1]}" if done else ""
            raise TargetError(f"{reverse} failed during the rollback: {failed}{restored}")
        if not done:
            raise TargetError(
                f"{self.ctx.component}: cannot roll back {step.action} {migration.id}: there is "
                f"no {reverse} and no scope to restore"
            )
        return "; ".join(done)


def _exit_text(code: int) -> str:
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f"was killed by {name}"
