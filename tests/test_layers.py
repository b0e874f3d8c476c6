"""The layers of DESIGN.md hold: no module of nbflow imports a higher layer (checked in CI from now on)."""
from __future__ import annotations

from pathlib import Path

from tests.layer_contract import UpwardImport, upward_imports

ROOT = Path(__file__).resolve().parents[1]


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def fake_package(root: Path) -> None:
    """A small nbflow tree whose layers hold, to break one import at a time."""
    for package in ("nbflow", "nbflow/utils", "nbflow/store", "nbflow/runtime"):
        write(root, f"{package}/__init__.py", '"""Package."""\n')
    write(root, "nbflow/utils/clock.py", '"""Core."""\nimport datetime\n')
    write(root, "nbflow/store/runs.py", '"""Store."""\nfrom nbflow.utils.clock import datetime\n')
    write(root, "nbflow/runtime/loop.py", '"""Runtime."""\nfrom nbflow.store import runs\n')


def test_nbflow_has_no_upward_import() -> None:
    problems = upward_imports(ROOT)
    assert problems == [], "imports that point up the layers of DESIGN.md:\n" + "\n".join(map(str, problems))


def test_a_layered_fake_package_passes(tmp_path: Path) -> None:
    fake_package(tmp_path)
    assert upward_imports(tmp_path) == []


def test_an_upward_import_is_reported_with_file_and_line(tmp_path: Path) -> None:
    fake_package(tmp_path)
    write(tmp_path, "nbflow/store/runs.py",
          '"""Store."""\nfrom nbflow.utils.clock import datetime\n\n\ndef wake():\n    import nbflow.runtime.loop\n')
    problems = upward_imports(tmp_path)
    assert problems == [UpwardImport("nbflow/store/runs.py", 6, "nbflow.runtime.loop", "store", "runtime")]
    assert str(problems[0]) == "nbflow/store/runs.py:6 (store) imports nbflow.runtime.loop (runtime)"


def test_a_relative_upward_import_is_reported(tmp_path: Path) -> None:
    fake_package(tmp_path)
    write(tmp_path, "nbflow/utils/clock.py", '"""Core."""\nfrom ..store import runs\n\nTICK = runs\n')
    assert [str(p) for p in upward_imports(tmp_path)] == [
        "nbflow/utils/clock.py:2 (core) imports nbflow.store (store)"]


def test_type_checking_imports_and_reexport_modules_are_exempt(tmp_path: Path) -> None:
    fake_package(tmp_path)
    write(tmp_path, "nbflow/store/runs.py", '"""Store."""\nfrom typing import TYPE_CHECKING\n'
                                            'if TYPE_CHECKING:\n    from nbflow.runtime.loop import x\n'
                                            'RUNS: "list[x]" = []\n')
    write(tmp_path, "nbflow/utils/loop.py", '"""Airflow-compatible path: re-exports only."""\n'
                                            'from nbflow.runtime.loop import x as x\n__all__ = ["x"]\n')
    assert upward_imports(tmp_path) == []


def test_a_reexport_module_with_code_is_checked(tmp_path: Path) -> None:
    fake_package(tmp_path)
    write(tmp_path, "nbflow/utils/loop.py", '"""Re-exports, and a constant."""\n'
                                            'from nbflow.runtime.loop import x as x\nY = 1\n')
    assert [p.line for p in upward_imports(tmp_path)] == [2]
