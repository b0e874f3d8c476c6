"""An attempt owns every process it starts: find them, and end them when the attempt ends.

A task that runs `sleep 300 &`, a `subprocess.Popen` it never waits for, or a daemon that
double-forks would otherwise outlive its attempt, reparented to PID 1. So the process an attempt
runs in leads its own process group and is a child subreaper (Linux `prctl`): orphaned
descendants are reparented to it, not to PID 1, and stay findable in `/proc` as its descendants
until the attempt ends and `end_descendants` stops them (SIGTERM, then SIGKILL for those that are
still alive after a grace period) and reaps them. Elsewhere than Linux every step degrades to what
the platform offers (the process group) and never raises.
"""
from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Collection, Iterable, Iterator

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
GRACE = 0.5  # seconds between SIGTERM and SIGKILL
_prctl = None


def _libc_prctl():  # type: ignore[no-untyped-def]
    global _prctl
    if _prctl is None:
        try:
            import ctypes
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):  # not Linux
            _prctl = False
    return _prctl


def become_subreaper(on: bool = True) -> bool:
    """Have orphaned descendants reparent to this process instead of PID 1 (`on=False`: no longer);
    False where impossible."""
    prctl = _libc_prctl()
    return bool(prctl) and prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0


def is_subreaper() -> bool:
    prctl = _libc_prctl()
    if not prctl:
        return False
    import ctypes
    flag = ctypes.c_int(0)
    return prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0 and bool(flag.value)


@contextlib.contextmanager
def owning_what_starts() -> Iterator[None]:
    """For an attempt run in a process that outlives it (a scheduler, `tasks run`, a kernel): what starts
    inside the block is ended when it leaves. The process is a subreaper only meanwhile: a long-lived
    host that stayed one would collect, and never reap, the orphans of everything else it ever started."""
    was = is_subreaper()
    if not was:
        become_subreaper()
    before = descendants(os.getpid())
    try:
        yield
    finally:
        try:
            end_descendants(keep=before)
        finally:
            if not was:
                become_subreaper(False)


def lead_group(pid: int = 0) -> bool:
    """Make `pid` (0: this process) the leader of a process group of its own; False where it cannot be."""
    try:
        os.setpgid(pid, pid)
    except (OSError, AttributeError):  # it already leads a session, it exec'd, or it is gone
        return False
    return True


def own_attempt() -> None:
    """In a freshly forked attempt process: lead a group of its own and adopt its orphans."""
    lead_group()
    become_subreaper()


def children(pid: int) -> list[int]:
    """The direct children of `pid`, from /proc (every thread's list); [] where /proc has no such file."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return _children_by_scan(pid)
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as file:
                found.extend(int(p) for p in file.read().split())
        except (OSError, ValueError):
            if tid == str(pid):  # a kernel without the children file: scan every process's parent
                return _children_by_scan(pid)
    return found


def _children_by_scan(pid: int) -> list[int]:
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == pid:
                found.append(int(entry))
    return found


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, pgid) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            text = file.read()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[1]), int(fields[2])


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, parents before their children."""
    found: list[int] = []
    todo = [pid]
    while todo:
        below = children(todo.pop())
        found.extend(below)
        todo.extend(below)
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting to be reaped does not)."""
    stat = _stat(pid)
    if stat is not None:
        return stat[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not os.path.isdir("/proc/self")  # /proc exists but has no entry: gone


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _reap(pids: Iterable[int]) -> None:
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except (ChildProcessError, OSError):  # not our child (its parent reaps it) or reaped already
            pass


def end_processes(pids: Collection[int], *, grace: float = GRACE) -> list[int]:
    """SIGTERM `pids`, SIGKILL those alive `grace` s later, reap those that are our children; the pids killed."""
    if not pids:
        return []
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while True:
        _reap(pids)
        living = [p for p in pids if alive(p)]
        if not living or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    if living:
        _signal_all(living, signal.SIGKILL)
        # SIGKILL cannot be caught: wait briefly for each to die so that it can be reaped.
        deadline = time.monotonic() + 2.0
        while any(alive(p) for p in living) and time.monotonic() < deadline:
            time.sleep(0.01)
    # Also a descendant killed after its parent: reparented to us (a subreaper), it waits to be reaped.
    # Only these pids: another child of this process is its owner's to wait for.
    _reap(pids)
    return list(pids)


def end_descendants(*, keep: Collection[int] = (), grace: float = GRACE) -> list[int]:
    """End every descendant of this process except those in `keep` (and theirs); the pids ended.

    Called when an attempt ends. The attempt's process group needs no scan of its own: a subreaper
    adopts every orphan, so each member of its group still running is one of its descendants."""
    pids = descendants(os.getpid())
    if keep:
        kept = set(keep)
        for pid in keep:
            kept.update(descendants(pid))
        pids = [p for p in pids if p not in kept]
    return end_processes(pids, grace=grace)


def kill_tree(pid: int) -> list[int]:
    """SIGKILL `pid`, its process group (when it leads one) and every descendant, at once; the pids signalled.

    For a supervisor stopping an attempt that has to end now (cleared, overdue, heartbeat lost): the
    descendants are listed before anything dies, since a dead parent's children move elsewhere."""
    tree = descendants(pid)
    try:
        if os.getpgid(pid) == pid and pid != os.getpgid(0):
            os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    _signal_all([pid, *tree], signal.SIGKILL)
    return [pid, *tree]


__all__ = ["GRACE", "alive", "become_subreaper", "children", "descendants", "end_descendants", "end_processes",
           "is_subreaper", "kill_tree", "lead_group", "own_attempt", "owning_what_starts"]
