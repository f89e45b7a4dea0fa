from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from releasectl.cli.complete import environments, releases
from releasectl.cli.context import emit, emit_error, emit_json, examples, format_option, options


@click.group(
    epilog=examples(
        "releasectl release create 1.2.0 -m 'Faster sessions'",
        "releasectl release validate 1.2.0",
        "releasectl release package 1.2.0 && releasectl release verify dist/*.tar.gz",
    ),
)
def release() -> None:
    """Create, validate, show, package and verify release manifests."""


@release.command(
    epilog=examples(
        "releasectl release create 1.2.0 -m 'Faster sessions'",
    ),
)
@click.argument("version")
@click.option("-m", "--message", "message", help="Description of the new release.")
def create(version: str, message: str | None) -> int:
    """Write releases/VERSION.yaml from the newest manifest (comments kept), dated today (UTC),
    upgrading from the newest release."""
    from releasectl.release.manifests import create_release

    created = create_release(options().load_workspace(), version, message=message)
    emit(
        f"created release {created.version} ({created.manifest}) from {created.source}; "
        f"upgrades_from {created.upgrades_from!r}"
    )
    return 0


@release.command(
    epilog=examples(
        "releasectl release validate 1.2.0",
        "releasectl release validate 1.2.0 --env staging",
    ),
)
@click.argument("version", shell_complete=releases)
@click.option(
    "--env",
    "-e",
    "env",
    shell_complete=environments,
    help="Compare migration checksums with this environment's recorded state "
    "(default: every environment whose state backend is a file).",
)
def validate(version: str, env: str | None) -> int:
    """Check a release: schema, versions, constraints, migrations and their down parts,
    checksums, static checks, and the upgrade from the previous release."""
    from releasectl.release.validation import release_problems

    opts = options()
    workspace = opts.load_workspace()
    # Only an explicit --env reaches a remote backend: validation must work offline in CI.
    states = _states(env)
    problems = release_problems(workspace, version, states=states)
    for problem in problems:
        emit_error(str(problem))
    if problems:
        emit(f"release {version}: {len(problems)} problem(s)", err=True)
        return 1
    emit(f"ok: release {version}")
    return 0


def _states(env: str | None) -> dict[str, Any]:
    """Recorded states to check checksums against: `env`, or the file-backed ones."""
    opts = options()
    workspace = opts.load_workspace()
    if env is not None:
        workspace.environment(env)
        return {env: opts.backend(env).read()}
    states: dict[str, Any] = {}
    for name, spec in workspace.spec.environments.items():
        if spec.state.backend == "file":
            states[name] = opts.backend(name).read()
    return states


@release.command(
    epilog=examples(
        "releasectl release show 1.1.0",
        "releasectl release show 1.1.0 --format json",
    ),
)
@click.argument("version", shell_complete=releases)
@format_option("text", "json")
def show(version: str, fmt: str | None) -> int:
    """Components, changes since the previous release, and compatibility."""
    from releasectl.release.validation import show_release

    opts = options()
    fmt = opts.output_format(fmt, ("text", "json"))
    data = show_release(opts.load_workspace(), version)
    if fmt == "json":
        emit_json(data)
    else:
        emit(_show_text(data))
    return 0


def _v(value: Any) -> str:
    return "-" if value is None else str(value)


def _show_text(data: dict[str, Any]) -> str:
    head = f"release {data['version']}"
    if data["date"]:
        head += f" ({data['date']})"
    if data["description"]:
        head += f": {data['description']}"
    lines = [head, f"  manifest {data['manifest']}  sha256 {data['checksum'][:16]}", ""]
    components = data["components"]
    width = max((len(n) for n in components), default=9)
    lines.append("components:")
    for name, item in components.items():
        requires = ", ".join(f"{k} {v}" for k, v in item["requires"].items())
        line = f"  {name:<{width}}  {item['type'] or '?':<10}  {_v(item['version']):<10}"
        lines.append((line + (f"  requires {requires}" if requires else "")).rstrip())
    lines.append("")
    previous = data["previous"]
    if previous is None:
        lines.append("changes: first release")
    elif not data["changes"]:
        lines.append(f"changes since {previous}: none")
    else:
        lines.append(f"changes since {previous}:")
        for change in data["changes"]:
            lines.append(
                f"  {change['name']:<{width}}  {_v(change['from'])} -> {_v(change['to'])}"
                f"  ({change['change']})"
            )
    lines.append("")
    upgrades = data["upgrades_from"]
    if upgrades is None:
        lines.append("upgrades_from: any recorded release")
    else:
        verdict = ""
        if data["upgrades_from_previous"] is not None:
            admits = "admits" if data["upgrades_from_previous"] else "does NOT admit"
            verdict = f" ({admits} {previous})"
        lines.append(f"upgrades_from: {upgrades}{verdict}")
    if data["notes"]:
        lines.extend(["", "notes:", *(f"  {line}" for line in str(data["notes"]).splitlines())])
    return "\n".join(lines) + "\n"


@release.command(
    epilog=examples(
        "releasectl release package 1.1.0",
        "releasectl release package 1.1.0 --out build/",
    ),
)
@click.argument("version", shell_complete=releases)
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(file_okay=False),
    help="Directory for the tarball (default: dist/ in the workspace).",
)
def package(version: str, out: str | None) -> int:
    """Build a reproducible <workspace>-VERSION.tar.gz with the manifest, the migrations it
    needs, releasectl.yaml, schemas/ and SHA256SUMS."""
    from releasectl.release.package import build_package

    result = build_package(options().load_workspace(), version, Path(out) if out else None)
    emit(f"{result.path}: {len(result.sums) + 1} files, sha256 {result.sha256}")
    return 0


@release.command(
    epilog=examples(
        "releasectl release verify dist/rust-security-platform-1.1.0.tar.gz",
    ),
)
@click.argument("tarball", type=click.Path(dir_okay=False))
@format_option("text", "json")
def verify(tarball: str, fmt: str | None) -> int:
    """Check every entry of a package against its SHA256SUMS, without extracting it; refuse
    unsafe entries (absolute paths, '..', links, devices, fifos, duplicates)."""
    from releasectl.release.package import verify_package

    fmt = options().output_format(fmt, ("text", "json"))
    report = verify_package(Path(tarball))
    if fmt == "json":
        from releasectl.cli.errordoc import error_document

        doc: dict[str, Any] = {
            "path": str(report.path),
            "sha256": report.sha256,
            "ok": report.ok,
            "files": report.files,
            "problems": report.problems,
        }
        if not report.ok:  # a failing command's JSON always carries `error`
            doc.update(
                error_document(
                    f"{len(report.problems)} problem(s): {report.problems[0]}", 1, file=tarball
                )
            )
        emit_json(doc)
        return 0 if report.ok else 1
    for problem in report.problems:
        emit_error(f"{tarball}: {problem}")
    if not report.ok:
        emit(f"{tarball}: {len(report.problems)} problem(s)", err=True)
        return 1
    emit(f"ok: {tarball}: {len(report.files)} files match SHA256SUMS (sha256 {report.sha256})")
    return 0
