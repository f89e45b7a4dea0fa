"""The command line: parse, call the core, render, and map errors to exit codes in one place.

Commands live in `releasectl.cli.commands.<module>` and are imported only when run, so that
`releasectl --help` does not pay for pydantic, redis, kubernetes, cedarpy or git.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import click

from releasectl import __version__

# name -> (module, attribute, one-line help). The order is the order of `--help`.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("init", "init", "Create a workspace (releasectl.yaml, releases/, migrations/)."),
    "validate": ("validate", "validate", "Check the workspace, manifests, migrations and drift."),
    "plan": ("plan", "plan", "Show the ordered steps from recorded to desired state."),
    "apply": ("apply", "apply", "Run a plan: lock, back up, migrate, verify, record."),
    "status": ("status", "status", "Show what an environment has recorded."),
    "history": ("history", "history", "Show or verify the audit history."),
    "graph": ("graph", "graph", "Show the component dependency graph."),
    "migrate": ("component", "migrate", "Move one component up (or down) to a version."),
    "rollback": ("component", "rollback", "Move one component down to a version."),
    "backup": ("backups", "backup", "Back up a component's data (list with --list)."),
    "restore": ("backups", "restore", "Restore a component from a backup id."),
    "recover": ("recover", "recover", "Roll back or forward a step interrupted by a crash."),
    "unlock": ("unlock", "unlock", "Remove a stale environment lock by its id."),
    "version": ("versions", "version", "List, set and bump component versions."),
    "release": ("releases", "release", "Create, validate, show, package and verify releases."),
    "changelog": ("changelog", "changelog", "Generate a changelog from conventional commits."),
    "state": ("statecmd", "state", "Move state between backends (pull, push)."),
    "authz": ("authz", "authz", "Test the workspace's authorization policies."),
    "schema": ("schema", "schema", "Export the JSON Schemas of releasectl's documents."),
    "baseline": ("adopt", "baseline", "Record a component's version without running anything."),
    "import-legacy": ("adopt", "import_legacy", "Adopt an environment run by the old scripts."),
    "metrics": ("metrics", "metrics", "Print Prometheus metrics from recorded state and history."),
}


def _no_color(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        from releasectl.cli.context import options

        options(ctx).color = False


def _add_no_color(command: click.Command) -> None:
    """`--no-color` also after the subcommand (`releasectl status --no-color`), on every
    command and subcommand; it only turns colour off, so it carries no value of its own."""
    if not any(p.name == "no_color_here" for p in command.params):
        command.params.append(
            click.Option(
                ["--no-color", "no_color_here"],
                is_flag=True,
                expose_value=False,
                callback=_no_color,
                help="No colours (also: any non-empty NO_COLOR).",
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_no_color(sub)


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(f"releasectl.cli.commands.{entry[0]}")
        command = getattr(module, entry[1])
        assert isinstance(command, click.Command)
        _add_no_color(command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _complete_env(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    from releasectl.cli.complete import environments

    return environments(ctx, param, incomplete)


EXAMPLES = """Examples:

\b
  releasectl plan                                   # what apply would do on `local`
  releasectl apply --yes                            # do it
  releasectl --env staging plan --format markdown --out plan.json > plan.md
  releasectl apply plan.json --commit               # the saved plan is the approval
  releasectl status --format json

Shell completion (bash; zsh and fish: see docs/cli.md):

\b
  eval "$(_RELEASECTL_COMPLETE=bash_source releasectl)"
