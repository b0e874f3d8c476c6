"""One registry per pluggable kind: built-ins, then entry points, then the plugins folder."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

from nbflow.exceptions import NbflowException, UnknownPluginError

if TYPE_CHECKING:
    from importlib import metadata

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → implementation; a miss names the key asked for and the known ones."""

    def __init__(self, kind: str, *, entry_points: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_points
        self._items: dict[str, T] = {}
        self._pending: dict[str, "metadata.EntryPoint"] = {}
        self._entry_points_loaded = entry_points is None

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(item: T) -> T:
            self._items[name] = item
            return item
        return decorate

    def add(self, name: str, item: T) -> None:
        self._items[name] = item

    def _load_entry_points(self) -> None:
        # Names only: an entry point is imported when asked for, so one broken plugin (or one
        # whose module is missing) fails its own lookup, not every lookup of this kind.
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        from importlib import metadata  # ~20 ms: only when a lookup misses the built-ins
        for ep in metadata.entry_points(group=self.entry_point_group or ""):
            if ep.name not in self._items:
                self._pending.setdefault(ep.name, ep)

    def get(self, name: str, *, where: str = "") -> T:
        if name not in self._items:
            self._load_entry_points()
            ep = self._pending.pop(name, None)
            if ep is not None:
                try:
                    self._items[name] = ep.load()
                except Exception as err:
                    origin = f" ({where})" if where else ""
                    raise NbflowException(f"{self.kind} {name!r}{origin}: entry point {ep.value!r} failed to load: "
                                          f"{type(err).__name__}: {err}; fix or uninstall the package providing "
                                          f"it") from err
        try:
            return self._items[name]
        except KeyError:
            raise UnknownPluginError(self.kind, name, [*self._items, *self._pending], where) from None

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._items or name in self._pending

    def __iter__(self) -> Iterator[str]:
        self._load_entry_points()
        return iter(sorted({*self._items, *self._pending}))
