"""The shape of `crm/` holds: imports point one way, modules stay one concept each.

These read the source with `ast`, so they hold on any machine and any day. They guard what
issue 18 set up: no import cycle (counting imports inside functions, so a cycle cannot hide
behind a lazy import), no Streamlit below the UI, and no module grown past one concept's size.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "crm"
MAX_LINES = 800
# Imports inside functions are allowed only where they buy start-up time: each `crm`
# command loads just the services it runs, and the server starts its workers lazily.
LAZY_IMPORTS_ALLOWED = ("crm.cli", "crm.server")
# The ASGI app mounts the Streamlit app; nothing else in crm/ may import Streamlit.
STREAMLIT_ALLOWED = {"crm.server"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.relative_to(PACKAGE).parts
    }


def _imported_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.module is None:
        return []
    return [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """All imported module names, and those imported inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    everything: set[str] = set()
    inside_functions: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    inside_functions.update(_imported_names(inner))
        if isinstance(node, ast.Import | ast.ImportFrom):
            everything.update(_imported_names(node))
    return everything, inside_functions


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    graph = {}
    for name, path in sources.items():
        imported, _ = _imports(path)
        graph[name] = {other for other in imported if other in sources and other != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_crm_has_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def test_services_import_at_module_top() -> None:
    lazy = {
        name: sorted(other for other in _imports(path)[1] if other.startswith("crm"))
        for name, path in _sources().items()
        if not any(
            name == allowed or name.startswith(f"{allowed}.") for allowed in LAZY_IMPORTS_ALLOWED
        )
    }
    assert {name: others for name, others in lazy.items() if others} == {}


def test_only_the_server_imports_streamlit() -> None:
    users = {
        name
        for name, path in _sources().items()
        if any(other.split(".")[0] == "streamlit" for other in _imports(path)[0])
    }
    assert users <= STREAMLIT_ALLOWED


def test_modules_stay_one_concept_in_size() -> None:
    sizes = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in _sources().items()
    }
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}
