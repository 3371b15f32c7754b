"""No import cycle among the modules of bot/ and actions/: every import counts, at module level
and inside functions (a function-level import hides a cycle from Python, not from the design)."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "actions")


def project_modules(root: Path = ROOT) -> Dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, modules: Dict[str, Path]) -> Set[str]:
    """The project modules ``name`` imports anywhere in its code (``from a import b`` counts as
    ``a.b`` when that is a module, else as ``a``; relative imports resolved)."""
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                package = package[:len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in modules else base)
    return {module for module in found if module in modules and module != name}


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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
    return sorted(found)


def import_graph(root: Path = ROOT) -> Dict[str, Set[str]]:
    modules = project_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_no_import_cycle_among_the_projects_modules():
    graph = import_graph()
    assert len(graph) > 50 and graph["bot.staff.explain"], "the graph must hold the project's modules and their imports"
    assert cycles(graph) == []


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    package = tmp_path / "bot"
    (package / "staff").mkdir(parents=True)
    (tmp_path / "actions").mkdir()
    (package / "__init__.py").write_text("")
    (package / "staff" / "__init__.py").write_text("")
    (package / "web.py").write_text("def page():\n    from bot.staff.dashboard import render\n    return render()\n")
    (package / "staff" / "dashboard.py").write_text("from ..web import page\n\ndef render():\n    return ''\n")
    (package / "alone.py").write_text("import bot.web\n")
    assert cycles(import_graph(tmp_path)) == [["bot.staff.dashboard", "bot.web"]]
