"""How an XCom value is kept in its row: its JSON text, or `fernet:<token>` when `core.encrypt_xcom` is on.

The store never imports the secrets layer: the runtime installs a codec with a cipher factory (see
`runtime/xcom_encryption.py`), read only when a value is encrypted or decrypted, so a process that
never meets an encrypted XCom never loads a key. A stored JSON text never starts with `fernet:`
(a JSON string starts with a quote), so rows written before encryption was turned on stay readable,
and so do encrypted rows after it is turned off.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from nbflow.exceptions import UndecryptableXComError
from nbflow.store.keys import TIKey

PREFIX = "fernet:"


class Cipher(Protocol):
    """What encrypts: `cryptography.fernet.MultiFernet` (the first key encrypts, any decrypts)."""

    def encrypt(self, data: bytes) -> bytes: ...

    def decrypt(self, token: bytes) -> bytes: ...


@dataclass
class XComCodec:
    """Encodes values for their rows and decodes them back; `encrypt` says whether new values are encrypted."""

    encrypt: bool = False
    cipher_factory: Callable[[], Cipher] | None = None
    _cipher: Cipher | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cipher(self) -> Cipher:
        with self._lock:
            if self._cipher is None:
                if self.cipher_factory is None:
                    raise LookupError("no Fernet key is configured in this process")
                self._cipher = self.cipher_factory()
            return self._cipher

    def encode(self, value_json: str) -> str:
        """The text to store for `value_json`."""
        if not self.encrypt:
            return value_json
        return PREFIX + self.cipher().encrypt(value_json.encode("utf-8")).decode("ascii")

    def decode(self, stored: str, ti: TIKey, key: str) -> str:
        """The JSON text of a stored value; UndecryptableXComError when no configured key opens it."""
        if not stored.startswith(PREFIX):
            return stored
        try:
            cipher = self.cipher()
        except Exception as err:  # noqa: BLE001 - a missing or malformed key: say which value cannot be read
            raise UndecryptableXComError(ti.dag_id, ti.run_id, ti.task_id, ti.map_index, key,
                                         f"cannot be read: {err}") from None
        try:
            return cipher.decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
        except Exception:  # noqa: BLE001 - InvalidToken: written with a key no longer configured
            raise UndecryptableXComError(ti.dag_id, ti.run_id, ti.task_id, ti.map_index, key,
                                         "none of the keys in core.fernet_key decrypts it") from None


_codec = XComCodec()


def install_codec(codec: XComCodec) -> None:
    """Use `codec` for every XCom this process writes or reads from now on."""
    global _codec
    _codec = codec


def current_codec() -> XComCodec:
    return _codec
