"""`migration.py` Redis migrations: `up(r)`, `down(r)` and optional `verify(r)`.

The module is loaded from the migration directory in isolation: a fresh module object under a
unique name, never put in `sys.modules`, so two migrations can both be called `migration.py`
and nothing leaks between steps. Functions run in a worker thread with a client whose every
command checks the step's deadline: when the deadline passes the step fails with StepTimeout,
and the thread, should it still be running, can no longer send anything to Redis.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import re
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

from releasectl.errors import InputError, Location, ReleasectlError, TargetError
from releasectl.util import safefiles
from releasectl.util.deadline import Deadline, StepStopped, StepTimeout

if TYPE_CHECKING:
    import redis
    from releasectl.workspace.catalogue import Migration

FILE = "migration.py"
_counter = itertools.count()


def problems(migration: Migration) -> list[ReleasectlError]:
    """Static checks: it parses, defines up() (and down() where one is expected)."""
    display = f"{migration.rel}/{FILE}"
    try:
        source = safefiles.read_text(migration.file(FILE), display)
    except ReleasectlError as exc:
        return [exc]
    try:
        tree = ast.parse(source, filename=display)
    except SyntaxError as exc:
        return [InputError(f"syntax error: {exc.msg}", location=Location(display, exc.lineno))]
    defined = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    errors: list[ReleasectlError] = []
    if "up" not in defined:
        errors.append(InputError("defines no up(r) function", location=Location(display)))
    for name, node in defined.items():
        if name in {"up", "down", "verify"}:
            if isinstance(node, ast.AsyncFunctionDef):
                errors.append(
                    InputError(
                        f"{name}() must not be async", location=Location(display, node.lineno)
                    )
                )
            elif len(node.args.args) != 1:
                errors.append(
                    InputError(
                        f"{name}() takes exactly one argument, the Redis client",
                        location=Location(display, node.lineno),
                    )
                )
    return errors


def load(migration: Migration) -> ModuleType:
    path = migration.file(FILE)
    display = f"{migration.rel}/{FILE}"
    slug = re.sub(r"\W", "_", f"{migration.component}_{migration.id}")
    name = f"releasectl_migration_{slug}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has one
        raise TargetError("cannot load", location=Location(display))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise TargetError(
            f"failed to import: {type(exc).__name__}: {exc}", location=Location(display)
        ) from exc
    return module


def call(migration: Migration, function: str, client: redis.Redis, deadline: Deadline) -> Any:
    """Call `function(client)` of the migration's module within `deadline`."""
    display = f"{migration.rel}/{FILE}"
    module = load(migration)
    func = getattr(module, function, None)
    if not callable(func):
        raise TargetError(f"defines no {function}(r) function", location=Location(display))
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func(client)
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=f"redis-{function}", daemon=True)
    worker.start()
    # in slices: a deadline that stops the step (lost lease, cancellation) is seen at once
    while worker.is_alive() and not deadline.expired():
        remaining = deadline.remaining()
        worker.join(0.05 if remaining is None else min(0.05, remaining))
    if worker.is_alive():
        reason = deadline.stopped()
        if reason is not None:
            raise StepStopped(
                f"{function}() stopped: {reason}", reason=reason, location=Location(display)
            )
        raise StepTimeout(f"{function}() timed out", location=Location(display))
    error = outcome.get("error")
    if isinstance(error, StepStopped):
        raise StepStopped(
            f"{function}() stopped: {error.reason}", reason=error.reason, location=Location(display)
        ) from error
    if isinstance(error, StepTimeout):
        raise StepTimeout(f"{function}() timed out", location=Location(display)) from error
    if error is not None:
        import redis as redis_module

        if isinstance(error, redis_module.TimeoutError) and deadline.expired():
            raise StepTimeout(f"{function}() timed out", location=Location(display)) from error
        raise TargetError(
            f"{function}() failed: {type(error).__name__}: {error}", location=Location(display)
        ) from error
    return outcome.get("value")
