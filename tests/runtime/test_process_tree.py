"""process_tree with real processes: what an attempt run in this process starts ends with it, and
nothing else this process started is touched."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nbflow.runtime import process_tree
from tests.runtime.scheduler_helpers import wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, uses prctl")


def background_sleep(pid_file: Path) -> int:
    """`sleep 300 &` from a bash that exits at once: the sleep is orphaned. Its pid."""
    subprocess.run(["bash", "-c", f"sleep 300 >/dev/null 2>&1 & echo $! > {pid_file}"], check=True)
    return int(pid_file.read_text())


def test_an_orphan_started_inside_the_block_is_ended_when_it_leaves(tmp_path: Path) -> None:
    with process_tree.owning_what_starts():
        orphan = background_sleep(tmp_path / "pid")
        assert process_tree.alive(orphan)
    assert not process_tree.alive(orphan)


def test_the_process_is_a_subreaper_only_inside_the_block() -> None:
    assert not process_tree.is_subreaper()
    with process_tree.owning_what_starts():
        assert process_tree.is_subreaper()
    assert not process_tree.is_subreaper()


def test_a_child_started_before_the_block_is_left_alone() -> None:
    before = subprocess.Popen(["sleep", "300"])
    try:
        with process_tree.owning_what_starts():
            inside = subprocess.Popen(["sleep", "300"])
        assert process_tree.alive(before.pid)
        assert not process_tree.alive(inside.pid)  # ended and reaped (its Popen no longer learns how)
    finally:
        before.kill()
        before.wait()


def test_a_descendant_that_ignores_sigterm_is_killed() -> None:
    with process_tree.owning_what_starts():
        stubborn = subprocess.Popen(["bash", "-c", "trap '' TERM; sleep 300; true"])
        sleep = wait_for(lambda: process_tree.children(stubborn.pid))[0]  # the trap is set by then
    assert not process_tree.alive(stubborn.pid)
    assert not process_tree.alive(sleep)  # it ignored SIGTERM too (inherited), so only SIGKILL ended it


def test_kill_tree_kills_a_process_and_every_descendant(tmp_path: Path) -> None:
    parent = subprocess.Popen(["bash", "-c", f"sleep 300 & echo $! > {tmp_path / 'pid'}; wait"],
                              start_new_session=True)
    grandchild = int(wait_for(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text().strip()))
    killed = process_tree.kill_tree(parent.pid)
    assert parent.wait(timeout=30) == -9
    assert grandchild in killed
    wait_for(lambda: not process_tree.alive(grandchild), timeout=30)
