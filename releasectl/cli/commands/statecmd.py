"""`state pull` / `state push --force`: move an environment's state and history between
backends (file, Redis, Kubernetes), the way `terraform state pull/push` does."""

from __future__ import annotations

import json
from pathlib import Path

import click

from releasectl.cli.context import emit, env_option, examples, options


@click.group(
    epilog=examples(
        "releasectl state pull --out local-state.json",
        "releasectl state push local-state.json --force --env local",
    ),
)
def state() -> None:
    """Move recorded state between backends."""


@state.command(
    epilog=examples(
        "releasectl state pull --env staging --out staging-state.json",
    ),
)
@env_option
@click.option("--out", "-o", type=click.Path(dir_okay=False), help="Write to a file, not stdout.")
def pull(env: str | None, out: str | None) -> int:
    """Print the environment's state and history as one JSON bundle."""
    from releasectl.util.fsutil import atomic_write

    opts = options()
    env_name = opts.env_name(env)
    opts.load_workspace().environment(env_name)
    backend = opts.backend(env_name)
    current = backend.read()
    bundle = {
        "format_version": 1,
        "env": env_name,
        "state": current.model_dump(mode="json", by_alias=True) if current else None,
        "history": list(backend.history_lines()),
    }
    text = json.dumps(bundle, indent=2) + "\n"
    if out:
        atomic_write(Path(out), text)
        emit(f"wrote the state of {env_name} ({backend.describe()}) to {out}", err=True)
    else:
        emit(text)
    return 0


@state.command(
    epilog=examples(
        "releasectl state push staging-state.json --force --env staging",
    ),
)
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True))
@env_option
@click.option(
    "--force",
    is_flag=True,
    required=True,
    help="Required: the environment's recorded state is replaced.",
)
def push(bundle: str, env: str | None, force: bool) -> int:
    """Replace the environment's state with BUNDLE (from `state pull`), under the lock. The
    history is copied when the destination has none; the destination keeps its lineage."""
    from releasectl.engine.session import Session
    from releasectl.errors import InputError, Location
    from releasectl.models.state import State

    del force
    opts = options()
    env_name = opts.env_name(env)
    try:
        data = json.loads(Path(bundle).read_text(encoding="utf-8"))
        incoming = State.model_validate(data["state"]) if data.get("state") else None
        lines = [str(line) for line in data.get("history", [])]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not a state bundle: {exc}", location=Location(bundle)) from None
    if incoming is None:
        raise InputError("the bundle holds no state", location=Location(bundle))
    session = Session(opts.load_workspace(), env_name)
    backend = session.state_backend
    with session.lock("state push") as lock:
        current = backend.read()
        fields = {
            name: getattr(incoming, name)
            for name in State.model_fields
            if name not in ("env", "lineage", "serial")
        }
        base = current or incoming.model_copy(update={"serial": 0})
        session.write_state(base, lock, **fields, env=env_name)
        copied = 0
        if backend.last_history_line() is None:
            for line in lines:
                backend.append_history(line)
                copied += 1
            session.history.reanchor()
    emit(f"pushed the state to {env_name} ({backend.describe()}); copied {copied} history entries")
    return 0
