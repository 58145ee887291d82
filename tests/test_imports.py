"""The packages' import graphs, read from their source (ast): no circles, and the cheap
entry point stays cheap.

A late import (inside a function) counts like any other: it only hides a circle. Imports under
`if TYPE_CHECKING:` do not run, and do not count."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under `if TYPE_CHECKING:`."""
    nodes: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        nodes.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return nodes


def import_graph(package: str) -> dict[str, set[str]]:
    """module -> the modules of `package` it imports."""
    folder = ROOT / package
    modules = {
        ".".join((package, *path.relative_to(folder).with_suffix("").parts)).removesuffix(
            ".__init__"
        ): path
        for path in folder.rglob("*.py")
    }
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
                targets += [f"{node.module}.{alias.name}" for alias in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of `graph`, each as the modules on it."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


@pytest.mark.parametrize("package", ["skyprep_source", "skyprep_sandbox"])
def test_package_has_no_import_circles(package: str) -> None:
    assert circles(import_graph(package)) == []


def test_a_circle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c", "a"]]


def test_the_source_never_imports_the_sandbox_and_back() -> None:
    for package, other in (
        ("skyprep_source", "skyprep_sandbox"),
        ("skyprep_sandbox", "skyprep_source"),
    ):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module:
                    assert not node.module.startswith(other), path
                if isinstance(node, ast.Import):
                    assert not any(a.name.startswith(other) for a in node.names), path


def test_the_cli_imports_neither_dlt_nor_pyarrow() -> None:
    code = (
        "import skyprep_source.cli, sys; "
        "assert 'dlt' not in sys.modules and 'pyarrow' not in sys.modules, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('dlt', 'pyarrow'))[:5]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# docs/internals.md §0: each module's layer; a module imports from its own layer or below
LAYERS: dict[str, int] = {
    **dict.fromkeys(
        ("errors", "exit_codes", "schemas", "settings", "scopes", "row_hash", "pii"), 0
    ),
    **dict.fromkeys(("read_ahead", "run_lock", "resume", ""), 0),
    **dict.fromkeys(("catalogue", "routes_doc"), 1),
    **dict.fromkeys(("client", "pager"), 2),
    **dict.fromkeys(("normalize", "arrow_pages", "reports", "retirement", "arrow_items"), 3),
    **dict.fromkeys(("core_resources", "account_resources", "async_reports"), 4),
    "source": 5,
    **dict.fromkeys(("plan", "job", "changes", "models", "duckdb_destination", "report"), 6),
    **dict.fromkeys(("cli", "dbt_package"), 7),
}


def _short(module: str) -> str:
    """The module's name in LAYERS: a sub-package's modules share its layer."""
    return module.removeprefix("skyprep_source").removeprefix(".").split(".")[0]


def test_every_source_module_imports_only_its_layer_or_below() -> None:
    graph = import_graph("skyprep_source")
    assert {_short(m) for m in graph} == set(LAYERS), "a module without a layer"
    upward = [
        f"{_short(module)} ({LAYERS[_short(module)]}) -> {_short(target)} "
        f"({LAYERS[_short(target)]})"
        for module, targets in graph.items()
        for target in targets
        if LAYERS[_short(target)] > LAYERS[_short(module)]
    ]
    assert upward == []


@pytest.mark.parametrize("module", ["client", "catalogue", "schemas", "errors", "exit_codes"])
def test_http_and_catalogue_never_import_dlt(module: str) -> None:
    tree = ast.parse((ROOT / "skyprep_source" / f"{module}.py").read_text(encoding="utf-8"))
    for node in _runtime_nodes(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        assert not any(name.split(".")[0] == "dlt" for name in names), module
