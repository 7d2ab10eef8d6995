"""The package's shape, as ARCHITECTURE.md describes it: layers that import only downwards, no import
cycles, modules and functions small enough to read. Read from the source with ``ast`` (every import,
also inside functions; only ``if TYPE_CHECKING:`` blocks are left out)."""
from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "apflow_nb"
# each layer may import only the layers listed after it
LAYERS = ["cli", "notebook", "analysis", "distributed", "executors", "core"]
FOREIGN_IN_CORE = ("IPython", "ipywidgets", "pandas", "anywidget", "matplotlib", "numpy")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: pathlib.Path) -> set[str]:
    """Every module name ``path`` imports, outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a.b import c`: the module a.b.c if there is one, else a.b (resolved by the caller)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    return {m: {r for t in imports(p) if t.startswith("apflow_nb") and (r := resolve(t)) and r != m}
            for m, p in mods.items()}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_layers_import_only_downwards():
    wrong = []
    for module, targets in graph().items():
        layer = layer_of(module)
        if layer is None:
            continue
        allowed = set(LAYERS[LAYERS.index(layer):])
        wrong += [f"{module} -> {t}" for t in targets if layer_of(t) not in allowed and layer_of(t) is not None]
    assert wrong == []


def test_the_core_imports_no_notebook_or_dataframe_library():
    wrong = [f"{m} imports {name}" for m, path in modules().items() if layer_of(m) == "core"
             for name in imports(path) if name.split(".")[0] in FOREIGN_IN_CORE]
    assert imports(PACKAGE / "notebook" / "magics.py") & {"IPython.core.magic.Magics"}  # the reader sees imports
    assert wrong == []


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in g:
        if start in index:
            continue
        work = [(start, iter(sorted(g[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(g[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


@pytest.mark.parametrize("layer", ["core", None])
def test_no_import_cycles(layer):
    g = graph()
    if layer is not None:
        g = {m: {t for t in ts if layer_of(t) == layer} for m, ts in g.items() if layer_of(m) == layer}
    assert _cycles(g) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_modules_and_functions_are_small():
    long = []
    for module, path in modules().items():
        source = path.read_text()
        if source.count("\n") > MAX_MODULE_LINES:
            long.append(f"{module}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert long == []
