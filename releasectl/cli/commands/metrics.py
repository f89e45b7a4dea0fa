"""`releasectl metrics`: the Prometheus families of an environment, computed from its recorded
state and history, for a cron job or a scrape that publishes them without an apply."""

from __future__ import annotations

import click

from releasectl.cli.context import env_option, examples, options
from releasectl.cli.observe import publish_options
from releasectl.observe.publish import Destinations


@click.command(
    epilog=examples(
        "releasectl metrics --env prod",
        "releasectl metrics --env prod --metrics-file /var/lib/node_exporter/releasectl.prom",
        "releasectl metrics --env prod --pushgateway http://pushgateway:9091",
    ),
)
@env_option
@publish_options
def metrics(env: str | None, publish: Destinations) -> int:
    """Print the environment's metrics in the Prometheus text format (or, with
    --metrics-file / --pushgateway, write them atomically / push them instead).

    The same families as a run writes, from what is recorded: step durations, failures and
    rollbacks over the whole history, the last backup of each component, versions, and a
    step in progress or interrupted (from the journal). The lock wait is known only to a run.
    """
    from releasectl.cli.context import emit
    from releasectl.cli.observe import snapshot
    from releasectl.errors import ReleasectlError
    from releasectl.observe.publish import publish as send

    opts = options()
    workspace = opts.load_workspace()
    env_name = opts.env_name(env)
    workspace.environment(env_name)
    snap = snapshot(workspace, env_name)
    if not publish:
        from releasectl.observe.metrics import render

        emit(render(snap).decode())
        return 0
    problems = send(publish, snap)
    if problems:
        raise ReleasectlError("; ".join(problems))
    return 0