"""


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXAMPLES,
)
@click.version_option(__version__, "--version", prog_name="releasectl")
@click.option(
    "--workspace",
    "-w",
    "workspace",
    type=click.Path(file_okay=False),
    envvar="RELEASECTL_WORKSPACE",
    help="Workspace directory (default: nearest parent with releasectl.yaml).",
)
@click.option(
    "--env",
    "-e",
    "env",
    envvar="RELEASECTL_ENV",
    help="Environment (default: local).",
    shell_complete=_complete_env,
)
@click.option("--format", "-f", "fmt", help="Output format, where a command has several.")
@click.option("-q", "--quiet", count=True, help="Less output.")
@click.option("-v", "--verbose", count=True, help="More output.")
@click.option("--traceback", is_flag=True, help="Show the Python stack on errors.")
# Not `envvar="NO_COLOR"`: click would parse the value as a boolean and refuse
# NO_COLOR=anything (exit 64); any non-empty value turns colour off (https://no-color.org).
@click.option("--no-color", is_flag=True, help="No colours (also: any non-empty NO_COLOR).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="RELEASECTL_LOG_FORMAT",
    help="Log records on stderr: text, or json (one event per line).",
)
@click.pass_context
def cli(
    ctx: click.Context,
    workspace: str | None,
    env: str | None,
    fmt: str | None,
    quiet: int,
    verbose: int,
    traceback: bool,
    no_color: bool,
    log_format: str,
) -> None:
    """Declarative GitOps releases: plan and apply platform releases with backups, checks
    and automatic rollback.

    Exit codes: 0 ok (plan: no changes), 1 error, 2 plan has changes (--detailed-exitcode),
    3 stale plan or drift, 4 locked, 5 denied by policy, 64 usage error.
    """
    from releasectl.cli.context import Options, color_wanted
    from releasectl.observe.logs import configure

    configure(log_format, verbose - quiet)
    ctx.obj = Options(
        workspace=workspace,
        env=env,
        fmt=fmt,
        verbosity=verbose - quiet,
        traceback=traceback,
        color=color_wanted(no_color),
        log_format=log_format,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    show_trace = "--traceback" in args or bool(os.environ.get("RELEASECTL_TRACEBACK"))
    as_json = requested_format(args) == "json"
    try:
        with cancellation():
            result: Any = cli.main(args=args, prog_name="releasectl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:  # usage errors: unknown command, bad option, ...
        code = 64 if isinstance(exc, click.UsageError) else 1
        if as_json:
            from releasectl.cli.context import safe_text

            _print_json_error(safe_text(exc.format_message()), code)
        _show_click(exc)
        return code
    except click.exceptions.Abort:
        if as_json:
            _print_json_error("aborted", 130)
        click.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        if as_json:
            _print_json_error("interrupted", 130)
        click.echo("interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:
        return _report(exc, show_trace, as_json=as_json)
    if isinstance(result, int):
        return result
    return 0


def cancellation() -> AbstractContextManager[None]:
    """SIGTERM and SIGINT stop the running step, roll it back and exit 143 / 130."""
    from releasectl.engine.signals import handling

    return handling()


def requested_format(args: Sequence[str]) -> str | None:
    """The value of the last --format/-f in `args` (before `--`), read before parsing so that
    even a usage error is reported in the format asked for."""
    found: str | None = None
    it = iter(args)
    for arg in it:
        if arg == "--":
            break
        if arg in ("--format", "-f"):
            found = next(it, None)
        elif arg.startswith("--format="):
            found = arg.split("=", 1)[1]
        elif arg.startswith("-f") and not arg.startswith("--") and len(arg) > 2:
            found = arg[2:].lstrip("=")
    return found


def _print_json_error(message: str, exit_code: int) -> None:
    from releasectl.cli.context import emit_json
    from releasectl.cli.errordoc import error_document

    emit_json(error_document(message, exit_code))


def _show_click(exc: click.ClickException) -> None:
    """A usage error as click shows it, through the redaction seam (an option's value may
    be a URL with its password)."""
    import io

    from releasectl.cli.context import safe_text

    buffer = io.StringIO()
    exc.show(file=buffer)
    click.echo(safe_text(buffer.getvalue().rstrip("\n")), err=True)


def _report(exc: Exception, show_trace: bool, *, as_json: bool = False) -> int:
    """The one error handler: a message on stderr (and with --format json the error document
    on stdout), and the exit code of DESIGN.md. Everything printed passes `safe_text`."""
    from releasectl.cli.context import emit_json, safe_text
    from releasectl.cli.errordoc import json_error
    from releasectl.errors import ReleasectlError
    from releasectl.observe.logs import log_error
    from releasectl.secrets import redact

    if show_trace:
        import traceback

        click.echo(redact("".join(traceback.format_exception(exc))).rstrip("\n"), err=True)
    if as_json:
        emit_json(json_error(exc))
    if isinstance(exc, ReleasectlError):
        text = safe_text(str(exc))
        if log_error(text, int(exc.exit_code)):
            return int(exc.exit_code)
        lines = text.splitlines() or [""]
        click.echo(f"error: {lines[0]}", err=True)
        for line in lines[1:]:
            click.echo(f"  {line}", err=True)
        return int(exc.exit_code)
    internal = safe_text(f"{type(exc).__name__}: {exc}")
    if log_error(f"internal error: {internal}", 1):
        return 1
    click.echo(f"error: internal error: {internal}", err=True)
    if not show_trace:
        click.echo("  (run with --traceback for the stack; this is a bug in releasectl)", err=True)
    return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
