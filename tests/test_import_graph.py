"""The package's import arrows point one way (STYLE.md: ops -> model -> data -> train -> zoo; cli on top).

The graph is read from the source with `ast`, not by importing. The rule is on module-level imports:
an import inside a function runs when it is called (lazy) and cannot meet a half-initialised module.
``if TYPE_CHECKING:`` blocks count as module level: they state a dependency all the same. Inside
``zoo/`` lazy imports keep the layering too (source at the bottom, member and compat on it, the Kipoi
wrapper model on top), but for the upward calls listed in `ZOO_LAZY_UPWARD`.
"""
from __future__ import annotations

import ast
from pathlib import Path

import kipoi_seq2exp

PACKAGE_DIR = Path(kipoi_seq2exp.__file__).parent
PACKAGE = PACKAGE_DIR.name
#: The command-line layers: their cycles are broken by a change of their own, so they are left out here.
CLI_MODULES = {f"{PACKAGE}.cli", f"{PACKAGE}.train.cli"}
#: Lazy imports inside zoo/ that point up a layer, and why. `register_source` run in a process that
#: already imported kipoi applies compat's unknown-member shim to the live kipoi configuration.
ZOO_LAZY_UPWARD = {(f"{PACKAGE}.zoo.source", f"{PACKAGE}.zoo.compat")}


def module_name(path: Path) -> str:
    """Dotted name of a source file of the package (``zoo/__init__.py`` -> ``kipoi_seq2exp.zoo``)."""
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_statements(tree: ast.Module, lazy: bool) -> list[ast.Import | ast.ImportFrom]:
    """Import statements outside any function (inside ``if``/``try`` blocks and classes included),
    and with ``lazy`` those inside functions too."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif lazy or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            pending.extend(ast.iter_child_nodes(node))
    return found


def imported_modules(node: ast.Import | ast.ImportFrom, module: str, is_package: bool,
                     modules: set[str]) -> set[str]:
    """Package modules that ``node`` (in ``module``) loads: the module named, or for
    ``from X import y`` the submodule ``X.y`` when there is one, else ``X``."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names} & modules
    base_parts = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base_parts = base_parts[: len(base_parts) - (node.level - 1)]
        base = ".".join(base_parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    targets = {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names}
    return targets & modules


def import_graph(lazy: bool = False) -> dict[str, set[str]]:
    """module -> package modules it imports at module level (with ``lazy``, anywhere), for every
    ``.py`` of the package."""
    files = {module_name(path): path for path in PACKAGE_DIR.rglob("*.py")}
    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        graph[module] = set().union(*(imported_modules(node, module, is_package, set(files))
                                      for node in import_statements(tree, lazy))) - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as its modules in order (first repeated at the end), or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def subgraph(graph: dict[str, set[str]], prefix: str) -> dict[str, set[str]]:
    """The modules under ``prefix`` and the arrows among them."""
    inside = {m for m in graph if m == prefix or m.startswith(prefix + ".")}
    return {m: graph[m] & inside for m in inside}


def without_cli(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``graph`` less `CLI_MODULES` and the arrows into them."""
    return {m: targets - CLI_MODULES for m, targets in graph.items() if m not in CLI_MODULES}


def test_the_graph_sees_relative_and_absolute_imports_and_lazy_ones_on_request():
    graph, lazy = import_graph(), import_graph(lazy=True)
    assert f"{PACKAGE}.zoo.source" in graph[f"{PACKAGE}.zoo.member"]
    assert f"{PACKAGE}.atomic" in graph[f"{PACKAGE}.train.export"]
    assert f"{PACKAGE}.train.export" not in graph[f"{PACKAGE}.zoo.source"]  # imported when a member loads
    assert f"{PACKAGE}.train.export" in lazy[f"{PACKAGE}.zoo.source"]


def test_find_cycle_reports_a_cycle_and_none_for_a_chain():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_inside_zoo():
    assert find_cycle(subgraph(import_graph(), f"{PACKAGE}.zoo")) is None


def test_no_module_level_import_cycle_outside_the_cli_layers():
    assert find_cycle(without_cli(import_graph())) is None


def test_lazy_imports_inside_zoo_point_down_but_for_the_listed_ones():
    """zoo.source once loaded the Kipoi wrapper (zoo.model) to check a download: model -> member ->
    source -> model. The listed upward calls aside, no lazy import closes a cycle either."""
    zoo = subgraph(import_graph(lazy=True), f"{PACKAGE}.zoo")
    assert all(target in zoo[module] for module, target in ZOO_LAZY_UPWARD)  # the list has no stale entries
    for module, target in ZOO_LAZY_UPWARD:
        zoo[module] = zoo[module] - {target}
    assert find_cycle(zoo) is None
