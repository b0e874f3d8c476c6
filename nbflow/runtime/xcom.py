"""Where XComs live while a run executes: a dict for `dags test`, the database under the scheduler."""
from __future__ import annotations

import threading
from typing import Protocol

from nbflow.runtime.run_info import TIKey


class XComStore(Protocol):
    def set(self, key: TIKey, name: str, value_json: str) -> None: ...

    def get(self, key: TIKey, name: str) -> str | None: ...

    def get_latest(self, key: TIKey, name: str) -> str | None:
        """The value of `key`'s run, else that of the latest run of the DAG before it (include_prior_dates)."""
        ...

    def get_mapped(self, dag_id: str, run_id: str, task_id: str, name: str) -> list[str | None]:
        """Values of every map index of a mapped task, in map index order."""
        ...

    def clear(self, key: TIKey) -> None: ...


class HeldPushes:
    """The pushes of one attempt, held until the transaction that records its result writes them.

    One write per attempt instead of one per push, and a task's state and its XComs become
    visible together. The attempt's own pulls see what it pushed.
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[TIKey, str], str] = {}

    def set(self, key: TIKey, name: str, value_json: str) -> None:
        self._pending[(key, name)] = value_json

    def take_pending(self) -> list[tuple[TIKey, str, str]]:
        """The held values, (key, name, JSON), for the transaction that records the attempt's result."""
        pending = [(key, name, value_json) for (key, name), value_json in self._pending.items()]
        self._pending.clear()
        return pending


class MemoryXComStore:
    """XComs of in-process runs (`dags test`), keyed by task instance and name."""

    def __init__(self) -> None:
        self._values: dict[tuple[TIKey, str], str] = {}
        self._lock = threading.Lock()

    def set(self, key: TIKey, name: str, value_json: str) -> None:
        with self._lock:
            self._values[(key, name)] = value_json

    def get(self, key: TIKey, name: str) -> str | None:
        return self._values.get((key, name))

    def get_latest(self, key: TIKey, name: str) -> str | None:
        return self.get(key, name)  # an in-process run knows no earlier runs

    def get_mapped(self, dag_id: str, run_id: str, task_id: str, name: str) -> list[str | None]:
        found = sorted((k.map_index, v) for (k, n), v in self._values.items()
                       if n == name and k.dag_id == dag_id and k.run_id == run_id and k.task_id == task_id
                       and k.map_index >= 0)
        return [v for _, v in found]

    def clear(self, key: TIKey) -> None:
        with self._lock:
            for k in [k for k in self._values if k[0] == key]:
                del self._values[k]
