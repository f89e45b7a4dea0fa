"""State backends: where an environment's recorded state, history and lock live.

`open_backend` picks the backend named by the environment's `state.backend`; Redis and
Kubernetes backends import their clients only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from releasectl.errors import InputError

if TYPE_CHECKING:
    from releasectl.state.base import StateBackend
    from releasectl.workspace import Workspace


def open_backend(workspace: Workspace, env: str) -> StateBackend:
    config = workspace.environment(env).state
    if config.backend == "file":
        from releasectl.state.file import FileBackend

        directory = workspace.root / (config.path or ".releasectl")
        return FileBackend(directory, env, display_root=workspace.root)
    if config.backend == "redis":
        from releasectl.state.redis import RedisBackend

        if not config.url:
            raise InputError(
                "state backend redis needs `url`",
                location=workspace.doc.location(("environments", env, "state")),
            )
        url = workspace.resolve(env, ("state", "url"), config.url)
        return RedisBackend(url, env, prefix=config.key_prefix, workspace=workspace)
    from releasectl.state.kubernetes import KubernetesBackend

    return KubernetesBackend(workspace, env, config)
