"""Which kernel registered a DAG's cells, so that its DAGs go when it does.

Cells registered from a kernel (`kernel:<dag_id>` in `dag_file`) have no file whose deletion would tell
the DAG processor they are gone. Their row records the kernel instead, in the two columns only files
need (a migration for them was not worth it): `mtime` holds the kernel's PID and `size` this machine's
number (`this_machine`), since a PID means something only on its own machine and boot. A refresh on
that machine forgets the cells of a kernel that has exited; a kernel that exits cleanly forgets its own.
A PID the system has reused for another process keeps the cells until that process exits too.
"""
from __future__ import annotations

import atexit
import functools
import hashlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from nbflow.runtime.dag_source import KERNEL_PREFIX

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@functools.cache
def this_machine() -> int:
    """A number (60 bits, to fit a BIGINT) for this machine and boot: its host name and boot id."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            boot = file.read().strip()
    except OSError:
        boot = ""
    return int(hashlib.sha256(f"{_host_name()}\n{boot}".encode()).hexdigest()[:15], 16)


def _host_name() -> str:
    """socket.gethostname(), without importing socket (~2.5 ms of every refresh) where uname says the same."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket
    return socket.gethostname()


def kernel_gone(pid: int, machine: int, here: int) -> bool:
    """Whether the kernel recorded as (`pid`, `machine`) has exited, asked on machine `here`.

    A kernel on another machine (or before a reboot of this one: another boot id) cannot be checked
    from here and is kept; a row without a PID predates owners and is forgotten (a live kernel records
    its cells again at its next refresh)."""
    if pid <= 0:
        return True
    if machine != here:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def forget_kernel_sources(session_factory: "Callable[[], Session]", owner_pid: int) -> list[str]:
    """Forget the cells kernel `owner_pid` of this machine registered, with their DAGs; their locations."""
    from nbflow.store import dags as dag_rows
    from nbflow.store import serialized_dags as stored
    from nbflow.store import session_scope

    here = this_machine()
    with session_scope(session_factory) as session:
        mine = [path for path, row in stored.dag_files(session).items()
                if path.startswith(KERNEL_PREFIX) and (row.mtime, row.size) == (owner_pid, here)]
        if mine:
            stored.forget_dag_files(session, mine)
            dag_rows.deactivate_missing_dags(session, seen_dag_ids=(), filelocs=mine)
    return mine


_forgetting_at_exit: set[tuple[object, int]] = set()


def forget_at_exit(database: object, session_factory: "Callable[[], Session]", owner_pid: int) -> None:
    """When kernel `owner_pid` (this process) exits cleanly, forget its cells in `database`; registered once per
    database. Best effort: a killed kernel's cells go at the next refresh on its machine."""
    if (database, owner_pid) in _forgetting_at_exit:
        return
    _forgetting_at_exit.add((database, owner_pid))

    def forget() -> None:
        if os.getpid() != owner_pid:
            return  # a forked child that inherited the hook
        try:
            forget_kernel_sources(session_factory, owner_pid)
        except Exception:  # noqa: BLE001 - the database may be gone already; the next refresh forgets them
            pass

    atexit.register(forget)


__all__ = ["forget_at_exit", "forget_kernel_sources", "kernel_gone", "this_machine"]
