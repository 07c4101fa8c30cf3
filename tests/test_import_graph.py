"""The house's rules, read from the source: no import circles, imports run down the layers, no module over 500 lines.

Every ``import`` counts, including the ones inside functions (a lazy import hides a circle, it does not remove it).
An edge goes to the module a name is imported from (``from a.b import c`` -> ``a.b.c`` when that is a module,
else ``a.b``); the implicit import of a package's ``__init__`` on the way to its submodules is not an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rl", "envs", "dynamics")
MAX_LINES = 500

# package prefix -> prefixes it must never import (the arrows of README "Layout")
FORBIDDEN = {
    "envs": ("rl", "dynamics"),
    "dynamics": ("rl",),
    "envs.common": ("envs.adversarial", "envs.coding"),
    "rl.qarl": ("rl.robustness",),
    "rl.qarl.baselines": ("rl.qarl.trainer", "rl.qarl.train", "rl.qarl.modes", "rl.qarl.setup"),
}


def module_files() -> dict[str, Path]:
    """Module name -> file for every module of the installed packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imports_of(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Project modules that ``path`` (module ``name``) imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
        found |= {t for t in targets if t in modules and t != name}
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    modules = module_files()
    return {name: imports_of(path, name, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_lazy_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    found = cycles(import_graph())
    assert not found, f"import circles: {found}"


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("source", sorted(FORBIDDEN))
def test_imports_run_down_the_layers(source: str) -> None:
    bad = [
        f"{m} -> {t}"
        for m, targets in import_graph().items()
        if _within(m, source)
        for t in sorted(targets)
        if any(_within(t, f) for f in FORBIDDEN[source]) and not _within(t, source)
    ]
    assert not bad, f"imports against the layers ({source} must not import {FORBIDDEN[source]}): {bad}"


def test_no_module_over_the_limit() -> None:
    long = {str(p.relative_to(ROOT)): n for p in module_files().values() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
