"""Static checks of a Kubernetes migration (validate, plan): its objects load, are of the kinds
the target manages and hold no literal secret. No cluster is needed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from releasectl.targets.kubernetes.objects import load_snapshot

if TYPE_CHECKING:
    from releasectl.errors import ReleasectlError
    from releasectl.workspace.catalogue import Migration


def problems(migration: Migration) -> list[ReleasectlError]:
    return load_snapshot(migration)[1]
