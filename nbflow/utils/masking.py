"""One secrets masker for every surface: logs, notebook outputs, CLI, widgets and pages."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

MASK = "***"
DEFAULT_SENSITIVE_WORDS = ("password", "secret", "passwd", "token", "api_key", "apikey", "private_key",
                           "credential", "authorization", "access_token")
_MIN_LENGTH = 4  # masking "a" or "no" would shred ordinary text


def _variants(text: str) -> set[str]:
    """The forms a secret takes on its way to an output: raw, URL-encoded (a URI's password), JSON-escaped."""
    import json
    from urllib.parse import quote, quote_plus

    return {text, quote(text, safe=""), quote_plus(text, safe=""), json.dumps(text)[1:-1]}


class SecretsMasker:
    """Replaces every registered secret in text with ***."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        self.sensitive_words: tuple[str, ...] = DEFAULT_SENSITIVE_WORDS

    def add(self, secret: Any) -> None:
        if isinstance(secret, dict):
            for value in secret.values():
                self.add(value)
            return
        if isinstance(secret, (list, tuple, set)):
            for value in secret:
                self.add(value)
            return
        if secret is None:
            return
        text = str(secret).strip()
        if len(text) < _MIN_LENGTH:
            return
        with self._lock:
            if text not in self._secrets:
                variants = _variants(text)
                self._secrets |= {v for v in variants if len(v) >= _MIN_LENGTH}
                self._pattern = None

    @property
    def secrets(self) -> frozenset[str]:
        """Every registered form of every secret."""
        with self._lock:
            return frozenset(self._secrets)

    def is_sensitive(self, name: str) -> bool:
        lowered = name.lower()
        return any(word in lowered for word in self.sensitive_words)

    def add_if_sensitive(self, name: str, value: Any) -> None:
        if self.is_sensitive(name):
            self.add(value)

    def redact(self, text: str) -> str:
        if not self._secrets or not text:
            return text
        pattern = self._pattern
        if pattern is None:
            with self._lock:
                ordered = sorted(self._secrets, key=len, reverse=True)
                pattern = self._pattern = re.compile("|".join(re.escape(s) for s in ordered))
        return pattern.sub(MASK, text)

    def redact_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: (MASK if self.is_sensitive(str(k)) and v else self.redact_value(v)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.redact_value(v) for v in value)
        return value

    def set_sensitive_words(self, words: Iterable[str]) -> None:
        self.sensitive_words = tuple(dict.fromkeys([*DEFAULT_SENSITIVE_WORDS, *(w.lower() for w in words if w)]))

    def clear(self) -> None:
        with self._lock:
            self._secrets.clear()
            self._pattern = None


masker = SecretsMasker()


def _unlock_after_fork() -> None:
    # Another thread (an attempt's output copier, a heartbeat's log line) may hold the lock at fork time;
    # the child, which has no such thread, would then wait for it forever at its first redact.
    masker._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_unlock_after_fork)


class MaskedFormatter(logging.Formatter):
    """A logging formatter whose every line (message, arguments, traceback) passes through the masker.

    Installed on each handler nbflow sets up, so a record that reaches a file or a terminal never
    carries a registered secret, whichever logger emitted it."""

    def format(self, record: logging.LogRecord) -> str:
        return masker.redact(super().format(record))


class MaskedStream(io.TextIOBase):
    """A text stream that masks what is written before passing it on (user code printing in nbflow's process)."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.inner.write(masker.redact(text))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()


@contextlib.contextmanager
def masked_stdio() -> Iterator[None]:
    """sys.stdout and sys.stderr masked while user code (a DAG callback) runs in this process."""
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = MaskedStream(old_out), MaskedStream(old_err)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = old_out, old_err


def mask_secret(secret: Any) -> None:
    """Airflow's mask_secret(): register a value to be hidden everywhere."""
    masker.add(secret)


def redact(text: str) -> str:
    return masker.redact(text)
