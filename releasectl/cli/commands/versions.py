from __future__ import annotations

from typing import TYPE_CHECKING

import click

from releasectl.cli.complete import components, components_or_platform, environments, releases
from releasectl.cli.context import emit, emit_json, examples, format_option, options

if TYPE_CHECKING:
    from releasectl.release.versions import VersionChange, VersionList

PART_CHOICE = click.Choice(["major", "minor", "patch", "prerelease"])


@click.group(
    epilog=examples(
        "releasectl version list",
        "releasectl version set auth-service 1.4.0",
        "releasectl version bump platform minor",
    ),
)
def version() -> None:
    """List, set and bump component versions in the release manifests.

    Edits are made in place: comments, key order, quoting and indentation are kept, and the
    diff is the one value that changed.
    """


@version.command(
    "list",
    epilog=examples(
        "releasectl version list",
        "releasectl version list --env staging --format json",
    ),
)
@click.option(
    "--env",
    "-e",
    "env",
    shell_complete=environments,
    help="Also show the versions this environment has recorded, marking differences.",
)
@format_option("text", "json")
def list_(env: str | None, fmt: str | None) -> int:
    """Every component's version in the newest release manifest."""
    from releasectl.release.versions import list_versions

    opts = options()
    fmt = opts.output_format(fmt, ("text", "json"))
    workspace = opts.load_workspace()
    env_name = env or opts.env
    state = None
    if env_name is not None:
        workspace.environment(env_name)
        state = opts.backend(env_name).read()
    result = list_versions(workspace, env=env_name, state=state)
    if fmt == "json":
        emit_json(result.as_json())
    else:
        emit(_list_text(result))
    return 0


def _list_text(result: VersionList) -> str:
    def shown(value: int | str | None) -> str:
        return "-" if value is None else str(value)

    head = f"release {shown(result.release)}"
    if result.manifest:
        head += f" ({result.manifest})"
    if result.env is not None:
        head += f"; environment {result.env}: release {shown(result.recorded_release)}"
    lines = [head]
    width = max((len(r.name) for r in result.rows), default=9)
    header = f"  {'component':<{width}}  {'type':<10}  {'release':<10}"
    if result.env is not None:
        header += f"  {'recorded':<10}"
    lines.append(header.rstrip())
    for row in result.rows:
        line = f"  {row.name:<{width}}  {row.type or '?':<10}  {shown(row.version):<10}"
        if result.env is not None:
            line += f"  {shown(row.recorded):<10}" + ("  *" if row.differs else "")
        lines.append(line.rstrip())
    differing = sum(1 for r in result.rows if r.differs)
    if result.env is not None:
        lines.append(
            f"{differing} component(s) differ from the release (marked *)"
            if differing
            else f"environment {result.env} matches the release"
        )
    return "\n".join(lines) + "\n"


@version.command(
    "set",
    epilog=examples(
        "releasectl version set auth-service 1.4.0",
        "releasectl version set redis 2 --release 1.2.0",
    ),
)
@click.argument("component", shell_complete=components)
@click.argument("new_version", metavar="VERSION")
@click.option(
    "--release",
    "-r",
    "release",
    shell_complete=releases,
    help="Edit this release (default: the newest).",
)
def set_(component: str, new_version: str, release: str | None) -> int:
    """Set COMPONENT's version: X.Y.Z for a service, a migration number for a migrated
    component (it must have that migration)."""
    from releasectl.release.versions import set_version

    workspace = options().load_workspace()
    _report_change(set_version(workspace, component, new_version, release=release))
    return 0


@version.command(
    "bump",
    epilog=examples(
        "releasectl version bump auth-service minor",
        "releasectl version bump platform patch",
    ),
)
@click.argument("target", metavar="COMPONENT|platform", shell_complete=components_or_platform)
@click.argument("part", type=PART_CHOICE)
@click.option("--pre", "pre", metavar="TOKEN", help="Make it a pre-release (rc, beta, ...).")
@click.option("--build", "build", metavar="META", help="Add build metadata (+META).")
@click.option("-m", "--message", "message", help="platform: the new release's description.")
def bump(target: str, part: str, pre: str | None, build: str | None, message: str | None) -> int:
    """Bump a service's version in the newest manifest, or bump `platform`: create the next
    release manifest (as `release create` with the computed version)."""
    from typing import cast

    from releasectl.release.versions import PLATFORM, Part, bump_component, bump_platform

    workspace = options().load_workspace()
    which = cast(Part, part)
    if target == PLATFORM:
        created = bump_platform(workspace, which, pre=pre, build=build, message=message)
        emit(
            f"created release {created.version} ({created.manifest}) from {created.source}; "
            f"upgrades_from {created.upgrades_from!r}"
        )
        return 0
    if message is not None:
        raise click.UsageError("-m/--message applies to `version bump platform` only")
    _report_change(bump_component(workspace, target, which, pre=pre, build=build))
    return 0


def _report_change(change: VersionChange) -> None:
    if change.changed:
        old = "-" if change.old is None else change.old
        emit(f"{change.component}: {old} -> {change.new} in {change.manifest}")
    else:
        emit(f"{change.component} is already {change.new} in {change.manifest}")
    for warning in change.warnings:
        emit(f"warning: {warning}", err=True)
