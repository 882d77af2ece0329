"""The engine's own layout (DESIGN.md section 9, STYLE.md "Rooms"): no import cycle among its
modules, and no import of a higher room's services (they register hooks instead)."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "apps" / "executions" / "engine"
HIGHER_ROOMS = ("apps.worklist", "apps.connectors", "apps.metrics", "apps.comments", "apps.triggers", "apps.templates", "apps.versions", "apps.transfer")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ENGINE.parents[2]).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> list[str]:
    if node.level == 0:
        return [node.module or ""]
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    target = ".".join(base + ([node.module] if node.module else []))
    return [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]


def _imports(path: Path, *, top_level_only: bool) -> list[str]:
    tree = ast.parse(path.read_text())
    module = _module_name(path)
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: list[str] = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            found += _absolute(module, node, path.name == "__init__.py")
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def _engine_modules() -> dict[str, Path]:
    return {_module_name(path): path for path in ENGINE.rglob("*.py")}


def test_engine_modules_import_each_other_without_a_cycle():
    modules = _engine_modules()
    graph = {
        name: {target for target in _imports(path, top_level_only=True) if target in modules and target != name}
        for name, path in modules.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for target in sorted(graph[name]):
            assert state.get(target) != 1, "import cycle: " + " -> ".join(stack[stack.index(target):] + [target])
            if target not in state:
                visit(target)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert "apps.executions.engine.nodes" in graph and graph["apps.executions.engine.runtime"] >= {"apps.executions.engine.nodes"}


def test_the_engine_imports_no_higher_rooms_services():
    offenders = {
        name: sorted(target for target in _imports(path, top_level_only=False) if target.startswith(HIGHER_ROOMS))
        for name, path in _engine_modules().items()
    }
    assert {name: targets for name, targets in offenders.items() if targets} == {}


def test_every_node_type_of_the_definition_has_a_module():
    from apps.executions.engine.nodes import NODE_TYPES
    from apps.workflows.definition.schema import NODE_TYPES as DEFINED

    assert set(DEFINED) - {"subflow"} <= set(NODE_TYPES)
