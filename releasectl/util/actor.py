"""Who is acting: RELEASECTL_ACTOR, else the CI's actor variables, else the git author, else the
OS user. Recorded in the history, the lock and the promotion record."""

from __future__ import annotations

import getpass
import os
import subprocess
from collections.abc import Mapping

# CI systems and the variable naming the person or bot that started the job, in order.
CI_ACTOR_VARS = (
    "GITHUB_ACTOR",  # GitHub Actions
    "GITLAB_USER_LOGIN",  # GitLab CI
    "BUILDKITE_BUILD_CREATOR_EMAIL",  # Buildkite
    "CIRCLE_USERNAME",  # CircleCI
    "BITBUCKET_STEP_TRIGGERER_UUID",  # Bitbucket Pipelines
    "BUILD_REQUESTEDFOREMAIL",  # Azure Pipelines
    "BUILD_USER_ID",  # Jenkins (build-user-vars plugin)
)


def actor(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    explicit = env.get("RELEASECTL_ACTOR")
    if explicit:
        return explicit
    for name in CI_ACTOR_VARS:
        if env.get(name):
            return env[name]
    author = env.get("GIT_AUTHOR_EMAIL") or _git_config("user.email")
    if author:
        return author
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # pragma: no cover - no passwd entry in some containers
        return f"uid:{os.getuid()}"


def _git_config(key: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "config", "--get", key], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = proc.stdout.strip()
    return value or None
