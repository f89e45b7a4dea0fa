"""`build`: read a range of history into a `Report`, split by the releases inside it.

The git calls of one changelog: `rev-parse` (where we are, shallow or not) while
`for-each-ref` lists the tags; one `cat-file --batch-check` for the revisions given; `describe`
when FROM is left to find; one `git log` of the range; `config` for the remote while the log
runs. Then, only where needed: `cat-file --batch` for release manifests (workspaces),
`rev-list --parents` when the commits are limited to a path and releases must be told apart,
`merge-base` for `A...B` or an empty range.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, NamedTuple

from releasectl.errors import InputError
from releasectl.release import gitlog
from releasectl.release.changelog import settings as config
from releasectl.release.changelog.commits import Log, Row, parse
from releasectl.release.changelog.ends import ROOT, SHALLOW_HINT, End, Resolver
from releasectl.release.changelog.graph import Graph, keep_merges
from releasectl.release.changelog.links import forge_for
from releasectl.release.changelog.manifests import (
    Change,
    Manifest,
    Manifests,
    Side,
    diff_components,
)
from releasectl.release.changelog.report import Release, Report, Section
from releasectl.release.changelog.settings import Settings
from releasectl.release.changelog.versions import is_version, label, release_tag


class _Scope(NamedTuple):
    base: Path
    """Where CHANGELOG.md goes and configuration is looked for."""
    pathspec: str | None
    note: str | None


def build(
    repo: Path,
    from_ref: str | None = None,
    to_ref: str | None = None,
    *,
    version_label: str | None = None,
    from_root: bool = False,
    symmetric: bool = False,
    path: Path | None = None,
    tag_pattern: str | None = None,
    links: bool | None = None,
    include_merges: bool | None = None,
) -> Report:
    """Read FROM..TO (default: the nearest older release tag..HEAD, or the whole history when
    there is none or `from_root`) and group its commits by release and kind.

    `version_label` names the release TO stands for before it is tagged (commit-back); when
    that release is tagged already, TO is its tag. `symmetric`: FROM...TO, accepted only where
    it means FROM..TO. `path` limits the commits to a directory (default: the workspace, or the
    directory `repo` names when it is below the top of the work tree).
    """
    repo = Path(repo)
    if not repo.is_dir():
        raise InputError(f"{repo} is not a directory")
    given = [r for r in (from_ref, to_ref or "HEAD") if r is not None]
    tags_proc = gitlog.start_tags(repo)
    try:
        info = gitlog.repository(repo, given)
    finally:
        tags_out = gitlog.finish(repo, tags_proc, check=False)
    tags = gitlog.read_tags(tags_out or b"")
    here = repo.resolve()
    top = info.toplevel
    ws = _workspace_root(here, top)
    ws_data: Any = None
    if ws is not None:
        from releasectl.workspace import yamlio

        ws_data = yamlio.load_fast(ws / config.WORKSPACE_FILE, config.WORKSPACE_FILE)
    scope = _scope(here, top, ws, path)
    settings = (
        config.for_workspace(ws, ws_data) if ws is not None else config.for_plain(scope.base, top)
    )
    pattern = tag_pattern or settings.tag_pattern or ("v*" if ws is not None else None)
    manifests = Manifests(repo, top, ws, ws_data) if ws is not None else None
    resolver = Resolver(repo, tags, pattern, manifests, shallow=info.shallow, known=info.commits)
    at: dict[str, list[str]] = {}
    for tag in tags:
        if pattern is None or fnmatchcase(tag.name, pattern):
            at.setdefault(tag.commit, []).append(tag.name)

    version_label = label(version_label) if version_label else None
    to_arg = to_ref or "HEAD"
    if to_ref is None and version_label is not None:
        tagged = resolver.tag_for(version_label)
        if tagged is not None:
            to_arg = tagged.name  # released already: its changelog ends at its tag
    ends = resolver.resolve([from_ref, to_arg] if from_ref is not None else [to_arg])
    to = ends[-1]
    assert to.commit is not None
    if from_ref is not None:
        frm = ends[0]
    elif from_root:
        frm = ROOT
    else:
        frm = _nearest(repo, resolver, tags, to.commit, pattern)
    shown = f"{frm.name or '(start)'}..{to.name}"
    if symmetric:
        _check_symmetric(repo, frm, to)
    if info.shallow:
        _check_shallow(repo, info, frm, to, shown)

    want_links = settings.links if links is None else links and settings.links
    author = settings.exclude_authors is not None
    args = gitlog.log_args(to.commit, frm.commit, pathspec=scope.pathspec, author=author)
    log = parse(gitlog.stream(repo, args, 4 if author else 3), settings, author=author)
    forge = None
    if want_links:
        url = info.remote_url() if settings.repository_url is None else None
        forge = forge_for(url, settings.forge, settings.repository_url)

    empty = not log and frm.commit is not None and frm.commit != to.commit
    if empty and frm.commit is not None and gitlog.is_ancestor(repo, to.commit, frm.commit):
        raise InputError(
            f"reversed range {shown}: {to.name} is older than {frm.name} (an ancestor of "
            f"it), so nothing is in it; did you mean {to.name}..{frm.name}?"
        )
    graph = _graph(repo, log, scope, bool(at), frm, to)
    if log.merges and not (include_merges or settings.include_merges):
        _drop_merges(log, graph)
    releases, overall = _split(log, graph, at, tags, to, frm, version_label, settings)
    components: list[Change] = []
    if manifests is not None:
        at_head = to_arg == "HEAD" and to_ref in (None, "HEAD")
        in_tree = at_head or to.source == "worktree"
        releases, components = _components(manifests, releases, frm, at, in_tree)
    if len(releases) > 1:
        # a release tag whose commits are all left out (another package's tag under --path,
        # a tag on a merge): no section of its own; the newest one always has one
        releases = [r for r in releases[:-1] if not r.empty] + releases[-1:]
        if len(releases) > 1 and releases[-1].empty:
            releases.pop()  # nothing after the newest release in the range
    releases.reverse()
    notes = [*resolver.notes, *([scope.note] if scope.note else [])]
    if frm.commit == to.commit:
        notes.append(f"{frm.name} and {to.name} are the same commit: no commits between them")
    return Report(
        from_ref=frm.name,
        to_ref=to.name or to_arg,
        from_commit=frm.commit,
        to_commit=to.commit,
        sections=overall,
        components=components,
        releases=releases,
        root=scope.base,
        forge=forge,
        notes=notes,
    )


def _workspace_root(start: Path, toplevel: Path) -> Path | None:
    for candidate in (start, *start.parents):
        if (candidate / config.WORKSPACE_FILE).is_file():
            return candidate
        if candidate == toplevel:
            break
    return None


def _scope(here: Path, top: Path, ws: Path | None, path: Path | None) -> _Scope:
    """What the changelog covers: --path, else the workspace, else the directory it runs in
    (git-cliff's rule: below the top of the work tree, only the commits that touch it)."""
    if path is not None:
        base = Path(path).resolve()
        if not base.is_dir():
            raise InputError(f"--path {path}: no such directory")
    else:
        base = ws or here
    try:
        rel = base.relative_to(top).as_posix()
    except ValueError:
        raise InputError(f"--path {path}: not inside the git work tree {top}") from None
    if rel == ".":
        return _Scope(base, None, None)
    note = None
    if path is None:
        what = "the workspace" if ws is not None else "the current directory"
        note = f"only commits that touch {rel}/ ({what}; --path chooses another directory)"
    return _Scope(base, f":(top,literal){rel}", note)


def _nearest(
    repo: Path, resolver: Resolver, tags: list[gitlog.Tag], commit: str, pattern: str | None
) -> End:
    on_commit = [t.name for t in tags if t.commit == commit]
    name = gitlog.nearest_tag(repo, commit, exclude=on_commit, match=pattern)
    if name is None:
        return ROOT
    tag = resolver.by_name.get(name)
    found = tag.commit if tag else gitlog.commits_of(repo, [name]).get(name)
    return End(name, found, name, source="describe")


def _check_symmetric(repo: Path, frm: End, to: End) -> None:
    if frm.commit is None or to.commit is None:
        return
    base = gitlog.merge_base(repo, frm.commit, to.commit)
    if base == frm.commit:
        return  # FROM is an ancestor of TO: FROM...TO is FROM..TO
    if base == to.commit:
        raise InputError(
            f"reversed range {frm.name}...{to.name}: {to.name} is older than {frm.name}; "
            f"did you mean {to.name}..{frm.name}?"
        )
    where = f"merge base {base[:12]}" if base else "no common commit"
    raise InputError(
        f"{frm.name}...{to.name} lists the commits of both sides of two histories that "
        f"diverged ({where}), which is not a changelog; use {frm.name}..{to.name} for what "
        f"{to.name} has and {frm.name} has not"
    )


def _check_shallow(repo: Path, info: gitlog.Repository, frm: End, to: End, shown: str) -> None:
    assert to.commit is not None
    for cut in sorted(info.cut_offs()):
        if cut == frm.commit or not gitlog.is_ancestor(repo, cut, to.commit):
            continue
        if frm.commit is not None and gitlog.is_ancestor(repo, cut, frm.commit):
            continue
        raise InputError(
            f"the range {shown} reaches past the start of this shallow clone (commit {cut[:12]} "
            f"has no parents here), so its changelog would be incomplete; {SHALLOW_HINT}"
        )


def _graph(repo: Path, log: Log, scope: _Scope, has_tags: bool, frm: End, to: End) -> Graph:
    """The parents to split and judge merges by: the log's own, unless the log is limited to
    a path (then its parents skip the commits elsewhere, and release tags may sit on those)."""
    if scope.pathspec is None or not (has_tags or log.merges):
        return Graph(log.shas, log.parents)
    assert to.commit is not None
    shas, parents = gitlog.parents(repo, to.commit, frm.commit)
    return Graph(shas, parents)


def _drop_merges(log: Log, graph: Graph) -> None:
    """Leave out the merges `keep_merges` does not keep."""
    same = graph.shas is log.shas
    index = {sha: i for i, sha in enumerate(log.shas)} if not same else None

    def log_index(g: int) -> int | None:
        return g if index is None else index.get(graph.shas[g])

    def conventional(g: int) -> bool:
        i = log_index(g)
        return i is not None and log.rows[i][1] is not None

    merges = [g for g in (graph.pos.get(log.shas[i]) for i in log.merges) if g is not None]
    kept = keep_merges(graph, merges, conventional, conventional)
    for i in log.merges:
        if graph.pos.get(log.shas[i]) not in kept:
            log.slots[i] = -1


def _split(
    log: Log,
    graph: Graph,
    at: dict[str, list[str]],
    tags: list[gitlog.Tag],
    to: End,
    frm: End,
    version_label: str | None,
    settings: Settings,
) -> tuple[list[Release], list[Section]]:
    """The releases of the range, oldest first, and every commit grouped."""
    date_of = {t.name: t.date for t in tags}
    starts = sorted((graph.pos[c] for c in at if c in graph.pos), reverse=True)  # oldest first
    to_at = graph.pos.get(to.commit) if to.commit is not None else None
    top = len(starts) if to_at not in starts else None
    count = len(starts) + (top is not None)
    owner = graph.owners(starts) if count > 1 else None
    width = len(settings.titles)
    buckets: list[list[list[Row]]] = [[[] for _ in range(width)] for _ in range(count)]
    overall: list[list[Row]] = [[] for _ in range(width)]
    same = graph.shas is log.shas
    pos = graph.pos
    default = count - 1
    for i, slot in enumerate(log.slots):
        if slot < 0:
            continue
        row = log.rows[i]
        overall[slot].append(row)
        if owner is None:
            buckets[default][slot].append(row)
        else:
            g = i if same else pos.get(log.shas[i])
            buckets[default if g is None else owner[g]][slot].append(row)

    def sections(groups: list[list[Row]]) -> list[Section]:
        return [(settings.titles[s], rows) for s, rows in enumerate(groups) if rows]

    releases = []
    previous: str | None = frm.link
    for r, g in enumerate(starts):
        commit = graph.shas[g]
        tag = release_tag(at[commit], to.tag if commit == to.commit else None)
        assert tag is not None
        version: str | None = label(tag)
        if commit == to.commit and to.version is not None:
            version = to.version
        releases.append(
            Release(version, tag, commit, date_of.get(tag), previous, sections(buckets[r]), [], tag)
        )
        previous = tag
    if top is not None:
        version = version_label or to.version or (label(to.tag) if to.tag else None)
        date = date_of.get(to.tag) if to.tag else to.date
        releases.append(
            Release(version, to.tag, to.commit, date, previous, sections(buckets[top]), [], to.link)
        )
    return releases, sections(overall)


def _components(
    manifests: Manifests,
    releases: list[Release],
    frm: End,
    at: dict[str, list[str]],
    in_tree: bool,
) -> tuple[list[Release], list[Change]]:
    """Each release's component changes from the one before it, and the whole range's."""

    def version_at(commit: str | None, asked: str | None) -> str | None:
        tag = release_tag(at.get(commit or "", []), asked)
        return label(tag) if tag is not None and is_version(tag) else None

    sides = [Side(frm.commit, frm.version or version_at(frm.commit, frm.tag), frm.name)]
    for n, r in enumerate(releases):
        newest = n == len(releases) - 1
        sides.append(Side(r.commit, r.version, r.tag or r.head, in_tree=newest and in_tree))
    found = manifests.read(sides)
    out = []
    for n, release in enumerate(releases):
        old, new = found[n], found[n + 1]
        date = release.date
        if new is not None and new.date and new.version == release.version:
            date = new.date  # the release manifest's own date wins over the tag's
        out.append(
            Release(
                release.version,
                release.tag,
                release.commit,
                date,
                release.previous,
                release.sections,
                diff_components(_versions(old), _versions(new)),
                release.head,
            )
        )
    return out, diff_components(_versions(found[0]), _versions(found[-1]))


def _versions(manifest: Manifest | None) -> dict[str, int | str | None]:
    return manifest.components if manifest is not None else {}
