"""The package's floors: each module imports only from its own floor or the floors below it,
connections never import what uses them, and no two modules import each other, even lazily.

Every `import` counts, including those inside functions and under TYPE_CHECKING: a lazy import
is still a dependency a reader has to follow. See docs/architecture.md."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "releasectl"

# lowest first; a module's floor is that of its top-level package (or module)
FLOORS: list[tuple[str, set[str]]] = [
    ("ground", {"errors", "secrets", "util", "models"}),
    ("observability", {"observe"}),
    ("workspace", {"workspace"}),
    ("connections", {"clients", "cedarlib"}),
    ("targets and state", {"targets", "state"}),
    ("authorization", {"authz"}),
    ("planning", {"planning"}),
    ("releases", {"release"}),
    ("engine", {"engine"}),
    ("adoption", {"adopt"}),
    ("cli", {"cli", "__main__"}),
]
# pairs on one floor that must not meet: (importer package, imported package)
APART = {("targets", "state"), ("state", "targets"), ("clients", "cedarlib")}
LONG_MODULE = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The releasectl modules `name` imports (a name imported from a package counts as its
    submodule when there is one)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("releasectl."))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            if not base.startswith("releasectl"):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in known else base)
    found.discard(name)
    found.discard("releasectl")
    return found


@cache
def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def floor_of(name: str) -> int:
    for index, (_, packages) in enumerate(FLOORS):
        if top(name) in packages:
            return index
    raise AssertionError(f"{name}: not on any floor of tests/test_layout.py (add it)")


def test_every_module_is_on_a_floor() -> None:
    for name in modules():
        if name != "releasectl":
            floor_of(name)


def test_no_module_imports_a_floor_above_it() -> None:
    wrong = [
        f"{name} ({FLOORS[floor_of(name)][0]}) imports {dep} ({FLOORS[floor_of(dep)][0]})"
        for name, deps in graph().items()
        if name != "releasectl"
        for dep in sorted(deps)
        if floor_of(dep) > floor_of(name)
    ]
    assert wrong == []


def test_connections_targets_and_state_stay_apart() -> None:
    wrong = [
        f"{name} imports {dep}"
        for name, deps in graph().items()
        for dep in sorted(deps)
        if (top(name), top(dep)) in APART
    ]
    assert wrong == []


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in edges:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_two_modules_import_each_other() -> None:
    assert cycles(graph()) == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_a_long_module_says_why(name: str) -> None:
    path = modules()[name]
    lines = path.read_text(encoding="utf-8").count("\n")
    if lines <= LONG_MODULE:
        return
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    assert "long" in doc.lower() and "because" in doc.lower(), (
        f"{path.relative_to(PACKAGE.parent)} has {lines} lines: split it, or say in its "
        "docstring why it is long (a sentence with 'long' and 'because')"
    )
