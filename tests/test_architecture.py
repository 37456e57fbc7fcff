"""The package reads top-down in the order of the method: no module imports a package
above its own (docs/architecture.md), and langgraph's private modules are touched in
one place only."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "optimas_lg"
LAYERS = [  # lowest first; a module may import its own layer and the ones below
    {"errors", "home", "settings", "data", "pricing"},
    {"llm"},
    {"graph"},
    {"store"},
    {"execution"},
    {"lrf"},
    {"proposers"},
    {"loop"},
    {"api", "studio", "publishing"},
    {"cli"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
LANGGRAPH_INTERNALS_ONLY_IN = {"graph/system.py"}


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def _part(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def test_every_module_has_a_layer():
    parts = {_part(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert parts <= set(RANK), f"modules without a layer: {sorted(parts - set(RANK))}"


def test_no_module_imports_upward():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py" and path.parent == PACKAGE:
            continue  # the public API gathers from every layer
        mine = RANK[_part(path)]
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] == "optimas_lg" and len(parts) > 1 and RANK.get(parts[1], -1) > mine:
                upward.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not upward, "\n".join(upward)


def test_langgraph_internals_stay_in_one_module():
    users = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
             if any(m.startswith(("langgraph._", "langgraph.pregel._")) for m in _imports(p))}
    assert users <= LANGGRAPH_INTERNALS_ONLY_IN, users
