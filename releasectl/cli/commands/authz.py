from __future__ import annotations

import click

from releasectl.cli.context import emit, emit_json, examples, format_option, options


@click.group(
    epilog=examples(
        "releasectl authz test",
        "releasectl authz test --format json",
    ),
)
def authz() -> None:
    """The authorization policy of protected environments (authz/ by default).

    Every mutating command on an environment with `protected: true` asks the workspace's Cedar
    policy; see docs/security.md.
    """


@authz.command(
    "test",
    epilog=examples(
        "releasectl authz test",
        "releasectl authz test --format json | jq .failed",
    ),
)
@format_option("text", "json")
def test(fmt: str | None) -> int:
    """Run the authorization policy tests (authz/tests/*.yaml); exit 1 when one fails."""
    from releasectl import authz as core

    opts = options()
    fmt = opts.output_format(fmt, ("text", "json"))
    workspace = opts.load_workspace()
    outcomes = core.run_tests(workspace)
    failed = [o for o in outcomes if not o.passed]
    if fmt == "json":
        from releasectl.cli.errordoc import error_document

        doc = {
            "passed": len(outcomes) - len(failed),
            "failed": len(failed),
            "tests": [o.as_dict() for o in outcomes],
        }
        if failed:  # a failing command's JSON always carries `error`
            first = failed[0]
            doc.update(
                error_document(
                    f"{len(failed)} authorization test(s) failed; first: {first.name}",
                    1,
                    file=first.file,
                    line=first.line,
                )
            )
        emit_json(doc)
        return 1 if failed else 0
    for outcome in outcomes:
        where = f"{outcome.file}:{outcome.line}" if outcome.line else outcome.file
        if outcome.passed:
            emit(f"PASS  {where}  {outcome.name}: {outcome.describe()}")
        else:
            emit(f"FAIL  {where}  {outcome.name}: {outcome.describe()}")
    if not outcomes:
        tests = workspace.spec.authorization.tests or "(no test directory configured)"
        emit(f"no authorization tests in {tests}", err=True)
        return 0
    summary = f"{len(outcomes) - len(failed)} passed, {len(failed)} failed"
    emit(summary, err=bool(failed))
    return 1 if failed else 0
