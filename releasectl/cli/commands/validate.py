from __future__ import annotations

from typing import Any

import click

from releasectl.cli.context import (
    emit,
    emit_error,
    emit_json,
    env_option,
    examples,
    format_option,
    options,
    safe_text,
)


@click.command(
    epilog=examples(
        "releasectl validate",
        "releasectl validate --env staging --format json",
    ),
)
@env_option
@format_option("text", "json")
def validate(env: str | None, fmt: str | None) -> int:
    """Check releasectl.yaml, every release manifest, every migration and, for the environment,
    that no applied migration changed since (drift, exit 3)."""
    from releasectl.errors import ExitCode, ReleasectlError, flatten
    from releasectl.planning.drift import drift_error
    from releasectl.planning.report import validate as run_validate

    opts = options()
    fmt = opts.output_format(fmt, ("text", "json"))
    workspace = opts.load_workspace()
    env_name = opts.env_name(env)
    state = None
    errors: list[ReleasectlError] = []
    try:
        state = opts.backend(env_name).read()
    except ReleasectlError as exc:  # reported below with the other problems
        errors.append(exc)
    found, drift = run_validate(workspace, env_name, state)
    errors = [*errors, *found]
    flat = []
    for e in errors:
        flat.extend(flatten(e))
    code = ExitCode.OK
    if flat:
        code = ExitCode.ERROR
    elif drift:
        code = ExitCode.STALE
    if fmt == "json":
        from releasectl.cli.errordoc import error_document, json_error

        doc: dict[str, Any] = {
            "valid": not flat and not drift,
            "errors": [safe_text(str(e)) for e in flat],
            "drift": [d.describe(workspace) for d in drift],
            "migrations": workspace.catalogue.count(),
            "releases": workspace.release_versions,
        }
        if code != ExitCode.OK:  # a failing command's JSON always carries `error`
            problems = [json_error(e)["error"] for e in flat]
            if drift:
                problems.append(json_error(drift_error(workspace, drift))["error"])
            first = problems[0] if len(problems) == 1 else {}
            doc.update(
                error_document(
                    first.get("message") or f"{len(problems)} problem(s) found",
                    code,
                    file=first.get("file"),
                    line=first.get("line"),
                    field=first.get("field"),
                )
            )
            doc["error"]["errors"] = problems
        emit_json(doc)
        return int(code)
    for e in flat:
        emit_error(str(e))
    if drift:
        emit_error(str(drift_error(workspace, drift)))
    if code == ExitCode.OK:
        emit(
            f"ok: {workspace.name}: {len(workspace.components)} components, "
            f"{workspace.catalogue.count()} migrations, {len(workspace.release_versions)} "
            f"releases; environment {env_name} has no drift"
        )
    else:
        emit(f"{len(flat) + (1 if drift else 0)} problem(s) found", err=True)
    return int(code)
