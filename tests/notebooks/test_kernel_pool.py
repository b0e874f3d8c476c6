"""KernelPool: real kernel processes started ahead of need, each handed out once."""
from __future__ import annotations

import os
import signal

import pytest

from nbflow.operators.notebook_kernels import KernelPool, KernelSpecInfo, find_kernel_spec, kernel_is_alive
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
