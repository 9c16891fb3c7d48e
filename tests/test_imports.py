"""No import cycle inside the gateway: between its modules, nor between its packages.

The graph is read from the source: every `import` a module runs when it is imported
(not those inside functions, nor those under `if TYPE_CHECKING:`, which Python never
runs). A package here is what sits directly under `paygo` (`paygo.messaging`,
`paygo.payments`, `paygo.settings`...); the root `paygo` is the application factory,
whose registrations import the rest when an app is built.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping, Set
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
SKIPPED = ("migrations", "flows")


def modules() -> dict[str, Path]:
    """Every module of the gateway by dotted name."""
    found = {}
    for path in sorted((APP / "paygo").rglob("*.py")):
        parts = path.relative_to(APP).with_suffix("").parts
        if any(part in SKIPPED for part in parts):
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def run_at_import(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements a module runs when it is imported."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            pending += node.body + node.orelse
        elif isinstance(node, ast.Try):
            pending += node.body + node.orelse + node.finalbody
            pending += [stmt for handler in node.handlers for stmt in handler.body]


def imported(name: str, path: Path, known: Set[str]) -> set[str]:
    """The gateway's modules `name` imports (a submodule also imports its packages)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in run_at_import(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, *([base] if base else [])])
        targets.add(base)
        targets.update(f"{base}.{alias.name}" for alias in node.names)
    with_parents = {
        ".".join(target.split(".")[:i])
        for target in targets
        for i in range(2, 1 + len(target.split(".")))
    }
    return {m for m in with_parents if m in known and m != name and not name.startswith(m + ".")}


def cycles(graph: Mapping[str, Set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def module_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(name, path, known.keys()) for name, path in known.items()}


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(module_graph()) == []


def test_no_package_imports_itself_through_others() -> None:
    graph: dict[str, set[str]] = {}
    edges: dict[tuple[str, str], str] = {}
    for module, targets in module_graph().items():
        for target in targets:
            source, dest = package_of(module), package_of(target)
            if source != dest and "paygo" not in (source, dest):
                graph.setdefault(source, set()).add(dest)
                edges.setdefault((source, dest), f"{module} -> {target}")
    found = cycles(graph)
    culprits = [edges[(a, b)] for c in found for a in c for b in c if (a, b) in edges]
    assert found == [], culprits


def test_the_graph_sees_imports_that_make_a_cycle(tmp_path: Path) -> None:
    # The check itself: two modules importing each other at the top are found, while
    # imports inside a function or for type checking only are not counted.
    first = tmp_path / "first.py"
    first.write_text("from paygo import second\n")
    second = tmp_path / "second.py"
    second.write_text(
        "from typing import TYPE_CHECKING\nimport paygo.first\n"
        "if TYPE_CHECKING:\n    import paygo.third\n"
        "def later() -> None:\n    import paygo.third\n"
    )
    known = {"paygo.first", "paygo.second", "paygo.third"}
    graph = {
        "paygo.first": imported("paygo.first", first, known),
        "paygo.second": imported("paygo.second", second, known),
    }
    assert graph == {"paygo.first": {"paygo.second"}, "paygo.second": {"paygo.first"}}
    assert cycles(graph) == [["paygo.first", "paygo.second"]]
