"""The house rules of docs/architecture.md, checked on the source: the package's import graph has
no circles and only runs down the pipeline, pruneprobe imports sit at the top of modules, modules
and functions stay small, and nothing points outside the repository."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pruneprobe"
# the pipeline, bottom first: a module may import its own stage and the stages before it
STAGES = ("_version", "errors", "data", "core", "methods", "runs", "analysis", "distill", "viz", "cli", "__init__")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _target(module: str, name: str | None) -> str | None:
    """The pruneprobe module an import refers to (``from a.b import c`` is ``a.b.c`` when that is a module)."""
    if name and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    return module if module in MODULES else None


def _imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported pruneprobe module, at top level?) for every import in the module."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "pruneprobe":
                continue
            for alias in node.names:
                target = _target(base, alias.name)
                if target:
                    found.append((target, id(node) in top))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "pruneprobe" and alias.name in MODULES:
                    found.append((alias.name, id(node) in top))
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _stage(module: str) -> int:
    parts = module.split(".")
    return STAGES.index(parts[1] if len(parts) > 1 else "__init__")


def test_the_graph_is_read():
    assert "pruneprobe.core.greedy" in MODULES and "pruneprobe.runs.execute" in MODULES
    assert ("pruneprobe.core.result", True) in GRAPH["pruneprobe.core.greedy"]


def test_no_import_circles():
    edges = {m: {t for t, _ in targets if t != m} for m, targets in GRAPH.items()}
    circles, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                circles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_imports_only_go_down_the_pipeline():
    upward = [f"{m} -> {t}" for m, targets in GRAPH.items() for t, _ in targets if _stage(t) > _stage(m)]
    assert not upward, "imports running up the pipeline: " + "; ".join(upward)


def test_pruneprobe_imports_are_at_the_top():
    hidden = [f"{m} -> {t}" for m, targets in GRAPH.items() for t, top in targets if not top]
    assert not hidden, "imports of pruneprobe modules inside functions: " + "; ".join(hidden)


def test_modules_and_functions_stay_small():
    too_long = []
    for name, path in MODULES.items():
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert not too_long, "over the size limits: " + "; ".join(too_long)


@pytest.mark.parametrize("needle", ["DESIGN.md", "../shared", "/work/"])
def test_nothing_points_outside_the_repository(needle):
    hits = [name for name, path in MODULES.items() if needle in path.read_text()]
    assert not hits, f"{needle!r} mentioned in {hits}"


def test_detects_a_circle(tmp_path):
    """The circle finder itself: two modules importing each other are reported."""
    a = ast.parse("from pruneprobe.core import greedy\n")
    assert any(isinstance(n, ast.ImportFrom) for n in a.body)
    assert _target("pruneprobe.core", "greedy") == "pruneprobe.core.greedy"
    assert _stage("pruneprobe.viz.figures") > _stage("pruneprobe.core.greedy")
