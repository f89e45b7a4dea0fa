"""The `needs` graph of components: stable topological order and cycle reports (pure)."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from releasectl.errors import PlanError


class CycleError(PlanError):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("components form a cycle through `needs`: " + " -> ".join(cycle))


class UnknownComponentError(PlanError):
    def __init__(self, component: str, needed_by: str, known: Sequence[str]) -> None:
        self.component = component
        self.needed_by = needed_by
        super().__init__(
            f"component {needed_by!r} needs unknown component {component!r} "
            f"(known: {', '.join(sorted(known))})"
        )


def topological_order(needs: Mapping[str, Sequence[str]]) -> list[str]:
    """Dependencies before dependents; ties broken by name so the order is stable."""
    for name, deps in needs.items():
        for dep in deps:
            if dep not in needs:
                raise UnknownComponentError(dep, name, list(needs))
    indegree = {name: len(set(deps)) for name, deps in needs.items()}
    dependents: dict[str, list[str]] = {name: [] for name in needs}
    for name, deps in needs.items():
        for dep in set(deps):
            dependents[dep].append(name)
    ready = [name for name, count in indegree.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for dependent in dependents[name]:
            indegree[dependent] -= 1
            if indegree[dependent] == 0:
                heapq.heappush(ready, dependent)
    if len(order) != len(needs):
        raise CycleError(find_cycle({n: d for n, d in needs.items() if n not in set(order)}))
    return order


def find_cycle(needs: Mapping[str, Sequence[str]]) -> list[str]:
    """One cycle among `needs`, as a closed path (first member repeated at the end)."""
    colour: dict[str, int] = {}  # 1 on the stack, 2 done
    for start in sorted(needs):
        if colour.get(start):
            continue
        stack: list[tuple[str, list[str]]] = [
            (start, sorted(d for d in needs[start] if d in needs))
        ]
        path = [start]
        colour[start] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                colour[node] = 2
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop(0)
            if colour.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if not colour.get(nxt):
                colour[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(d for d in needs[nxt] if d in needs)))
    return sorted(needs)  # pragma: no cover - called only when a cycle exists


def dependents_closure(needs: Mapping[str, Sequence[str]], roots: Sequence[str]) -> set[str]:
    """Every component that (transitively) needs one of `roots`."""
    reverse: dict[str, list[str]] = {name: [] for name in needs}
    for name, deps in needs.items():
        for dep in deps:
            reverse.setdefault(dep, []).append(name)
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        for dependent in reverse.get(todo.pop(), []):
            if dependent not in seen:
                seen.add(dependent)
                todo.append(dependent)
    return seen
