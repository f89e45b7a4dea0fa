"""docs/cli.md, generated from the CLI itself: every command's --help, in the order of
`releasectl --help`. `python -m releasectl.cli.clidocs --write` rewrites the file;
tests/test_cli_docs.py fails when it is out of date."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

WIDTH = 100
DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"

INTRO = """\
# Command reference

Generated from the CLI by `python -m releasectl.cli.clidocs --write` (tests/test_cli_docs.py
fails when it is out of date): every command's `--help`, examples included.

- Global options go before the command (`releasectl --env staging plan`); most commands
  also take `--env` and `--format` after it, and every command takes `--no-color`.
- Colour: off with `--no-color` (before or after the command) or any non-empty `NO_COLOR`
  (https://no-color.org); it never reaches a pipe or a file.
- Confirmation fails closed: `apply` of a fresh plan, `migrate`, `rollback` and `restore` ask
  when stdin and stdout are terminals, go on with `--yes`, and are refused (exit 1) without
  `--yes` and without a terminal (CI, `releasectl apply | tee log`). `apply PLAN` never asks:
  the saved plan is the approval.
- With `--format json`, a command that fails prints
  `{"error": {"message", "file", "line", "field", "exit_code"}}` on stdout (null where unknown;
  `errors` lists each one when several were found; schema: `schemas/error.schema.json`), the
  message also goes to stderr, and the exit code is the one in the table below. Reports that
  fail (`validate`, `authz test`, `release verify`, `history --verify`) carry the same `error`
  object beside their own fields.

| exit code | meaning |
|---|---|
| 0 | success; for `plan`, no changes |
| 1 | error: invalid input, failed migration (after rollback), unreachable target, no confirmation |
| 2 | `plan --detailed-exitcode` and there are changes |
| 3 | stale plan or drift |
| 4 | the environment's lock is held by someone else |
| 5 | denied by authorization policy or promotion |
| 64 | usage error (unknown command or flag) |

## Shell completion

Commands, options, environments, components, releases and backup ids (of the component
before it, in the environment of `--env`) complete from the workspace of the current
directory (or `--workspace`):

```bash
eval "$(_RELEASECTL_COMPLETE=bash_source releasectl)"     # ~/.bashrc
eval "$(_RELEASECTL_COMPLETE=zsh_source releasectl)"      # ~/.zshrc
_RELEASECTL_COMPLETE=fish_source releasectl | source      # fish: completions/releasectl.fish
```
"""


def _commands(
    command: click.Command, ctx: click.Context
) -> Iterator[tuple[click.Command, click.Context]]:
    yield command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            sub_ctx = click.Context(sub, info_name=name, parent=ctx, terminal_width=WIDTH)
            yield from _commands(sub, sub_ctx)


def render() -> str:
    from releasectl.cli.app import cli

    settings = {**cli.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    root = click.Context(cli, info_name="releasectl", **settings)
    out = [INTRO]
    for command, ctx in _commands(cli, root):
        out.append(f"## `{ctx.command_path}`\n")
        out.append("```text")
        out.append(command.get_help(ctx).rstrip())
        out.append("```\n")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    text = render()
    if argv == ["--write"]:
        DOC.write_text(text, encoding="utf-8")
        return 0
    if argv:
        sys.stderr.write("usage: python -m releasectl.cli.clidocs [--write]\n")
        return 64
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
