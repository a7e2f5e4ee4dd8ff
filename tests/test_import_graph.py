"""No import cycle among the modules of ``src/almaqa2`` (issue 15): the graph is built from
the sources (every import, at module level or inside a function, but those only for type
checking) and any strongly connected set of more than one module fails the test."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parent.parent / "src"


def _module_of(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path, modules: set[str]) -> set[str]:
    name = _module_of(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.level and node.module else node.module or base
            submodules = {f"{target}.{a.name}" for a in node.names} & modules
            found.update(submodules)
            if len(submodules) < len(node.names):  # a name defined in the module itself
                found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in modules and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_import_cycle_among_the_modules() -> None:
    """The modules compiled from C (``from almaqa2 import manyfiles``) are modules too,
    which import none of ours: not names of the package's ``__init__``."""
    paths = sorted(SRC.joinpath("almaqa2").rglob("*.py"))
    compiled = {_module_of(p) for p in SRC.joinpath("almaqa2").rglob("*.c")}
    modules = {_module_of(p) for p in paths} | compiled
    graph = {_module_of(p): _imports(p, modules) for p in paths} | {m: set() for m in compiled}
    assert len(graph) > 40 and sum(len(v) for v in graph.values()) > 80  # the graph is real
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_runtime_package_uses_no_test_fixture() -> None:
    """The example builders live in almaqa2.testing; only the ``python -m almaqa2.example``
    entry point reaches them."""
    paths = sorted(SRC.joinpath("almaqa2").rglob("*.py"))
    modules = {_module_of(p) for p in paths}
    users = {
        name
        for p in paths
        if not (name := _module_of(p)).startswith("almaqa2.testing")
        and any(m.startswith("almaqa2.testing") for m in _imports(p, modules))
    }
    assert users == {"almaqa2.example"}
