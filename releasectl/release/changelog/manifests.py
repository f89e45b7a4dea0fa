"""Component versions from a workspace's release manifests, as they are at any commit.

A side of a changelog (its start, each release inside it, its end) names a release version
when it carries a version tag or was resolved from one; its manifest is `releases/<V>.yaml`
**as it is at that commit**, so later edits of a manifest do not rewrite history. A side
without a version (or whose manifest is missing there) uses the highest-versioned manifest at
that commit; the end at HEAD reads the work tree, so a release being prepared is included. All
sides are read with one `git cat-file --batch` (a second one for the fallbacks).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from releasectl.errors import InputError
from releasectl.release import gitlog
from releasectl.release.changelog.versions import VERSION, version_key

Version = int | str | None
Change = tuple[str, Version, Version]
"""(component, from, to)."""


class Manifest(NamedTuple):
    version: str
    date: str | None
    components: dict[str, Version]


class Side(NamedTuple):
    commit: str | None
    version: str | None
    name: str | None
    """For messages: the tag or ref the side was given as."""
    in_tree: bool = False


class Manifests:
    """The release manifests of workspace `ws`, in the work tree or at any commit."""

    def __init__(self, repo: Path, toplevel: Path, ws: Path, data: Any) -> None:
        self.repo = repo
        self.ws = ws
        value = data.get("releases") if isinstance(data, dict) else None
        self.dir = value.strip("/") if isinstance(value, str) and value.strip("/") else "releases"
        rel = ws.relative_to(toplevel).as_posix()
        self.in_repo = f"{'' if rel == '.' else rel + '/'}{self.dir}"  # git paths are from the top

    def path_of(self, version: str) -> str:
        """`releases/<version>.yaml` from the top of the work tree."""
        return f"{self.in_repo}/{version}.yaml"

    def in_work_tree(self, version: str) -> bool:
        return (self.ws / self.dir / f"{version}.yaml").is_file()

    def read(self, sides: Sequence[Side]) -> list[Manifest | None]:
        """The manifest of each side (None: none there, or no commit: the whole history)."""
        out: list[Manifest | None] = [None] * len(sides)
        wanted: list[tuple[int, str]] = []
        for i, side in enumerate(sides):
            if side.commit is None:
                continue
            if side.in_tree:
                out[i] = self._from_tree(side.version)
            elif side.version:
                wanted.append((i, f"{side.version}.yaml"))
        blobs = gitlog.read_blobs(
            self.repo, [f"{sides[i].commit}:{self.in_repo}/{f}" for i, f in wanted]
        )
        found = {i: (f, b) for (i, f), b in zip(wanted, blobs, strict=True) if b is not None}
        # A side without a version, or whose version has no manifest there: the highest one.
        missing = [
            i
            for i, s in enumerate(sides)
            if s.commit is not None and not s.in_tree and i not in found
        ]
        if missing:
            chosen = {}
            for i in missing:
                commit = sides[i].commit
                assert commit is not None
                name = choose(gitlog.list_dir(self.repo, commit, self.in_repo), None)
                if name is not None:
                    chosen[i] = name
            blobs = gitlog.read_blobs(
                self.repo, [f"{sides[i].commit}:{self.in_repo}/{f}" for i, f in chosen.items()]
            )
            for (i, f), b in zip(chosen.items(), blobs, strict=True):
                if b is not None:
                    found[i] = (f, b)
        for i, (file, blob) in found.items():
            side = sides[i]
            display = f"{side.name or (side.commit or '')[:12]}:{self.dir}/{file}"
            out[i] = parse(file, blob.decode("utf-8", "replace"), display)
        return out

    def _from_tree(self, version: str | None) -> Manifest | None:
        from releasectl.workspace import yamlio

        directory = self.ws / self.dir
        names = [p.name for p in directory.glob("*.yaml")] if directory.is_dir() else []
        chosen = choose(names, version)
        if chosen is None:
            return None
        display = f"{self.dir}/{chosen}"
        return parse(chosen, yamlio.read_text(directory / chosen, display), display)


def choose(names: Iterable[str], version: str | None) -> str | None:
    """The manifest of `version` if present, else the highest version among `names`."""
    manifests = {n[: -len(".yaml")]: n for n in names if n.endswith(".yaml")}
    if version is not None and version in manifests:
        return manifests[version]
    versions = [v for v in manifests if VERSION.fullmatch(v) and not v.startswith("v")]
    return manifests[max(versions, key=version_key)] if versions else None


def parse(file: str, text: str, display: str) -> Manifest:
    from releasectl.errors import Location
    from releasectl.workspace import yamlio

    doc = yamlio.loads(text, display)
    data = doc.data if isinstance(doc.data, dict) else {}
    components = data.get("components") or {}
    if not isinstance(components, dict):
        raise InputError("must be a mapping of components", location=doc.location(("components",)))
    versions: dict[str, Version] = {}
    for name, pin in components.items():
        value = pin.get("version") if isinstance(pin, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | str | float | type(None)):
            where = Location(display, doc.line_of(("components", name)), f"components.{name}")
            raise InputError("version must be a number or a semantic version", location=where)
        versions[str(name)] = str(value) if isinstance(value, float) else value
    released = data.get("date")
    date = str(released) if released is not None else None
    return Manifest(file.removesuffix(".yaml"), date, versions)


def diff_components(old: dict[str, Version], new: dict[str, Version]) -> list[Change]:
    """Components whose version differs, plus added (from None) and removed (to None) ones."""
    changes = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if name not in old or name not in new or str(a) != str(b):
            changes.append((name, a if name in old else None, b if name in new else None))
    return changes
