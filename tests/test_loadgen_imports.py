"""The load engine's import graph: no cycles, and Locust (gevent) only where it belongs.

The graph is read from the source (every import statement, function-level ones included, since
a lazy import still ties two modules together), and each module is also imported on its own in
a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rightsizer

PACKAGE_DIR = Path(rightsizer.__file__).parent
OURS = ("rightsizer.loadgen", "rightsizer.engine", "rightsizer.search", "rightsizer.analysis")
LOADGEN_MODULES = sorted(
    f"rightsizer.loadgen.{path.stem}"
    for path in (PACKAGE_DIR / "loadgen").glob("*.py")
    if path.stem != "__init__"
)
# Locust monkey-patches with gevent on import: only the worker processes may import it, never
# the controlling process (CLI, pipeline threads, the Fargate task).
DRIVER = "rightsizer.loadgen.locust_driver"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere in its body."""
    package = module_name(path).rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found & known


def import_graph() -> dict[str, set[str]]:
    paths = list(PACKAGE_DIR.rglob("*.py"))
    known = {module_name(path) for path in paths}
    return {module_name(path): imported_modules(path, known) for path in paths}


def cycles_through(graph: dict[str, set[str]], prefixes: tuple[str, ...]) -> list[list[str]]:
    """Each import path that leaves one of our modules and comes back to it."""
    found = []
    for start in sorted(m for m in graph if m.startswith(prefixes)):
        stack, seen = [(start, [start])], {start}
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == start:
                    found.append([*path, start])
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return found


def test_the_graph_reader_sees_lazy_imports_and_finds_a_cycle() -> None:
    graph = import_graph()
    assert "rightsizer.loadgen.locust_driver" in graph["rightsizer.loadgen.worker"]  # lazy
    assert cycles_through({"a.x": {"a.y"}, "a.y": {"a.x"}, "a.z": set()}, ("a",)) == [
        ["a.x", "a.y", "a.x"],
        ["a.y", "a.x", "a.y"],
    ]


def test_no_import_cycle_runs_through_the_load_engine() -> None:
    assert cycles_through(import_graph(), OURS) == []


def fresh_import(module: str) -> str:
    """Import ``module`` alone in a new interpreter; the third-party roots it loaded."""
    code = (
        f"import importlib, sys; importlib.import_module({module!r}); "
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    "module", [*LOADGEN_MODULES, "rightsizer.engine", "rightsizer.search_controller"]
)
def test_each_module_imports_on_its_own_and_only_the_driver_loads_locust(module: str) -> None:
    loaded = fresh_import(module).split()
    expected = module == DRIVER
    assert ("locust" in loaded, "gevent" in loaded) == (expected, expected)
