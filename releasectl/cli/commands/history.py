from __future__ import annotations

import click

from releasectl.cli.context import (
    emit,
    emit_error,
    emit_json,
    env_option,
    examples,
    format_option,
    options,
)


@click.command(
    epilog=examples(
        "releasectl history -n 20",
        "releasectl history --verify",
        "releasectl history --env prod --format csv > migration_history.csv",
    ),
)
@env_option
@format_option("text", "json", "csv")
@click.option("--verify", is_flag=True, help="Check the hash chain; exit 1 if it is broken.")
@click.option("--limit", "-n", type=int, help="Only the last N entries.")
def history(env: str | None, fmt: str | None, verify: bool, limit: int | None) -> int:
    """Show the environment's audit history (csv: the old framework's migration_history.csv),
    or verify that no entry was edited, removed or reordered."""
    from releasectl.state.history import History, to_legacy_csv, verify_lines

    opts = options()
    fmt = opts.output_format(fmt, ("text", "json", "csv"))
    env_name = opts.env_name(env)
    spec = opts.load_workspace().environment(env_name)
    backend = opts.backend(env_name)
    where = backend.describe_history()
    if verify:
        import os

        from releasectl.state.anchor import signing_key, verify_anchor

        key = signing_key(spec.history, os.environ)
        count, problems = verify_lines(backend.history_lines())
        problems += verify_anchor(backend.history_lines(), backend.read(), key)
        if fmt == "json":
            from releasectl.cli.errordoc import error_document

            doc: dict[str, object] = {
                "ok": not problems,
                "entries": count,
                "problems": [{"entry": p.line, "message": p.message} for p in problems],
            }
            if problems:  # a failing command's JSON always carries `error`
                first = problems[0]
                doc.update(error_document(_problem_text(where, first.line, first.message), 1))
            emit_json(doc)
            return 1 if problems else 0
        for problem in problems:
            emit_error(_problem_text(where, problem.line, problem.message))
        if problems:
            return 1
        signed = ", signatures valid" if key is not None else ""
        emit(f"ok: {count} history entries, hash chain intact, none missing{signed}")
        return 0
    entries = list(History(backend, actor="-").entries())
    if limit is not None:
        entries = entries[-limit:]
    if fmt == "json":
        emit_json([e.model_dump(mode="json", by_alias=True, exclude_none=True) for e in entries])
    elif fmt == "csv":
        emit(to_legacy_csv(entries))
    else:
        for e in entries:
            move = ""
            if e.from_ is not None or e.to is not None:
                move = f" {'-' if e.from_ is None else e.from_} -> {'-' if e.to is None else e.to}"
            what = " ".join(x for x in (e.component, e.migration) if x)
            if e.imported:
                what += " (imported)"
            took = f" {e.duration:.2f}s" if e.duration is not None else ""
            err = f"  error: {e.error}" if e.error else ""
            emit(
                f"{e.seq:>5} {e.time} {e.actor:<16} {e.action:<8} {e.result:<8} {what}{move}"
                f"{took}{err}"
            )
    return 0


def _problem_text(where: str, line: int, message: str) -> str:
    return f"{where}: {message}" if line == 0 else f"{where}:{line}: entry {line}: {message}"
