"""The Airflow-compatible paths are listed in `nbflow.compat`, only re-export, and nbflow's code bypasses them."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from nbflow.compat import REEXPORT_MODULES
from tests.layer_contract import only_reexports

ROOT = Path(__file__).resolve().parents[2]
MARK = "Airflow-compatible path"


def module_file(name: str) -> Path:
    base = ROOT / Path(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def all_modules() -> dict[str, ast.Module]:
    trees = {}
    for path in sorted((ROOT / "nbflow").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        trees[name] = ast.parse(path.read_text(encoding="utf-8"))
    return trees


@pytest.mark.parametrize("name", REEXPORT_MODULES)
def test_compat_module_only_reexports_and_says_so(name: str) -> None:
    tree = ast.parse(module_file(name).read_text(encoding="utf-8"))
    assert only_reexports(tree), f"{name} holds code; move it to its layer and re-export it"
    assert (ast.get_docstring(tree) or "").startswith(MARK), f"{name}'s docstring must start with {MARK!r}"


@pytest.mark.parametrize("name", REEXPORT_MODULES)
def test_compat_path_still_imports(name: str) -> None:
    importlib.import_module(name)


def test_every_module_marked_as_compat_path_is_listed() -> None:
    marked = {name for name, tree in all_modules().items() if (ast.get_docstring(tree) or "").startswith(MARK)}
    assert marked == set(REEXPORT_MODULES)


def test_no_nbflow_module_imports_a_compat_path() -> None:
    compat = set(REEXPORT_MODULES)
    offenders = []
    for name, tree in all_modules().items():
        if name in compat:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            offenders += [f"{name}:{node.lineno} imports {t}" for t in targets if t in compat]
    assert offenders == [], "import the real module instead:\n" + "\n".join(offenders)
