"""KernelPool: real kernel processes started ahead of need, each handed out once."""
from __future__ import annotations

import os
import signal

import pytest

from nbflow.operators.notebook_kernels import KernelSpecInfo, find_kernel_spec, kernel_is_alive
from nbflow.runtime.kernel_pool import KernelPool
from tests.runtime.scheduler_helpers import wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def pool():
    pool = KernelPool(2)
    yield pool
    pool.close()


def python3() -> KernelSpecInfo:
    spec = find_kernel_spec("python3")
    assert spec is not None
    return spec


def test_the_pool_never_hands_out_the_same_kernel_twice(pool: KernelPool) -> None:
    spec = python3()
    pool.want(spec)
    started = {k.pid for k in pool._idle["python3"]}
    handed = []
    for _ in range(5):
        kernel = pool.take(spec)
        assert kernel is not None
        handed.append(kernel)
        assert pool.idle_count("python3") == 2  # refilled at once
        pool.retire(kernel)
    pids = [k.pid for k in handed]
    assert len(set(pids)) == 5
    assert set(pids[:2]) == started  # the longest-started first
    wait_for(lambda: (pool.tick(), not any(kernel_is_alive(p) for p in pids))[1], timeout=30)
    assert all(not os.path.exists(k.kernel.connection_file) for k in handed)
    assert not set(pids) & {k.pid for k in pool._idle["python3"]}


def test_a_pooled_kernel_that_died_is_replaced_and_never_handed_out(pool: KernelPool) -> None:
    spec = python3()
    pool.want(spec)
    dead = pool._idle["python3"][0]
    os.kill(dead.pid, signal.SIGKILL)
    wait_for(lambda: not dead.alive())
    kernel = pool.take(spec)
    assert kernel is not None and kernel.pid != dead.pid and kernel.alive()


def test_close_stops_every_kernel(pool: KernelPool) -> None:
    spec = python3()
    pool.want(spec)
    taken = pool.take(spec)
    pids = {k.pid for k in pool._idle["python3"]} | {taken.pid}
    pool.retire(taken)
    pool.close()
    assert not any(kernel_is_alive(pid) for pid in pids)


def test_only_python_kernels_are_pooled_and_size_zero_pools_nothing() -> None:
    r_spec = KernelSpecInfo(name="ir", language="R", argv=("R",), env=(), resource_dir="")
    assert KernelPool(2).take(r_spec) is None  # its working directory can only be set at start
    assert KernelPool(0).take(python3()) is None


def test_python_kernels_are_forked_from_the_template_and_behave_like_launched_ones(tmp_path) -> None:
    import io
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from nbflow.operators.notebook_kernels import ForkedKernel, KernelProcess
    from nbflow.operators.notebook_run import RunSettings, run_notebook

    probe = ("import os, sys, random, pickle\nfrom nbflow.notebook import record\nclass Local: pass\n"
             "record('facts', [os.getcwd(), os.environ.get('PROBE'), sys.argv[0].endswith('ipykernel_launcher.py'),"
             " __name__, len(pickle.dumps(Local())) > 0])\nrecord('random', random.random())")
    seen = {}
    for use_template in (True, False):
        pool = KernelPool(1, use_template=use_template)
        try:
            for i in range(2):
                kernel = pool.take(python3())
                assert isinstance(kernel, ForkedKernel if use_template else KernelProcess)
                nb = new_notebook(cells=[new_code_cell(probe)])
                nb.metadata["papermill"] = {}
                nb.cells[0].metadata["tags"] = []
                settings = RunSettings(output_path=tmp_path / f"{use_template}{i}.ipynb", cwd=str(tmp_path),
                                       env={**os.environ, "PROBE": "yes"}, log=io.StringIO())
                result = run_notebook(nbformat.from_dict(nb), kernel.kernel, settings)
                seen[(use_template, i)] = result.records
                pool.retire(kernel)
        finally:
            pool.close()
    facts = [str(tmp_path), "yes", True, "__main__", True]
    assert all(records["facts"] == facts for records in seen.values())
    assert seen[(True, 0)]["random"] != seen[(True, 1)]["random"]  # each fork reseeds


def test_only_kernelspecs_running_ipykernel_launcher_are_forked() -> None:
    import sys

    from nbflow.operators.notebook_template import template_args
    assert template_args(("python", "-m", "ipykernel_launcher", "-f", "{connection_file}")) == \
        ["-f", "{connection_file}"]
    assert template_args((sys.executable, "-m", "ipykernel", "-f", "{connection_file}", "--x=1")) == \
        ["-f", "{connection_file}", "--x=1"]
    assert template_args(("/opt/other/python", "-m", "ipykernel_launcher", "-f", "{connection_file}")) is None
    assert template_args(("R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}")) is None


def test_a_dead_template_is_replaced_and_its_kernels_are_not_handed_out(pool: KernelPool) -> None:
    spec = python3()
    pool.want(spec)
    old_template = pool._template
    orphans = {k.pid for k in pool._idle["python3"]}
    old_template.popen.kill()
    old_template.popen.wait()
    kernel = pool.take(spec)
    assert kernel is not None and kernel.pid not in orphans and kernel.alive()
    assert pool._template is not old_template
    wait_for(lambda: not any(kernel_is_alive(pid) for pid in orphans), timeout=30)  # they follow their parent
