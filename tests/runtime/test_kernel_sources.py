"""The runtime owns the kernel pools; a notebook task reaches one only through the hook the runtime installs."""
from __future__ import annotations

import ast
from pathlib import Path

import nbflow.runtime.context  # noqa: F401 - what every attempt imports before its task runs
from nbflow.operators import notebook_kernels
from nbflow.runtime.kernel_sources import NoKernels, PoolSource, use_kernel_source

OPERATORS = Path(notebook_kernels.__file__).parent


def test_a_process_running_tasks_gets_its_own_pool_by_default() -> None:
    use_kernel_source(None)
    source = notebook_kernels.kernel_source(2)
    assert isinstance(source, PoolSource) and source.pool.size == 2
    assert notebook_kernels.kernel_source(2) is source  # one pool per process


def test_an_installed_source_wins() -> None:
    installed = NoKernels()
    use_kernel_source(installed)
    try:
        assert notebook_kernels.kernel_source(2) is installed
    finally:
        use_kernel_source(None)


def test_without_a_provider_a_task_starts_its_own_kernel() -> None:
    from nbflow.runtime.kernel_sources import process_kernel_source
    notebook_kernels.provide_kernel_sources(None)
    try:
        assert notebook_kernels.kernel_source(2) is None
    finally:
        notebook_kernels.provide_kernel_sources(process_kernel_source)


def test_no_operator_module_imports_the_runtime() -> None:
    for path in OPERATORS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.startswith("nbflow.runtime") for n in names), f"{path.name}:{node.lineno}"
