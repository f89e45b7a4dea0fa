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
    ctx = ctx or click.get_current_context()
    obj = ctx.find_object(Options)
    return obj if obj is not None else Options()


def emit(text: str, *, err: bool = False) -> None:
    click.echo(text, err=err, nl=not text.endswith("\n"))


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
    return click.option(
        "--env", "-e", "env", help="Environment (default: RELEASECTL_ENV, else local)."
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


def is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()
