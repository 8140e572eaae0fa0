"""The package layout's rules hold (docs/design.md, "The map").

Each rule is read from the source, so a change that breaks one fails here: the engine
stays free of Django, vendor knowledge stays in ``backends/<vendor>/``, importing the
package wires and starts nothing, and no module hides an import cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "django_dataflow"
MAX_LINES = 450
# Imports inside functions that are allowed: ready() imports the wiring it calls, so
# that importing the app module imports nothing else.
LOCAL_IMPORTS_ALLOWED = {"apps.py"}


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".")
        anchor = anchor if is_package else anchor[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def top_level_imports(module: str, path: Path) -> set[str]:
    """Modules of the package imported when ``module`` is imported (not under
    TYPE_CHECKING, not inside functions)."""
    tree = ast.parse(path.read_text())
    known = modules()
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and _is_type_checking(node):
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for name in _imported_names(node, module, path.name == "__init__.py"):
                    if name in known:
                        found.add(name)
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    # Importing a.b.c imports a.b first (unless a.b is a package this module is in: it
    # is being imported already, which is how a package's own modules import siblings).
    for name in list(found):
        parts = name.split(".")
        for i in range(2, len(parts)):
            parent = ".".join(parts[:i])
            if parent in known and not module.startswith(parent + "."):
                found.add(parent)
    found.discard(module)
    return found


def all_imports(path: Path) -> list[str]:
    """Every module name an import statement of ``path`` names, anywhere in it."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_engine_imports_nothing_from_django_or_the_rest_of_the_package():
    for name, path in modules().items():
        if not name.startswith("django_dataflow.pool"):
            continue
        for imported in all_imports(path):
            assert not imported.startswith("django."), (name, imported)
            if imported.startswith("django_dataflow"):
                assert imported.startswith("django_dataflow.pool"), (name, imported)


def test_the_backends_never_import_monitoring():
    for name, path in modules().items():
        if name.startswith("django_dataflow.backends"):
            for imported in all_imports(path):
                assert not imported.startswith("django_dataflow.monitoring"), (name, imported)


def test_only_the_vendor_backends_test_the_vendor():
    offenders = []
    for name, path in modules().items():
        if name.startswith("django_dataflow.backends"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and any(
                isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops
            ):
                sides = [node.left, *node.comparators]
                if any(
                    (isinstance(side, ast.Attribute) and side.attr in ("vendor", "_vendor"))
                    or (isinstance(side, ast.Name) and side.id == "vendor")
                    for side in sides
                ):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_no_module_is_longer_than_the_limit():
    long = {
        str(path.relative_to(PACKAGE)): count
        for path in modules().values()
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_module_says_why_it_exists():
    missing = [
        str(path.relative_to(PACKAGE))
        for path in modules().values()
        if path.read_text().strip() and ast.get_docstring(ast.parse(path.read_text())) is None
    ]
    assert missing == []


def test_the_package_has_no_import_cycles():
    graph = {name: top_level_imports(name, path) for name, path in modules().items()}
    cycles = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for imported in sorted(graph.get(name, ())):
            if state.get(imported) == 1:
                cycles.append(" -> ".join([*stack[stack.index(imported) :], imported]))
            elif imported not in state:
                visit(imported, [*stack, imported])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_no_function_imports_a_module_of_the_package():
    found = []
    for path in modules().values():
        if path.name in LOCAL_IMPORTS_ALLOWED:
            continue
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                    imported.startswith("django_dataflow") for imported in all_imports_of(node)
                ):
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert sorted(set(found)) == []


def all_imports_of(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [node.module or ""]


IMPORT_PROBE = """
import atexit, sys, threading
import environ  # django-environ registers an exit handler of its own
before = atexit._ncallbacks()
import django_dataflow
from django_dataflow import DataFlowConfig
from django_dataflow.config import DataFlowConfig as Same
from django_dataflow.apps import DjangoDataflowAppConfig
assert DataFlowConfig is Same
loaded = sorted(
    m for m in sys.modules
    if m.startswith(("django_dataflow.pool", "django_dataflow.monitoring", "django.db"))
    # The vendors' entry rules load with DataFlowConfig; a driver or a wrapper must not.
    or (m.startswith("django_dataflow.backends.") and m.count(".") > 2
        and not m.endswith(".entry"))
    or m in ("psycopg", "MySQLdb", "sqlite3")
)
print(loaded, threading.active_count(), atexit._ncallbacks() - before)
"""


def test_importing_the_package_imports_no_engine_and_starts_nothing():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["[]", "1", "0"], result.stdout + result.stderr
