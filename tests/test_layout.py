"""The package's layering, checked from its source: which role may import which.

Read from the syntax tree (imports under ``TYPE_CHECKING`` and inside functions count too), so
a newcomer's file list and this test tell the same story.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "pytest_poolchaos"
NAME = "pytest_poolchaos"

#: The base every role stands on, the pure classification layer, and the two roles.
BASE = {"model", "outcome", "guard", "sanitize", "options", "settings", "timeouts", "journal",
        "probe", "inherited",
        "roles", "hookspecs"}
#: package -> packages/modules it must never import
FORBIDDEN = {
    "classify": {"worker", "controller", "diagnose", "report", "plugin", "cli"},
    "worker": {"controller", "diagnose", "report", "plugin", "cli"},
    "controller": {"worker", "plugin", "cli"},
    "diagnose": {"worker", "controller", "report", "plugin", "cli"},
    "report": {"worker", "controller", "diagnose", "plugin", "cli"},
    # the history store and chaos mode are libraries the roles use, never the other way round
    "history": {"worker", "controller", "diagnose", "report", "chaos", "plugin", "cli"},
    "chaos": {"controller", "report", "plugin", "cli"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Modules of the package that ``path`` imports, as dotted names."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(NAME))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(package, node.module, node.level)
            if not base.startswith(NAME):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if _exists(candidate) else base)
    return {name for name in found if name != module}


def _resolve(package: str, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - level + 1])
    return f"{base}.{module}" if module else base


def _exists(dotted: str) -> bool:
    relative = Path(*dotted.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative).is_dir()


GRAPH = {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_module_imports_itself_back():
    def visit(name: str, trail: list[str]) -> None:
        for target in sorted(GRAPH.get(name, ())):
            if target in trail:
                cycle = [*trail[trail.index(target):], target]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if target not in done:
                visit(target, [*trail, target])
        done.add(name)

    done: set[str] = set()
    for name in sorted(GRAPH):
        visit(name, [name])


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_keeps_to_its_side(layer):
    offending = {(source, target) for source, targets in GRAPH.items()
                 if _top(source) == layer for target in targets
                 if _top(target) in FORBIDDEN[layer]}
    assert not offending


def test_the_base_depends_on_no_role():
    roles = {"classify", "worker", "controller", "diagnose", "report", "plugin", "cli"}
    offending = {(source, target) for source, targets in GRAPH.items()
                 if _top(source) in BASE for target in targets
                 if _top(target) in roles}
    assert not offending
