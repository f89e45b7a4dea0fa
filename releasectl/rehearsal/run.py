"""`plan --rehearse`: each component's steps, verify parts and then the plan's rollback, run on
a throwaway copy of its target; per step, whether the rollback gave back exactly what the copy
held before it.

Components are rehearsed one after the other, each on its own copy (a copy holds one target),
in the order the plan first names them. For one component:

1. the copy is made (rehearsal/<type>.py, from a read-only snapshot of the real target);
2. each of its steps, in plan order: the copy's state is taken, a backup of the copy is
   taken when the step has one, then check, run and verify, as the engine runs them. A step
   that fails is undone like apply undoes it (the target's rollback with that backup) and
   compared with the state from before it; the component's later steps are not rehearsed;
3. the plan's rollback steps of the steps that succeeded, newest first, each followed by a
   comparison with the state from before the step it undoes.

Nothing here writes to a real target, a state backend, the history or the backup store.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from releasectl.errors import ReleasectlError
from releasectl.models.plan import Plan, Step
from releasectl.models.rehearsal import CopyInfo, Rehearsal, StepRehearsal
from releasectl.models.workspace import MIGRATED_TYPES
from releasectl.rehearsal.base import (
    NOT_COPIED,
    Copy,
    NotRehearsed,
    Request,
    copy_factory,
    describe_error,
    spooled,
)
from releasectl.targets.base import Failure, Target, TargetContext, open_target
from releasectl.util.deadline import Deadline
from releasectl.workspace import Workspace
from releasectl.workspace.catalogue import Migration

DEFAULT_TIMEOUT = 600.0


@dataclass
class _Done:
    index: int  # 0-based in plan.steps
    step: Step
    before: Any
    result: StepRehearsal


def rehearse(workspace: Workspace, env: str, plan: Plan, environ: Mapping[str, str]) -> Rehearsal:
    """Rehearse `plan` on copies of the targets of `env` (see the module's docstring)."""
    from releasectl.planning.build import plan_migrations

    started = time.monotonic()
    migrations = plan_migrations(workspace, plan)
    results: dict[int, StepRehearsal] = {}
    copies: list[CopyInfo] = []
    work = Path(tempfile.mkdtemp(prefix="releasectl-rehearsal-"))
    try:
        for component in dict.fromkeys(s.component for s in plan.steps):
            indexes = [i for i, s in enumerate(plan.steps) if s.component == component]
            run = _Component(workspace, env, plan, component, indexes, migrations, environ, work)
            copies.append(run.rehearse(results))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    steps = [results[i] for i in sorted(results)]
    return Rehearsal(
        verdict=verdict(steps),
        seconds=round(time.monotonic() - started, 3),
        copies=copies,
        steps=steps,
    )


Verdict = Literal["ok", "failed", "incomplete", "nothing"]


def verdict(steps: list[StepRehearsal]) -> Verdict:
    if any(s.status == "failed" for s in steps):
        return "failed"
    rehearsed = [s for s in steps if s.status == "ok"]
    if not rehearsed:
        return "nothing"
    return "ok" if len(rehearsed) == len(steps) else "incomplete"


class _Component:
    def __init__(
        self,
        workspace: Workspace,
        env: str,
        plan: Plan,
        component: str,
        indexes: list[int],
        migrations: dict[int, Migration],
        environ: Mapping[str, str],
        work: Path,
    ) -> None:
        self.workspace = workspace
        self.env = env
        self.plan = plan
        self.component = component
        self.indexes = indexes
        self.migrations = migrations
        self.environ = environ
        self.work = work
        self.type = workspace.component(component).type

    # --- results ----------------------------------------------------------------------------

    def _result(self, index: int, **fields: Any) -> StepRehearsal:
        step = self.plan.steps[index]
        return StepRehearsal.model_validate(
            {
                "index": index + 1,
                "component": step.component,
                "action": step.action,
                "from": step.from_,
                "to": step.to,
                "migration": step.migration,
                **fields,
            }
        )

    def _not_rehearsed(self, results: dict[int, StepRehearsal], reason: str) -> CopyInfo:
        for index in self.indexes:
            results[index] = self._result(index, status="not-rehearsed", reason=reason)
        return CopyInfo(component=self.component, type=self.type, made=False, reason=reason)

    # --- the copy -----------------------------------------------------------------------------

    def _real_context(self) -> TargetContext:
        settings = self.workspace.target(self.env, self.component, self.environ)
        if settings is None and self.type in MIGRATED_TYPES:
            raise NotRehearsed(f"environment {self.env!r} has no target for {self.component!r}")
        if settings is None:
            from releasectl.models.workspace import ServiceTarget

            settings = ServiceTarget()
        return TargetContext(
            root=self.workspace.root,
            env=self.env,
            component=self.component,
            type=self.type,
            settings=settings,
            migrations=self.workspace.catalogue.of(self.component),
            protected=self.workspace.environment(self.env).protected,
            environ=self.environ,
        )

    def _make_copy(self) -> Copy:
        reason = NOT_COPIED.get(self.type)
        factory = copy_factory(self.type)
        if reason is not None or factory is None:
            raise NotRehearsed(reason or f"{self.type} targets are not rehearsed")
        spec = self.workspace.environment(self.env)
        workdir = self.work / self.component
        workdir.mkdir()

        def resolve(value: str) -> str:
            return self.workspace.resolve(self.env, ("rehearsal",), value, self.environ)

        request = Request(
            real=self._real_context(),
            steps=[(self.plan.steps[i], self.migrations.get(i)) for i in self.indexes],
            limits=spec.rehearsal,
            workdir=workdir,
            resolve=resolve,
        )
        return factory(request)

    # --- rehearsing -----------------------------------------------------------------------------

    def rehearse(self, results: dict[int, StepRehearsal]) -> CopyInfo:
        try:
            copy = self._make_copy()
        except NotRehearsed as exc:
            return self._not_rehearsed(results, str(exc))
        except (ReleasectlError, OSError) as exc:
            return self._not_rehearsed(
                results, f"the copy could not be made: {describe_error(exc)}"
            )
        try:
            target = open_target(copy.ctx)
            try:
                done = self._steps(copy, target, results)
                self._rollback(copy, target, done, results)
            finally:
                target.close()
        finally:
            copy.close()
        return copy.info

    def _steps(self, copy: Copy, target: Target, results: dict[int, StepRehearsal]) -> list[_Done]:
        done: list[_Done] = []
        failed: str | None = None
        for index in self.indexes:
            if failed is not None:
                results[index] = self._result(index, status="not-rehearsed", reason=failed)
                continue
            result = self._step(copy, target, index)
            results[index] = result.result
            if result.result.status == "failed":
                failed = f"step {index + 1} of {self.component} failed on the copy"
            else:
                done.append(result)
        return done

    def _step(self, copy: Copy, target: Target, index: int) -> _Done:
        step = self.plan.steps[index]
        migration = self.migrations.get(index)
        before = copy.state()
        timeout = _timeout(migration)
        with spooled(self.work, 1 << 62, "the copy's backup") as backup:
            phase = "check"
            error: BaseException | None = None
            started = time.monotonic()
            with copy.watch() as watched:
                try:
                    target.check(step, migration)
                    phase = "backup"
                    if step.backup:
                        target.backup(step, migration, backup.writer)
                    phase = "run"
                    target.run(step, migration, Deadline.after(timeout))
                    phase = "verify"
                    target.verify(step, migration, Deadline.after(timeout))
                except Exception as exc:  # the step failed on the copy: that is the finding
                    error = exc
            seconds = round(time.monotonic() - started, 3)
            after = copy.state()
            observed = copy.observe(step, migration, before, after, watched)
            fields: dict[str, Any] = {
                "seconds": seconds,
                "observed_redis": observed.redis,
                "observed_data": observed.data,
            }
            if error is None:
                result = self._result(index, status="ok", run="ok", verify="ok", **fields)
                return _Done(index, step, before, result)
            fields.update(
                status="failed",
                run="failed" if phase in ("check", "backup", "run") else "ok",
                verify="failed" if phase == "verify" else None,
                error=f"{phase}: {describe_error(error)}",
            )
            if phase in ("check", "backup"):
                fields.update(rollback="not-run", rollback_by="nothing had run")
                return _Done(index, step, before, self._result(index, **fields))
            # undo it as apply would: the target's rollback, with the backup
            source = backup.reader() if step.backup else None
            try:
                how = target.rollback(step, migration, source, Failure(phase, error))
                differences = copy.compare(before, copy.state())
                fields.update(
                    rollback="differs" if differences else "exact",
                    rollback_by=f"automatic rollback: {how}",
                    differences=differences,
                )
            except Exception as exc:  # the rollback failed on the copy: also a finding
                fields.update(rollback="failed", rollback_error=describe_error(exc))
            return _Done(index, step, before, self._result(index, **fields))

    def _rollback(
        self, copy: Copy, target: Target, done: list[_Done], results: dict[int, StepRehearsal]
    ) -> None:
        broken: str | None = None  # a later rollback failed: the copy is not where it should be
        unequal: str | None = None  # a later rollback left differences: no exact comparison
        for item in reversed(done):
            step = item.step

            def update(done: _Done = item, **fields: Any) -> None:
                results[done.index] = done.result.model_copy(update=fields)

            if broken is not None:
                update(rollback="not-run", rollback_error=broken, status="failed")
                continue
            undo = self._undo_step(step)
            migration = self._undo_migration(undo)
            timeout = _timeout(migration)
            try:
                target.check(undo, migration)
                target.run(undo, migration, Deadline.after(timeout))
                target.verify(undo, migration, Deadline.after(timeout))
            except Exception as exc:  # a rollback that fails on the copy is a finding
                update(
                    rollback="failed",
                    rollback_by=_describe(undo),
                    rollback_error=describe_error(exc),
                    status="failed",
                )
                broken = f"the rollback of step {item.index + 1} failed first"
                continue
            differences = copy.compare(item.before, copy.state())
            if unequal is not None and differences:
                update(rollback="not-compared", rollback_by=_describe(undo), rollback_error=unequal)
                continue
            update(
                rollback="differs" if differences else "exact",
                rollback_by=_describe(undo),
                differences=differences,
                status="failed" if differences else "ok",
            )
            if differences:
                unequal = f"the rollback of step {item.index + 1} left the copy different"

    def _undo_step(self, step: Step) -> Step:
        for candidate in self.plan.rollback:
            if (
                candidate.component == step.component
                and candidate.from_ == step.to
                and candidate.to == step.from_
            ):
                return candidate
        action = {"up": "down", "down": "up"}.get(step.action, step.action)
        return step.model_copy(update={"action": action, "from_": step.to, "to": step.from_})

    def _undo_migration(self, undo: Step) -> Migration | None:
        if undo.migration is None:
            return None
        found = self.workspace.catalogue.of(undo.component)
        number = undo.to if undo.action == "up" else undo.from_
        return found.get(int(number)) if found is not None and number is not None else None


def _describe(step: Step) -> str:
    move = f"{step.from_} -> {step.to}"
    return f"rollback step: {step.action} {move}" + (
        f" ({step.migration})" if step.migration else ""
    )


def _timeout(migration: Migration | None) -> float:
    if migration is not None and migration.meta.timeout is not None:
        return migration.meta.timeout
    return DEFAULT_TIMEOUT
