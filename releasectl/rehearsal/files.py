"""Copies that are directories: rendered Kubernetes config (`mode: render`), rendered service
Deployments, and Cedar policy stores (a directory, or a ConfigMap copied into one).

The real target writes its scoped backup (the rendered files, the stored policy set) through
the Target protocol; a target of the same type whose settings name a temporary directory
restores it there. The copy's state is every file under the directory, byte for byte, as a
reader sees it (symlinks followed, the kubelet-style `..data` internals of a policy store
left out, since their names change with every write while what they serve does not).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from releasectl.models.rehearsal import CopyInfo, Difference
from releasectl.models.workspace import CedarTarget, KubernetesTarget, ServiceTarget
from releasectl.rehearsal.base import NotRehearsed, Observed, Request, spooled
from releasectl.targets.base import TargetContext, open_target

if TYPE_CHECKING:
    from releasectl.models.plan import Step
    from releasectl.workspace.catalogue import Migration

APPLY_MODE = (
    "mode: apply talks to a cluster, which is not copied; the analysis lists the objects "
    "created, changed and pruned"
)


class DirCopy:
    def __init__(self, ctx: TargetContext, info: CopyInfo, root: Path) -> None:
        self.ctx = ctx
        self.info = info
        self.root = root

    def state(self) -> dict[str, bytes]:
        return read_tree(self.root)

    def compare(self, before: dict[str, bytes], after: dict[str, bytes]) -> list[Difference]:
        return compare_trees(before, after)

    def watch(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def observe(
        self, step: Step, migration: Migration | None, before: Any, after: Any, watched: Any
    ) -> Observed:
        return Observed()

    def close(self) -> None:
        return None


def open_copy(request: Request) -> DirCopy:
    real = request.real
    settings = real.settings
    copy_dir = request.workdir / "files"
    if isinstance(settings, KubernetesTarget):
        if settings.mode != "render":
            raise NotRehearsed(APPLY_MODE)
        copied: Any = settings.model_copy(update={"path": str(copy_dir)})
        kind = "directory (rendered config)"
    elif isinstance(settings, ServiceTarget):
        if settings.image is None or settings.mode == "record":
            raise NotRehearsed("a record-only deploy changes nothing but the recorded state")
        if settings.mode != "render":
            raise NotRehearsed(APPLY_MODE)
        copied = settings.model_copy(update={"path": str(copy_dir)})
        kind = "directory (rendered Deployment)"
    elif isinstance(settings, CedarTarget):
        copied = CedarTarget(store="dir", path=str(copy_dir))
        kind = "directory (policy store)"
    else:
        raise NotRehearsed(f"no settings for a {real.type} copy")
    started = time.monotonic()
    ctx = TargetContext(
        root=real.root,
        env=real.env,
        component=real.component,
        type=real.type,
        settings=copied,
        migrations=real.migrations,
        protected=real.protected,
        environ=real.environ,
        log=real.log,
        default_timeout=real.default_timeout,
    )
    source = open_target(real)
    target = open_target(ctx)
    try:
        first = request.steps[0] if request.steps else (None, None)
        with spooled(request.workdir, request.limits.max_bytes, "the snapshot") as spool:
            info = source.backup(first[0], first[1], spool.writer)
            target.restore(spool.reader())
            size = spool.size
    finally:
        source.close()
        target.close()
    return DirCopy(
        ctx,
        CopyInfo(
            component=real.component,
            type=real.type,
            kind=kind,
            made=True,
            scope=list(info.scope),
            items=info.items,
            bytes=size,
            seconds=round(time.monotonic() - started, 3),
        ),
        copy_dir,
    )


def read_tree(root: Path) -> dict[str, bytes]:
    """relative path -> bytes of every file under `root`, as a reader sees them."""
    out: dict[str, bytes] = {}
    if not root.is_dir():
        return out
    for base, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".."))
        for name in sorted(files):
            if name.startswith(".."):
                continue
            path = Path(base) / name
            rel = path.relative_to(root).as_posix()
            try:
                out[rel] = path.read_bytes()
            except OSError as exc:
                out[rel] = f"(unreadable: {exc.strerror})".encode()
    return out


def compare_trees(before: dict[str, bytes], after: dict[str, bytes]) -> list[Difference]:
    found: list[Difference] = []
    for rel in sorted(set(before) | set(after)):
        if rel not in after:
            found.append(Difference(what=f"file {rel}", detail="missing after the rollback"))
        elif rel not in before:
            found.append(Difference(what=f"file {rel}", detail="left behind by the rollback"))
        elif before[rel] != after[rel]:
            found.append(
                Difference(
                    what=f"file {rel}",
                    detail=f"differs ({len(before[rel])} bytes before, {len(after[rel])} after)",
                )
            )
    return found
