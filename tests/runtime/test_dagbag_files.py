"""DAG files on disk: listing with ignore files and symlinks, the safe-mode heuristic, cached bytecode."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from nbflow.runtime import file_parsing as files


def test_listing_follows_a_symlinked_folder_once_and_survives_a_loop(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "flow.py").write_text("# dag nbflow\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "back").symlink_to(tmp_path)  # a loop back to the top
    listed = files.list_dag_files(tmp_path).files
    assert sorted(listed) == [str(tmp_path / "link" / "flow.py"), str(tmp_path / "real" / "flow.py")]


def test_listing_gives_each_file_its_mtime_and_size_in_path_order(tmp_path: Path) -> None:
    for name in ("b.py", "a.py", "c.txt", "n.ipynb"):
        (tmp_path / name).write_text("x")
    listed = files.list_dag_files(tmp_path).files
    assert list(listed) == [str(tmp_path / "a.py"), str(tmp_path / "b.py"), str(tmp_path / "n.ipynb")]
    stat = os.stat(tmp_path / "a.py")
    assert listed[str(tmp_path / "a.py")] == (stat.st_mtime_ns, 1)


@pytest.mark.parametrize(("text", "expected"), [
    (b"from nbflow import DAG", True),
    (b"# NBFLOW dag factory", True),
    (b"from nbflow.hooks import thing", False),
    (b"dag = 1", False),
])
def test_safe_mode_needs_both_words_in_any_case(text: bytes, expected: bool) -> None:
    assert files.might_contain_dag(text) is expected


def test_bytecode_is_cached_and_a_same_size_rewrite_is_compiled_again(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = str(tmp_path / "flow.py")
    first = files.load_code(path, b"value = 1\n")
    cached = Path(files._bytecode_path(path))
    assert cached.exists()
    namespace: dict[str, object] = {}
    exec(files.load_code(path, b"value = 1\n"), namespace)
    assert namespace["value"] == 1 and first.co_filename == path
    exec(files.load_code(path, b"value = 2\n"), namespace)
    assert namespace["value"] == 2


def test_dag_files_do_not_inherit_future_annotations_from_nbflow(tmp_path: Path) -> None:
    code = files.load_code(str(tmp_path / "ann.py"), b"def f(x: int): pass\nresult = f.__annotations__\n")
    namespace: dict[str, object] = {}
    exec(code, namespace)
    assert namespace["result"] == {"x": int}


def test_definition_line_finds_the_quoted_dag_id_or_its_def() -> None:
    source = b"import x\n\n@dag()\ndef etl():\n    pass\nDAG('other')\n"
    assert files.definition_line(source, "etl") == 4
    assert files.definition_line(source, "other") == 6
    assert files.definition_line(source, "missing") is None
