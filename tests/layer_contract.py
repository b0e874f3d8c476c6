"""The layer contract of DESIGN.md as a check: which imports inside `nbflow/` point up the layers.

Test tooling, not library code (`tests/test_layers.py` runs it in CI). Lower layers never import
higher ones; modules that only re-export (the Airflow-compatible paths, see `nbflow.compat`) and
imports under `if TYPE_CHECKING:` are exempt. Imports inside functions count: a lazy import is
still a dependency.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

#: Rank of each top-level name under `nbflow/`; a module may import only equal or lower ranks.
RANK: dict[str, int] = {
    "exceptions": 1, "configuration": 1, "utils": 1,
    "authoring": 2,
    "store": 3,
    "secrets": 4,
    "operators": 5, "sensors": 5, "hooks": 5, "notifications": 5,
    "runtime": 6,
    "cli": 7, "jupyter": 7, "web": 7, "graph": 7, "interfaces": 7, "__main__": 7,
}
LAYER: dict[int, str] = {1: "core", 2: "authoring", 3: "store", 4: "secrets", 5: "operators/sensors/hooks",
                         6: "runtime", 7: "interfaces"}


@dataclass(frozen=True, slots=True)
class UpwardImport:
    """One import that breaks the contract, where it is and which layers it crosses."""

    file: str
    line: int
    imported: str
    own_layer: str
    imported_layer: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} ({self.own_layer}) imports {self.imported} ({self.imported_layer})"


def layer_of(parts: list[str]) -> int | None:
    """Rank of a dotted module path, e.g. ['nbflow', 'store', 'runs'] -> 3; None outside the table."""
    if len(parts) < 2 or parts[0] != "nbflow":
        return None
    return RANK.get(parts[1].removesuffix(".py"))


def only_reexports(tree: ast.Module) -> bool:
    """True for a module holding nothing but imports, `__all__` and a docstring."""
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if all(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                continue
        return False
    return True


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imported(node: ast.AST, module_parts: list[str]) -> list[list[str]]:
    if isinstance(node, ast.Import):
        return [alias.name.split(".") for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:  # relative: from the module's package, `level` steps up
            base = module_parts[: len(module_parts) - node.level]
            if node.module:
                return [base + node.module.split(".")]
            return [base + [alias.name] for alias in node.names]
        return [node.module.split(".")] if node.module else []
    return []


def upward_imports(root: Path) -> list[UpwardImport]:
    """Every upward import in the `nbflow/` package under `root`, in file and line order."""
    found: list[UpwardImport] = []
    for path in sorted((root / "nbflow").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        own = layer_of(parts)
        if own is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if only_reexports(tree):
            continue
        exempt = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno in exempt:
                continue
            for target in _imported(node, parts):
                theirs = layer_of(target)
                if theirs is not None and theirs > own:
                    found.append(UpwardImport(str(path.relative_to(root)), node.lineno, ".".join(target),
                                              LAYER[own], LAYER[theirs]))
    return sorted(set(found), key=lambda u: (u.file, u.line, u.imported))


if __name__ == "__main__":  # python tests/layer_contract.py [ROOT]
    import sys
    for problem in upward_imports(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(problem)
