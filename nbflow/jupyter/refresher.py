"""One thread per kernel that keeps every open DagWidget up to date, and ends when the last one closes.

A thread, not an asyncio task: a task stalls while a cell blocks the event loop, and nbclient drops
updates parented to earlier cells (research/jupyter.md §1). Thread updates broke only in ipykernel
7.0.0 (ipykernel #1450, fixed in 7.0.1), hence ipykernel != 7.0.0. Each tick reads the database for
every widget and sends a widget only what changed, in one message (`hold_sync`).
"""
from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbflow.jupyter.widgets import DagWidget

# Seconds between two reads of the database. A change waits half of it on average (plus a read of
# 3-7 ms for a 100-task run), so 0.5 s gave a median of ~250 ms against the 300 ms goal of
# benchmarks/widget_latency.py, too close for a 40-sample median; 0.25 s gives ~150 ms, and
# benchmarks/kernel_responsiveness.py showed no change in a cell's round trip (median ~4 ms).
INTERVAL = 0.25


class Refresher:
    """Watches widgets; its thread runs only while at least one is open."""

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self._widgets: "weakref.WeakSet[DagWidget]" = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.thread: threading.Thread | None = None

    def watch(self, widget: "DagWidget") -> None:
        with self._lock:
            self._widgets.add(widget)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="nbflow-widgets", daemon=True)
                self.thread.start()

    def forget(self, widget: "DagWidget") -> None:
        with self._lock:
            self._widgets.discard(widget)
        self._wake.set()

    @property
    def watching(self) -> int:
        with self._lock:
            return len(self._widgets)

    def _run(self) -> None:
        while True:
            with self._lock:
                widgets = list(self._widgets)
                if not widgets:
                    self.thread = None
                    return
            for widget in widgets:
                if getattr(widget, "comm", None) is None:  # closed without telling us
                    self.forget(widget)
                    continue
                try:
                    widget.apply(widget.read())
                except Exception:  # noqa: BLE001 - a widget whose kernel side broke stops updating, others go on
                    self.forget(widget)
            self._wake.wait(self.interval)
            self._wake.clear()


refresher = Refresher()

__all__ = ["INTERVAL", "Refresher", "refresher"]
