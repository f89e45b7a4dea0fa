"""The commit graph of a range: which release each commit belongs to, what a merge brought in.

Both questions are answered from the parents `git log` already printed, so splitting a range
by its release tags costs no git call beyond the one `for-each-ref` that lists the tags:

- a commit belongs to the *oldest* release whose tag reaches it (the release that first
  shipped it). Tags are taken oldest first (by their place in `git log`'s date order) and each
  claims, by a walk over parents, the commits no older tag has claimed; a walk stops at a
  claimed commit, since everything below it is claimed too. Each commit is visited once. Unlike
  splitting the log's order at each tag (which git-cliff does), a branch that forked before a
  release and merged after it lands in the later release, where it was shipped.
- the commits a merge brought in are those reachable from its other parents and not from its
  first parent: git's own "paint both sides" walk, in date order, stopped as soon as no
  commit of the branch is left to look at.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence


class Graph:
    """Commits (newest first, as git log lists them) and their parents, within one range."""

    def __init__(self, shas: Sequence[str], parents: Sequence[str]) -> None:
        self.shas = shas
        self.parents = parents
        self.pos = {sha: i for i, sha in enumerate(shas)}

    def __len__(self) -> int:
        return len(self.shas)

    def owners(self, starts: Sequence[int]) -> list[int]:
        """For each commit, the index in `starts` (release commits, oldest first) of the release
        that contains it first; ``len(starts)`` for the commits no release contains."""
        none = len(starts)
        owner = [none] * len(self.shas)
        pos, parents = self.pos, self.parents
        for release, first in enumerate(starts):
            if owner[first] != none:
                continue
            owner[first] = release
            stack = [first]
            while stack:
                for parent in parents[stack.pop()].split():
                    at = pos.get(parent)
                    if at is not None and owner[at] == none:
                        owner[at] = release
                        stack.append(at)
        return owner

    def brought_in(self, merge: int) -> Iterator[int]:
        """The commits merge `merge` brought in (reachable from its other parents, not from its
        first one), newest first; lazily, so a caller can stop at the first it cares about."""
        pos, parents = self.pos, self.parents
        flags: dict[int, int] = {}
        queued: set[int] = set()
        heap: list[int] = []
        only_branch = 0  # queued commits reached from the branch side only

        for n, parent in enumerate(parents[merge].split()):
            at = pos.get(parent)
            if at is None:
                continue
            bit = 1 if n == 0 else 2
            if at in flags:
                if flags[at] == 2 and bit == 1:
                    only_branch -= 1
                flags[at] |= bit
                continue
            flags[at] = bit
            queued.add(at)
            heapq.heappush(heap, at)
            only_branch += bit == 2
        while heap and only_branch:
            at = heapq.heappop(heap)
            queued.discard(at)
            side = flags[at]
            if side == 2:
                only_branch -= 1
                yield at
            for parent in parents[at].split():
                up = pos.get(parent)
                if up is None:
                    continue
                old = flags.get(up)
                if old is None:
                    flags[up] = side
                    queued.add(up)
                    heapq.heappush(heap, up)
                    only_branch += side == 2
                elif old | side != old:
                    if up in queued and old == 2:
                        only_branch -= 1
                    flags[up] = old | side


def keep_merges(
    graph: Graph,
    merges: Sequence[int],
    conventional: Callable[[int], bool],
    is_conventional_merge: Callable[[int], bool],
) -> set[int]:
    """The merges (graph indexes) that stay in a changelog by default: a merge whose own subject
    is conventional while none of the commits it brought in is (a squash-like merge whose
    branch says nothing). Every other merge is left out; its branch's commits speak for it."""
    kept = set()
    for merge in merges:
        if not is_conventional_merge(merge):
            continue
        if not any(conventional(c) for c in graph.brought_in(merge)):
            kept.add(merge)
    return kept
