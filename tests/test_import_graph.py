"""The package map of docs/design.md, checked on the source: no import cycle between files, and the arrows
between the packages point one way (envs and rewards know nothing of agents).

Every import statement counts, at module level or inside a function: a lazy import still ties the two files.
An import of ``a.b.c`` is an arrow to the file ``a/b/c.py`` (or ``a/b/c/__init__.py``), not to the packages
above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "textgym")


def _modules() -> dict[str, Path]:
    found = {"envs_registry": ROOT / "envs_registry.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # a relative import
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
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
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_finder_sees_a_cycle_and_a_lazy_import():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = import_graph()
    assert "agents.commands" in graph["agents.cli"]  # imported inside a function: still an arrow
    assert "textgym.rewards.scoring" in graph["textgym.rewards.factory"]  # `from textgym.rewards import scoring`


def test_no_import_cycle_between_files():
    assert import_cycles(import_graph()) == []


def test_envs_and_rewards_know_nothing_of_agents():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith(("textgym.envs", "textgym.rewards", "textgym.data", "envs_registry")):
            assert not [t for t in targets if t.startswith("agents")], name


def test_nothing_under_textgym_imports_agents():
    """The trainers build on the suite, never the other way round (the console script is agents/cli.py)."""
    graph = import_graph()
    upward = {name: sorted(t for t in targets if t.startswith("agents")) for name, targets in graph.items()
              if name.startswith("textgym") or name == "envs_registry"}
    assert {name: targets for name, targets in upward.items() if targets} == {}
