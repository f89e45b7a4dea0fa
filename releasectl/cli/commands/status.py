from __future__ import annotations

from typing import TYPE_CHECKING

import click

from releasectl.cli.context import emit, emit_json, env_option, examples, format_option, options

if TYPE_CHECKING:
    from releasectl.models.state import State
    from releasectl.state.base import StateBackend


@click.command(
    epilog=examples(
        "releasectl status",
        "releasectl status --env prod --format json | jq .dirty",
    ),
)
@env_option
@format_option("text", "json")
def status(env: str | None, fmt: str | None) -> int:
    """Show the environment's recorded release, component versions, drift and any interrupted
    step."""
    from releasectl.cli import render
    from releasectl.planning.report import status as build_status

    opts = options()
    fmt = opts.output_format(fmt, ("text", "json"))
    workspace = opts.load_workspace()
    env_name = opts.env_name(env)
    backend = opts.backend(env_name)
    state = backend.read()
    desired = None
    try:
        desired = workspace.desired_release(env_name)
    except Exception:  # status works without a manifest
        desired = None
    result = build_status(workspace, env_name, state, desired)
    lock = backend.current_lock()
    if lock is not None:
        result = result.model_copy(
            update={
                "lock": {
                    "id": lock.id,
                    "holder": lock.holder,
                    "since": lock.since,
                    "host": lock.host,
                    "pid": lock.pid,
                    "operation": lock.operation,
                }
            }
        )
    result = result.model_copy(update={"history_problems": history_problems(backend, state)})
    if fmt == "json":
        data = result.model_dump(mode="json", by_alias=True)
        emit_json(data)
    else:
        emit(render.status_text(result))
    return 0


def history_problems(backend: StateBackend, state: State | None) -> list[str]:
    """What is wrong with the end of the history, as far as its last entry and the state's
    anchor show (`history --verify` checks every entry)."""
    from releasectl.state.anchor import HistoryError, read_head, tail_problem

    try:
        head = read_head(backend)
    except HistoryError as exc:
        return [str(exc)]
    problem = tail_problem(state.history if state else None, head, backend.describe_history())
    return [] if problem is None else [problem]
