"""The command line's import arrows point one way (STYLE.md: ... train -> zoo; cli on top), counting
imports inside functions too: a lazy import is still an arrow, and the cycles it closed (zoo <-> train
through ``seq2exp export``, cli <-> zoo through `add_command`) were lazy on one side."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kipoi_seq2exp

PACKAGE_DIR = Path(kipoi_seq2exp.__file__).parent
PACKAGE = PACKAGE_DIR.name
SOURCES = {".".join(p.relative_to(PACKAGE_DIR.parent).with_suffix("").parts).removesuffix(".__init__"): p
           for p in PACKAGE_DIR.rglob("*.py")}


def every_import(module: str) -> set[str]:
    """Dotted names ``module`` imports anywhere in its source (module level and inside functions):
    for ``from X import y`` both X and X.y, relative imports resolved."""
    path = SOURCES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def modules_under(prefix: str) -> list[str]:
    return sorted(m for m in SOURCES if m == prefix or m.startswith(prefix + "."))


@pytest.mark.parametrize("module", modules_under(f"{PACKAGE}.train"))
def test_the_train_layer_never_imports_the_zoo(module):
    assert not {m for m in every_import(module) if m.startswith(f"{PACKAGE}.zoo")}


@pytest.mark.parametrize("module", sorted(set(SOURCES) - {f"{PACKAGE}.cli", f"{PACKAGE}.__main__"}))
def test_only_the_entry_points_import_the_command_line(module):
    assert f"{PACKAGE}.cli" not in every_import(module)


def test_the_command_table_is_a_leaf():
    assert not {m for m in every_import(f"{PACKAGE}.commands") if m.startswith(PACKAGE)}


def test_every_import_resolves_relative_imports():
    assert {f"{PACKAGE}.commands.add_command", f"{PACKAGE}.zoo.source"} <= every_import(f"{PACKAGE}.zoo.cli")
