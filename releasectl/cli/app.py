"""The command line: parse, call the core, render, and map errors to exit codes in one place.

Commands live in `releasectl.cli.commands.<module>` and are imported only when run, so that
`releasectl --help` does not pay for pydantic, redis, kubernetes, cedarpy or git.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
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
}


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
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
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
@click.option("--env", "-e", "env", envvar="RELEASECTL_ENV", help="Environment (default: local).")
@click.option("--format", "-f", "fmt", help="Output format, where a command has several.")
@click.option("-q", "--quiet", count=True, help="Less output.")
@click.option("-v", "--verbose", count=True, help="More output.")
@click.option("--traceback", is_flag=True, help="Show the Python stack on errors.")
@click.option("--no-color", is_flag=True, envvar="NO_COLOR", help="No colours.")
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
) -> None:
    """Declarative GitOps releases: plan and apply platform releases with backups, checks
    and automatic rollback.

    Exit codes: 0 ok (plan: no changes), 1 error, 2 plan has changes (--detailed-exitcode),
    3 stale plan or drift, 4 locked, 5 denied by policy, 64 usage error.
    """
    from releasectl.cli.context import Options

    ctx.obj = Options(
        workspace=workspace,
        env=env,
        fmt=fmt,
        verbosity=verbose - quiet,
        traceback=traceback,
        color=not no_color,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    show_trace = "--traceback" in args or bool(os.environ.get("RELEASECTL_TRACEBACK"))
    try:
        result: Any = cli.main(args=args, prog_name="releasectl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:  # usage errors: unknown command, bad option, ...
        _show_click(exc)
        return 64 if isinstance(exc, click.UsageError) else 1
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:
        return _report(exc, show_trace)
    if isinstance(result, int):
        return result
    return 0


def _show_click(exc: click.ClickException) -> None:
    """A usage error as click shows it, through the redaction seam (an option's value may
    be a URL with its password)."""
    import io

    from releasectl.cli.context import safe_text

    buffer = io.StringIO()
    exc.show(file=buffer)
    click.echo(safe_text(buffer.getvalue().rstrip("\n")), err=True)


def _report(exc: Exception, show_trace: bool) -> int:
    from releasectl.cli.context import safe_text
    from releasectl.errors import ReleasectlError
    from releasectl.secrets import redact

    if show_trace:
        import traceback

        click.echo(redact("".join(traceback.format_exception(exc))).rstrip("\n"), err=True)
    if isinstance(exc, ReleasectlError):
        lines = safe_text(str(exc)).splitlines() or [""]
        click.echo(f"error: {lines[0]}", err=True)
        for line in lines[1:]:
            click.echo(f"  {line}", err=True)
        return int(exc.exit_code)
    click.echo(f"error: internal error: {safe_text(f'{type(exc).__name__}: {exc}')}", err=True)
    if not show_trace:
        click.echo("  (run with --traceback for the stack; this is a bug in releasectl)", err=True)
    return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
