"""The package reads one way: foundation modules below the stages, each stage
importing only earlier stages, no cycles, small units, imports at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pipeline"
#: The stages in pipeline order (then the sample generator and the CLI above them all).
STAGES = ("ingest", "qa", "khoanh", "change", "aggregate", "forms", "maps", "package", "regroup", "inventory",
          "sample", "cli", "__main__")
FOUNDATION = {"config", "crs", "reference", "io", "parallel", "errors", "schemas", "vntext", "report", "boundaries",
              "topology", "units", "regime", "symbology", "drawing", "workdir", "rounding", "messages", "xlsx",
              "measure", "records", "console", "runlock", "paths", "manifest", "cluster_checks", "build", "__init__"}
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
MAX_INNER_IMPORTS = 5


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _top(path: Path) -> str:
    """The first component under ``pipeline/``: a foundation module or a stage."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported(path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The top components of ``pipeline`` a statement imports (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [a.name.split(".")[1] for a in node.names if a.name.startswith("pipeline.")]
    if node.level == 0:
        parts = (node.module or "").split(".")
        return [parts[1]] if parts[0] == "pipeline" and len(parts) > 1 else []
    here = list(path.relative_to(PACKAGE).parts[:-1])
    base = here[: len(here) - (node.level - 1)]
    target = base + (node.module.split(".") if node.module else [])
    if target:
        return [target[0]]
    return [alias.name for alias in node.names]  # from . import x (at the package root)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        deps = graph.setdefault(_top(path), set())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                deps.update(d for d in _imported(path, node) if d != _top(path))
    return graph


def test_every_top_level_module_is_foundation_or_a_stage():
    unknown = {_top(p) for p in _modules()} - FOUNDATION - set(STAGES)
    assert not unknown, f"place {unknown} in FOUNDATION or STAGES"


def test_foundation_never_imports_a_stage():
    graph = _graph()
    wrong = {m: graph[m] & set(STAGES) for m in FOUNDATION if m in graph and graph[m] & set(STAGES)}
    assert not wrong, wrong


def test_a_stage_imports_only_earlier_stages():
    graph = _graph()
    order = {s: i for i, s in enumerate(STAGES)}
    wrong = {s: {d for d in graph.get(s, ()) if d in order and order[d] > order[s]} for s in STAGES}
    assert not {s: d for s, d in wrong.items() if d}, wrong


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                pytest.fail(f"import cycle: {' → '.join([*trail, node, dep])}")
            if dep not in state:
                visit(dep, [*trail, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_small_units():
    long_modules = {str(p.relative_to(PACKAGE)): n for p in _modules()
                    if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    long_functions = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions[f"{path.relative_to(PACKAGE)}:{node.name}"] = length
    assert not long_modules and not long_functions, (long_modules, long_functions)


def test_imports_stand_at_the_top():
    """At most a handful of imports inside functions, each saying why on its line."""
    inner = []
    for path in _modules():
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                inner += [(path, sub.lineno) for sub in ast.walk(node) if isinstance(sub, ast.Import | ast.ImportFrom)]
    unexplained = [f"{p.relative_to(PACKAGE)}:{n}" for p, n in inner
                   if "#" not in p.read_text(encoding="utf-8").splitlines()[n - 1]]
    assert len(inner) <= MAX_INNER_IMPORTS and not unexplained, (len(inner), unexplained)
