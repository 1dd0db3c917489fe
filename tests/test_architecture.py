"""The shape of the core: no import cycles inside rdmbench and the built-in plugins, and no module outside a
task's package branches on a task's name (a task is one package behind rdmbench.tasks.Task)."""

from __future__ import annotations

import ast
from pathlib import Path

from rdmbench.tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent / "rdmbench"
#: import name -> its folder: the built-in plugins install as rdmbench_plugins (pyproject.toml's package-dir)
PACKAGES = {"rdmbench": ROOT, "rdmbench_plugins": ROOT.parent / "plugins"}


def _module(package: str, path: Path) -> str:
    parts = (package, *path.relative_to(PACKAGES[package]).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(name, p): p for name, folder in PACKAGES.items() for p in folder.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """rdmbench modules ``path`` imports, at module level or inside functions, not under TYPE_CHECKING."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for child in node.body for n in ast.walk(child)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(path, node)
            found |= {f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names}
    return {m for m in found if m in MODULES}


def _absolute(path: Path, node: ast.ImportFrom) -> str:
    """The module a ``from … import`` names, a relative one resolved against ``path``'s package."""
    if not node.level:
        return node.module or ""
    name = next(m for m, p in MODULES.items() if p == path).split(".")
    base = name if path.name == "__init__.py" else name[:-1]
    return ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports) as a path, or None."""
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> list[str] | None:
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return trail[trail.index(n):] + [n]
            if n not in state and (found := visit(n, trail + [n])):
                return found
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m, [m])):
            return found
    return None


def test_no_import_cycles():
    cycle = find_cycle({m: _imports(p) - {m} for m, p in MODULES.items()})
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_check_sees_imports_and_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    # lazy imports inside functions count (the old ann <-> pipeline cycle was one)
    assert "rdmbench.tasks" in _imports(MODULES["rdmbench.pipeline"])
    assert "rdmbench.cache" in _imports(MODULES["rdmbench.stages"])


def test_only_task_packages_name_tasks():
    names = set(TASKS)
    offenders = []
    for m, path in MODULES.items():
        if m.startswith("rdmbench.tasks"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                offenders.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: {node.value!r}")
    assert not offenders, "branch through rdmbench.tasks.get_task instead:\n" + "\n".join(offenders)
