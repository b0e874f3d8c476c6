"""Register with the masker every secret nbflow can know of before user code prints it.

A task that runs `echo $NBFLOW_VAR_API_KEY` or `env` never asks the secrets chain, so masking
what the chain returned is not enough: the values of `NBFLOW_CONN_*` passwords and of
`NBFLOW_VAR_*` variables with a sensitive name are registered from the environment, and the
passwords and sensitive variables stored in the metadata database from there. Processes call
these where they start (attempt, callback child, scheduler, CLI); everything a secrets backend
returns later is registered by the chain as it is read.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from nbflow.secrets.backends.env import CONN_ENV_PREFIX, VAR_ENV_PREFIX
from nbflow.utils.masking import SecretsMasker, masker

if TYPE_CHECKING:
    from nbflow.secrets.chain import SecretsChain
    from nbflow.secrets.connection import Connection

log = logging.getLogger("nbflow.secrets")

_last_seen: tuple[Any, ...] | None = None  # the environment's entries (and sensitive words) registered last time
_lock = threading.Lock()


def register_nested(name: str, value: Any, into: SecretsMasker = masker) -> None:
    """Register `value` when `name` is sensitive, else every sensitive field nested in it (JSON objects too)."""
    if into.is_sensitive(name):
        into.add(value)
        return
    if isinstance(value, str) and value.lstrip().startswith(("{", "[")):
        try:
            value = json.loads(value)
        except ValueError:
            return
    if isinstance(value, dict):
        for key, item in value.items():
            register_nested(str(key), item, into)
    elif isinstance(value, list):
        for item in value:
            register_nested(name, item, into)


def register_text_leaves(value: Any, into: SecretsMasker = masker) -> None:
    """Register each text field of a JSON object or array given as text (numbers and booleans stay visible:
    masking every "true" or "100" would shred ordinary output); nothing for plain text."""
    if not (isinstance(value, str) and value.lstrip().startswith(("{", "["))):
        return
    try:
        parsed = json.loads(value)
    except ValueError:
        return
    pending = [parsed]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            into.add(item)


def register_connection(conn: "Connection", into: SecretsMasker = masker) -> None:
    """A connection's password and the sensitive fields of its extra."""
    into.add(conn.password)
    for name, value in conn.extra_dejson.items():
        register_nested(str(name), value, into)


def _uri_password(uri: str) -> list[str]:
    """The password of a connection URI as written in it and decoded (no validation: a broken URI still hides)."""
    authority = uri.split("://", 1)[-1]
    if authority.count("://"):  # type://protocol://login:password@host
        authority = authority.split("://", 1)[1]
    try:
        written = urlsplit("//" + authority).password
    except ValueError:
        written = None
    if not written and "@" in authority:  # a password urlsplit rejects (an unescaped '/', '?' or '#')
        userinfo = authority.rsplit("@", 1)[0]
        written = userinfo.split(":", 1)[1] if ":" in userinfo else None
    return [written, unquote(written)] if written else []


def _scratch(like: SecretsMasker) -> SecretsMasker:
    """An empty masker with `like`'s sensitive words, to collect values without registering them yet."""
    scratch = SecretsMasker()
    scratch.sensitive_words = like.sensitive_words
    return scratch


def connection_secrets(conn_id: str, text: str, words: SecretsMasker = masker) -> list[Any]:
    """What to hide of one NBFLOW_CONN_<ID> value, in its URI or JSON form."""
    text = text.strip()
    if not text.startswith("{"):
        return _uri_password(text)
    try:
        data = json.loads(text)
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    found: list[Any] = [data.get("password")]
    for key in ("conn_uri", "uri"):
        if isinstance(data.get(key), str):
            found.extend(_uri_password(data[key]))
    extra = data.get("extra")
    if extra is not None:
        scratch = _scratch(words)
        register_nested("extra", extra, scratch)
        found.extend(scratch.secrets)
    return found


def environment_secrets(environ: Mapping[str, str], words: SecretsMasker = masker) -> list[Any]:
    """The secret values among `environ`'s NBFLOW_CONN_* and sensitively named NBFLOW_VAR_* entries."""
    found: list[Any] = []
    for name, value in environ.items():
        if name.startswith(CONN_ENV_PREFIX):
            found.extend(connection_secrets(name[len(CONN_ENV_PREFIX):], value, words))
        elif name.startswith(VAR_ENV_PREFIX):
            scratch = _scratch(words)
            register_nested(name[len(VAR_ENV_PREFIX):], value, scratch)
            found.extend(scratch.secrets)
    return found


def apply_sensitive_words(config: Any) -> None:
    """Add the words of `core.sensitive_var_conn_names` to Airflow's list, before environment secrets are read."""
    masker.set_sensitive_words(config.getlist("core", "sensitive_var_conn_names"))


def register_environment_secrets(environ: Mapping[str, str] | None = None, into: SecretsMasker = masker) -> None:
    """Register the secrets of NBFLOW_CONN_* and NBFLOW_VAR_* in `environ` (default: this process's).

    Cheap when nothing changed since the last call (an attempt process calls it for every attempt)."""
    global _last_seen
    env = os.environ if environ is None else environ
    entries = tuple((k, v) for k, v in env.items() if k.startswith((CONN_ENV_PREFIX, VAR_ENV_PREFIX)))
    seen = (into.sensitive_words, entries)
    with _lock:
        if environ is None and into is masker and seen == _last_seen:
            return
        if environ is None and into is masker:
            _last_seen = seen
    into.add(environment_secrets(dict(entries), into))


def register_known_secrets(chain: "SecretsChain", into: SecretsMasker = masker) -> None:
    """Register the passwords and sensitive variables stored in the chain's listable backends (the metastore).

    Best effort: a database that is missing or not initialised yet holds nothing to hide."""
    for backend in chain.backends:
        _register_listed(backend, into)


def _register_listed(backend: Any, into: SecretsMasker) -> None:
    lister = getattr(backend, "list_connections", None)
    try:
        conns: Iterable[Any] = lister() if callable(lister) else ()
        for conn in conns:
            register_connection(conn, into)
        lister = getattr(backend, "list_variables", None)
        for record in (lister() if callable(lister) else ()):
            register_nested(record.key, record.value, into)
    except Exception as err:  # noqa: BLE001 - nothing listed means nothing to register, not a failure
        log.debug("secrets backend %r listed nothing to mask: %s", getattr(backend, "name", backend), err)
