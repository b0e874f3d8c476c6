"""The secrets backends chain: ask each configured backend in turn, cache, mask what is found.

Built once from configuration (`secrets.backends`, `secrets.cache_ttl_seconds`, `secrets.fail_closed`,
`core.sensitive_var_conn_names`) where a component starts, then passed down; `get_connection` and
`get_variable` at the bottom use a default chain built on first use, and again whenever the
environment it was built from (working directory, NBFLOW_ settings) changed.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nbflow.configuration import config_environment_key
from nbflow.exceptions import (
    ConnectionNotFound,
    NbflowConfigException,
    SecretsBackendUnavailable,
    SecretsError,
    UnknownPluginError,
    VariableNotFound,
)
from nbflow.secrets.backends.base import BUILTIN_MODULES, BaseSecretsBackend, backends
from nbflow.utils.masking import masker

if TYPE_CHECKING:
    from nbflow.configuration import Config
    from nbflow.secrets.connection import Connection

log = logging.getLogger("nbflow.secrets")
T = TypeVar("T")


class _NotSet:
    def __repr__(self) -> str:
        return "NOTSET"


#: "No default given" for Variable.get and get_variable (None is a valid default).
NOTSET: Any = _NotSet()


class TTLCache:
    """Values kept for `ttl` seconds; thread-safe. A ttl of 0 keeps nothing."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self._clock = ttl, clock
        self._items: dict[tuple[str, int, str], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, str]) -> Any:
        """The value, or NOTSET when absent or expired."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return NOTSET
            if item[0] <= self._clock():
                del self._items[key]
                return NOTSET
            return item[1]

    def put(self, key: tuple[str, int, str], value: Any) -> None:
        if self.ttl > 0:
            with self._lock:
                self._items[key] = (self._clock() + self.ttl, value)

    def discard(self, kind: str, ident: str) -> None:
        with self._lock:
            for key in [k for k in self._items if k[0] == kind and k[2] == ident]:
                del self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class SecretsChain:
    """Backends asked in order; the first that holds an id answers.

    A backend that raises SecretsBackendUnavailable (or any unexpected error) is skipped with one
    warning per lookup on logger `nbflow.secrets`, or, with `fail_closed`, ends the lookup with
    that error. A malformed or undecryptable secret is never skipped: its error propagates.
    """

    def __init__(self, backends: Sequence[Any], *, cache_ttl: float = 0.0, fail_closed: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backends = list(backends)
        self.fail_closed = fail_closed
        self.cache = TTLCache(cache_ttl, clock)

    @classmethod
    def from_config(cls, config: "Config") -> "SecretsChain":
        """The chain `config` describes; builds each backend (which opens no connection yet)."""
        masker.set_sensitive_words(config.getlist("core", "sensitive_var_conn_names"))
        names = config.getlist("secrets", "backends")
        built = [build_backend(name, config) for name in names]
        ttl = config.getfloat("secrets", "cache_ttl_seconds")
        if ttl < 0:
            raise NbflowConfigException(f"[secrets] cache_ttl_seconds = {ttl} must be 0 (no cache) or more")
        return cls(built, cache_ttl=ttl, fail_closed=config.getboolean("secrets", "fail_closed"))

    @property
    def names(self) -> list[str]:
        """How each backend is named in messages, in chain order."""
        return [describe(backend) for backend in self.backends]

    # -- lookups -------------------------------------------------------------------------------
    def find_connection(self, conn_id: str) -> "Connection | None":
        """Connection `conn_id` from the first backend holding it, or None; its secrets are masked."""
        return self._find_connection(conn_id)[0]

    def _find_connection(self, conn_id: str) -> "tuple[Connection | None, list[str]]":
        return self._lookup("connection", conn_id, lambda backend: backend.get_connection(conn_id))

    def get_connection(self, conn_id: str) -> "Connection":
        """Connection `conn_id`; ConnectionNotFound (a KeyError) lists the backends searched."""
        conn, searched = self._find_connection(conn_id)
        if conn is None:
            raise ConnectionNotFound(conn_id, searched)
        return conn

    def get_variable(self, key: str, default: Any = NOTSET) -> Any:
        """Variable `key` as text, else `default`; VariableNotFound (a KeyError) when there is no default."""
        value, searched = self._lookup("variable", key, lambda backend: backend.get_variable(key))
        if value is None:
            if default is NOTSET:
                raise VariableNotFound(key, searched)
            return default
        return value

    def get_config(self, key: str) -> str | None:
        """Configuration value `key` from the first backend holding one (Airflow's `*_secret` options)."""
        return self._lookup("config", key,
                            lambda backend: getattr(backend, "get_config", lambda _k: None)(key))[0]

    def _lookup(self, kind: str, ident: str, fetch: Callable[[Any], T | None]) -> tuple[T | None, list[str]]:
        """The first backend's answer, and the backends asked (those skipped marked "(unavailable)")."""
        searched: list[str] = []
        for index, backend in enumerate(self.backends):
            cacheable = getattr(backend, "cacheable", True) and self.cache.ttl > 0
            if cacheable:
                hit = self.cache.get((kind, index, ident))
                if hit is not NOTSET:
                    _register_value(backend, kind, ident, hit)  # a forked child may not know it yet
                    return hit, searched
            try:
                value = fetch(backend)
            except SecretsBackendUnavailable as err:
                self._skip(backend, err, kind, ident)
                searched.append(f"{describe(backend)} (unavailable)")
                continue
            except (SecretsError, NbflowConfigException):
                raise  # a malformed or undecryptable secret, or a wrong setting: never skipped silently
            except Exception as err:  # noqa: BLE001 - a custom backend's own failure counts as unavailable
                self._skip(backend, SecretsBackendUnavailable(describe(backend), f"{type(err).__name__}: {err}"),
                           kind, ident)
                searched.append(f"{describe(backend)} (unavailable)")
                continue
            searched.append(describe(backend))
            if value is not None:
                _register_value(backend, kind, ident, value)
                if cacheable:
                    self.cache.put((kind, index, ident), value)
                return value, searched
        return None, searched

    def _skip(self, backend: Any, err: SecretsBackendUnavailable, kind: str, ident: str) -> None:
        name = describe(backend)
        if self.fail_closed:
            raise SecretsBackendUnavailable(
                name, f"{err.problem if err.backend == name else err} (while looking up {kind} {ident!r})",
                "secrets.fail_closed is set, so the lookup fails instead of asking the next backend") from err
        following = self.backends[self.backends.index(backend) + 1:]
        log.warning("secrets backend %r is unavailable, skipping it for %s %r (%s); asking %s", name, kind, ident,
                    err, ", ".join(describe(b) for b in following) or "no further backend")

    # -- writes (to the first backend that takes them: the metastore) ---------------------------
    def _writer(self, method: str, what: str) -> Any:
        for backend in self.backends:
            if callable(getattr(backend, method, None)):
                return backend
        raise SecretsError(f"cannot {what}: none of the secrets backends ({', '.join(self.names) or 'none'}) "
                           f"stores values; add `metastore` to secrets.backends")

    def set_variable(self, key: str, value: str, description: str | None = None) -> None:
        """Store variable `key` in the first writable backend (Variable.set)."""
        writer = self._writer("set_variable", f"set variable {key!r}")
        self._warn_if_shadowed("variable", key, writer, lambda backend: backend.get_variable(key))
        writer.set_variable(key, value, description=description)
        self.cache.discard("variable", key)

    def delete_variable(self, key: str) -> bool:
        """Remove variable `key` from the first writable backend; False when it held none."""
        deleted = bool(self._writer("delete_variable", f"delete variable {key!r}").delete_variable(key))
        self.cache.discard("variable", key)
        return deleted

    def set_connection(self, conn: "Connection") -> None:
        """Store `conn` in the first writable backend."""
        writer = self._writer("set_connection", f"store connection {conn.conn_id!r}")
        self._warn_if_shadowed("connection", str(conn.conn_id), writer,
                               lambda backend: backend.get_connection(conn.conn_id))
        writer.set_connection(conn)
        self.cache.discard("connection", str(conn.conn_id))

    def delete_connection(self, conn_id: str) -> bool:
        """Remove connection `conn_id` from the first writable backend; False when it held none."""
        deleted = bool(self._writer("delete_connection", f"delete connection {conn_id!r}").delete_connection(conn_id))
        self.cache.discard("connection", conn_id)
        return deleted

    def _warn_if_shadowed(self, kind: str, ident: str, writer: Any, fetch: Callable[[Any], Any]) -> None:
        for backend in self.backends[:self.backends.index(writer)]:
            try:
                found = fetch(backend)
            except Exception:  # noqa: BLE001 - only a courtesy check before writing
                continue
            if found is not None:
                log.warning("%s %r is also defined in secrets backend %r, which comes first in secrets.backends; "
                            "lookups will keep returning that value, not the one stored in %r",
                            kind, ident, describe(backend), describe(writer))
                return


def masks_returned_values(backend: Any) -> bool:
    """Whether everything `backend` returns is masked (BaseSecretsBackend.masks_returned_values).

    A backend that does not say (a duck-typed class) is a secrets store: masked entirely."""
    return bool(getattr(backend, "masks_returned_values", True))


def _register_value(backend: Any, kind: str, ident: str, value: Any) -> None:
    """Register with the masker what a backend returned, by the one rule of `masks_returned_values`.

    Every backend: a connection's password and the sensitive fields of its extra; a variable whose name
    (or a nested field's) is sensitive; every config value. A backend that masks what it returns: also
    every variable's whole value (and each text field of a JSON value, which a task prints parsed) and
    a connection's whole URI when it carries a password."""
    from nbflow.secrets.known import register_connection, register_nested, register_text_leaves

    masks_all = masks_returned_values(backend)
    if kind == "connection":
        register_connection(value)
        if masks_all and value.password:
            masker.add(value.get_uri())
    elif kind == "config":
        masker.add(value)
    else:
        register_nested(ident, value)
        if masks_all:
            masker.add(value)
            register_text_leaves(value)


def describe(backend: Any) -> str:
    """A backend's name for messages."""
    describe_method = getattr(backend, "describe", None)
    return describe_method() if callable(describe_method) else type(backend).__name__


# -- building backends from their configured names -----------------------------------------------

def build_backend(name: str, config: "Config") -> Any:
    """The backend `name` in secrets.backends names: a registered name or a dotted class path."""
    cls = load_backend_class(name, config)
    from_config = getattr(cls, "from_config", None)
    backend = from_config(config) if callable(from_config) else cls()
    if not (callable(getattr(backend, "get_connection", None)) and callable(getattr(backend, "get_variable", None))):
        raise NbflowConfigException(f"secrets.backends: {name!r} is not a secrets backend (it needs get_connection "
                                    f"and get_variable; subclass nbflow.secrets.backends.base.BaseSecretsBackend)")
    if isinstance(backend, BaseSecretsBackend) and describe(backend) == BaseSecretsBackend.name:
        backend.name = name  # type: ignore[misc]  # a custom backend is called what the config calls it
    return backend


def load_backend_class(name: str, config: "Config | None" = None) -> type:
    """The class for `name`: built-in or registered names first, else `pkg.mod:Class` / `pkg.mod.Class`."""
    if name in BUILTIN_MODULES:
        importlib.import_module(BUILTIN_MODULES[name])
    if ":" not in name and (name in BUILTIN_MODULES or "." not in name):
        try:
            return backends.get(name, where="secrets.backends")
        except UnknownPluginError as err:
            raise UnknownPluginError("secrets backend", name, [*BUILTIN_MODULES, *backends],
                                     "secrets.backends; or give a class path such as mypkg.secrets:MyBackend") from err
    module_name, _, attr = name.partition(":") if ":" in name else name.rpartition(".")
    plugins = config.path("core", "plugins_folder") if config is not None else None
    module = _import_module(module_name, plugins, name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise NbflowConfigException(f"secrets.backends: module {module_name!r} has no class {attr!r}") from None


def _import_module(module_name: str, plugins_folder: Path | None, setting: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        top = module_name.split(".")[0]
        if err.name not in (top, module_name) or plugins_folder is None:
            raise NbflowConfigException(f"secrets.backends: cannot import {setting!r}: {err}") from err
    # Not on sys.path: look in the plugins folder (core.plugins_folder), as plugin modules live there.
    spec = importlib.machinery.PathFinder.find_spec(top, [str(plugins_folder)])
    if spec is None or spec.loader is None:
        raise NbflowConfigException(f"secrets.backends: cannot import {setting!r}: no module {top!r} on sys.path "
                                    f"or in the plugins folder {plugins_folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[top] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(top, None)
        raise
    return importlib.import_module(module_name)


# -- the default chain, built on first use and again when the environment changes ------------------

_default_chain: SecretsChain | None = None
_default_key: tuple[Any, ...] | None = None  # the environment it was built in (see config_environment_key)
_default_lock = threading.Lock()


def default_chain() -> SecretsChain:
    """The process's chain, built from `load_config()` on first use and rebuilt when the environment changed."""
    global _default_chain, _default_key
    key = config_environment_key()
    with _default_lock:
        if _default_chain is None or _default_key != key:
            from nbflow.configuration import load_config

            _default_chain, _default_key = SecretsChain.from_config(load_config()), key
        return _default_chain


def _forget_after_fork() -> None:
    # A forked child (the local executor forks one per attempt) must not share the parent's
    # pooled database connections or hvac session, nor a lock another parent thread held at
    # fork time: it builds its own chain on first use.
    global _default_chain, _default_key, _default_lock
    _default_chain, _default_key = None, None
    _default_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def reset_default_chain(chain: SecretsChain | None = None) -> None:
    """Forget the default chain (it is rebuilt from config on next use), or replace it with `chain`, which
    then serves until the environment changes."""
    global _default_chain, _default_key
    with _default_lock:
        _default_chain, _default_key = chain, (config_environment_key() if chain is not None else None)


def get_connection(conn_id: str) -> "Connection":
    """Connection `conn_id` from the default chain."""
    return default_chain().get_connection(conn_id)


def get_variable(key: str, default: Any = NOTSET) -> Any:
    """Variable `key` as text from the default chain, else `default`."""
    return default_chain().get_variable(key, default)
