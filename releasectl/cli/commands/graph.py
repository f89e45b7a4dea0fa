from __future__ import annotations

import click

from releasectl.cli.context import emit, examples, format_option, options


@click.command(
    epilog=examples(
        "releasectl graph",
        "releasectl graph --format dot | dot -Tsvg > graph.svg",
        "releasectl graph --format mermaid",
    ),
)
@format_option("text", "dot", "mermaid")
def graph(fmt: str | None) -> int:
    """Show the components in dependency order (text), or as Graphviz dot or Mermaid."""
    from releasectl.cli import render

    opts = options()
    fmt = opts.output_format(fmt, ("text", "dot", "mermaid"))
    workspace = opts.load_workspace()
    emit(render.graph(workspace.components, workspace.order, fmt))
    return 0
