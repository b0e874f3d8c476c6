"""One registry per pluggable kind: built-ins, then entry points, then the plugins folder."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Generic, TypeVar

from nbflow.exceptions import UnknownPluginError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → implementation; a miss names the key asked for and the known ones."""

    def __init__(self, kind: str, *, entry_points: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_points
        self._items: dict[str, T] = {}
        self._entry_points_loaded = entry_points is None

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(item: T) -> T:
            self._items[name] = item
            return item
        return decorate

    def add(self, name: str, item: T) -> None:
        self._items[name] = item

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=self.entry_point_group or ""):
            self._items.setdefault(ep.name, ep.load())

    def get(self, name: str, *, where: str = "") -> T:
        if name not in self._items:
            self._load_entry_points()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownPluginError(self.kind, name, list(self._items), where) from None

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        self._load_entry_points()
        return iter(sorted(self._items))
