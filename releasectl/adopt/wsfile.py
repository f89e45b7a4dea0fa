"""The import's additions to `releasectl.yaml` and the release manifest it writes.

An existing `releasectl.yaml` is edited round-trip (comments, order and quoting kept): missing
components, the environment and its missing targets are added, nothing is changed or removed.
Without one, a new file is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from releasectl.models.base import NAME_RE
from releasectl.workspace import WORKSPACE_FILE, yamlio

HEADER = "# Written by `releasectl import-legacy` from the old framework's tree ({source}).\n"


def workspace_text(
    root: Path,
    *,
    source: str,
    env: str,
    components: Mapping[str, str],
    targets: Mapping[str, dict[str, Any]],
) -> str | None:
    """The new text of releasectl.yaml with `components` ({name: type}) and the environment's
    `targets` added where missing; None when nothing needs adding."""
    from ruamel.yaml.comments import CommentedMap

    path = root / WORKSPACE_FILE
    if not path.is_file():
        data: Any = CommentedMap()
        data["apiVersion"] = "releasectl/v1"
        data["kind"] = "Workspace"
        data["name"] = _name(root)
        data["components"] = CommentedMap()
        data["environments"] = CommentedMap()
        header = HEADER.format(source=source)
        changed = True
    else:
        data = yamlio.roundtrip(path, WORKSPACE_FILE)
        header = ""
        changed = False
    comps = data.setdefault("components", CommentedMap())
    for name, ctype in components.items():
        if name not in comps:
            comps[name] = _flow({"type": ctype})
            changed = True
    envs = data.get("environments")
    if envs is None:
        envs = data["environments"] = CommentedMap()
    if env not in envs:
        spec = CommentedMap()
        spec["state"] = _flow({"backend": "file"})
        spec["targets"] = CommentedMap()
        envs[env] = spec
        changed = True
    spec = envs[env]
    if spec.get("targets") is None:
        spec["targets"] = CommentedMap()
    for name, settings in targets.items():
        if name not in spec["targets"]:
            spec["targets"][name] = _flow(settings)
            changed = True
    if not changed:
        return None
    return header + yamlio.roundtrip_dumps(data)


def _flow(values: Mapping[str, Any]) -> Any:
    from ruamel.yaml.comments import CommentedMap

    out = CommentedMap(values)
    out.fa.set_flow_style()
    return out


def _name(root: Path) -> str:
    import re

    name = re.sub(r"[^a-z0-9-]+", "-", root.name.lower()).strip("-")[:63].strip("-")
    return name if NAME_RE.match(name) else "platform"


def manifest_text(
    version: str, pins: Mapping[str, tuple[int | str, Mapping[str, str]]], *, source: str
) -> str:
    """A release manifest: {component: (version, requires)}."""
    lines = [
        HEADER.format(source=source).rstrip("\n"),
        "# The versions its state files record; plan the next release from here.",
        "apiVersion: releasectl/v1",
        "kind: Release",
        f"version: {version}",
        "description: The platform as the old framework left it (imported)",
        "components:" if pins else "components: {}",
    ]
    for name, (pin, requires) in pins.items():
        shown = str(pin) if isinstance(pin, int) else json.dumps(pin)
        extra = ""
        if requires:
            inner = ", ".join(f"{k}: {json.dumps(v)}" for k, v in requires.items())
            extra = f", requires: {{{inner}}}"
        lines.append(f"  {name}: {{version: {shown}{extra}}}")
    return "\n".join(lines) + "\n"
