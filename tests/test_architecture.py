"""The layout holds: data flows one way through the layers, no module imports another in a circle, files stay small.

    core -> theory, analysis, data, models -> train -> experiments -> report, explore -> cli

A module imports only from its own layer or from layers to its left; the base modules (``losslab`` itself,
``losslab.plugins``, ``losslab.registry``, ``losslab.errors``, ``losslab.i18n`` and ``losslab.params``) may be
imported by any layer and import only each other. Every import counts, at the top of a module or inside a function: an
import hidden in a function is still a dependency, and hiding one is how a cycle goes unnoticed.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "losslab"

BASE = ("losslab", "losslab.plugins", "losslab.registry", "losslab.errors", "losslab.i18n", "losslab.params")
#: Position of each layer in the diagram: a module may import from its own layer and from lower positions.
LAYERS = {
    "core": 0,
    "theory": 1,
    "analysis": 1,
    "data": 1,
    "models": 1,
    "train": 2,
    "experiments": 3,
    "report": 4,
    "explore": 4,
    "cli": 5,
}
#: Top-level modules of the command-line layer.
CLI_MODULES = ("losslab.cli", "losslab.demo", "losslab.commands", "losslab.compare", "losslab.exits")
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``import from`` reads from (relative imports resolved against ``importer``)."""
    if not node.level:
        return node.module or ""
    package = importer if MODULES[importer].name == "__init__.py" else importer.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports_of(name: str) -> dict[str, int]:
    """The losslab modules ``name`` imports anywhere in its file (name -> first line)."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(name, node)
            # "from pkg import sub" imports the module pkg.sub when there is one, else names from pkg.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for target in targets:
            if target == "losslab" or target.startswith("losslab."):
                while target not in MODULES:  # "import losslab.x.y" of a name, not a module: its module
                    target = target.rpartition(".")[0]
                found.setdefault(target, node.lineno)
    found.pop(name, None)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def layer_of(name: str) -> str:
    if name in BASE:
        return "base"
    if name in CLI_MODULES:
        return "cli"
    parts = name.split(".")
    if len(parts) < 2 or parts[1] not in LAYERS:
        raise AssertionError(f"{name} belongs to no layer; add it to LAYERS, BASE or CLI_MODULES in this test")
    return parts[1]


def allowed(importer: str, imported: str) -> bool:
    source, target = layer_of(importer), layer_of(imported)
    if target == "base":
        return True
    if source == "base":
        return False
    return source == target or LAYERS[target] < LAYERS[source]


def test_every_module_belongs_to_a_layer():
    for name in MODULES:
        layer_of(name)


def test_no_module_imports_from_a_layer_to_its_right():
    wrong = [
        f"{MODULES[importer].relative_to(SRC)}:{line} imports {imported} "
        f"({layer_of(importer)} may not import {layer_of(imported)})"
        for importer, imported_modules in GRAPH.items()
        for imported, line in sorted(imported_modules.items())
        if not allowed(importer, imported)
    ]
    assert wrong == [], "\n".join(wrong)


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (the import cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycles():
    assert strongly_connected(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_models_and_data_never_reach_into_the_trainer():
    for name, imported in GRAPH.items():
        if layer_of(name) in ("models", "data"):
            assert not [m for m in imported if layer_of(m) == "train"], name


def test_models_and_data_import_losslab_at_the_top_only():
    """No losslab import inside a function in models/ or data/: a lazy import is how their cycle was hidden."""
    lazy = []
    for name, path in MODULES.items():
        if layer_of(name) not in ("models", "data"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (
                        inner.level or (inner.module or "").startswith("losslab")
                    ):
                        lazy.append(f"{path.relative_to(SRC)}:{inner.lineno}")
                    elif isinstance(inner, ast.Import) and any(a.name.startswith("losslab") for a in inner.names):
                        lazy.append(f"{path.relative_to(SRC)}:{inner.lineno}")
    assert lazy == []


def line_count(name: str) -> int:
    return len(MODULES[name].read_text(encoding="utf-8").splitlines())


def test_no_module_is_over_600_lines():
    over = {name: line_count(name) for name in MODULES if line_count(name) > MAX_LINES}
    assert over == {}
