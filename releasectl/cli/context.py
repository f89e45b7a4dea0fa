"""What every command shares: global options, the workspace, the environment, output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from releasectl.state.base import StateBackend
    from releasectl.workspace import Workspace


@dataclass
class Options:
    workspace: str | None = None
    env: str | None = None
    fmt: str | None = None
    verbosity: int = 0
    traceback: bool = False
    color: bool = True
    log_format: str = "text"
    _workspace: Workspace | None = field(default=None, repr=False)

    def load_workspace(self) -> Workspace:
        if self._workspace is None:
            from releasectl.workspace import Workspace, find_root

            start = Path(self.workspace) if self.workspace else Path.cwd()
            root = find_root(start) if self.workspace is None else start.resolve()
            if self.workspace is not None and not (root / "releasectl.yaml").is_file():
                from releasectl.errors import InputError

                raise InputError(f"no releasectl.yaml in {root}")
            self._workspace = Workspace.load(root)
        return self._workspace

    def env_name(self, override: str | None = None) -> str:
        return override or self.env or os.environ.get("RELEASECTL_ENV") or "local"

    def output_format(self, override: str | None, allowed: tuple[str, ...]) -> str:
        fmt = override or self.fmt or allowed[0]
        if fmt not in allowed:
            raise click.UsageError(f"--format must be one of {', '.join(allowed)}, not {fmt!r}")
        return fmt

    def backend(self, env: str) -> StateBackend:
        from releasectl.state import open_backend

        return open_backend(self.load_workspace(), env)


def options(ctx: click.Context | None = None) -> Options:
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is None:
        return Options()
    obj = ctx.find_object(Options)
    return obj if obj is not None else Options()


def emit(text: str, *, err: bool = False) -> None:
    """Print `text`; styles (click.style) reach a terminal only while colour is on."""
    color = None if options().color else False
    click.echo(text, err=err, nl=not text.endswith("\n"), color=color)


def safe_text(text: str) -> str:
    """What the CLI prints of an error message: through the redaction seam
    (`secrets.redact`), long quoted values cut to excerpts, every line clipped."""
    from releasectl.errors import clip, shorten_quotes
    from releasectl.secrets import redact

    return "\n".join(clip(line) for line in shorten_quotes(redact(text)).split("\n"))


def emit_error(text: str) -> None:
    """`error: <message>` on stderr, through `safe_text`."""
    emit(f"error: {safe_text(text)}", err=True)


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


F = TypeVar("F", bound=Callable[..., Any])


def env_option(f: F) -> F:
    from releasectl.cli.complete import environments

    return click.option(
        "--env",
        "-e",
        "env",
        help="Environment (default: RELEASECTL_ENV, else local).",
        shell_complete=environments,
    )(f)


def format_option(*choices: str) -> Callable[[F], F]:
    def deco(f: F) -> F:
        return click.option(
            "--format",
            "-f",
            "fmt",
            type=click.Choice(choices),
            help=f"Output format (default {choices[0]}).",
        )(f)

    return deco


def examples(*lines: str) -> str:
    """An `Examples:` epilog for a command's --help, shown verbatim (click's \\b marker)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def color_wanted(no_color_flag: bool) -> bool:
    """Colour is off with --no-color or any non-empty NO_COLOR (https://no-color.org)."""
    return not no_color_flag and not os.environ.get("NO_COLOR")


def confirm(question: str, *, yes: bool, verb: str, hint: str = "pass --yes") -> None:
    """Ask `question`, or go on with --yes; fail closed (as Terraform does) when there is no
    terminal to ask on: stdin and stdout must both be terminals, so `releasectl apply | tee
    log` and a CI job without --yes are refused, never applied unasked."""
    from releasectl.errors import Aborted

    if yes:
        return
    if not is_interactive():
        raise Aborted(
            f"{verb} needs a confirmation and there is no terminal to ask on "
            f"(stdin and stdout must be terminals); {hint}"
        )
    if not click.confirm(question, default=False, err=True):
        raise Aborted(f"{verb} cancelled; nothing changed")
