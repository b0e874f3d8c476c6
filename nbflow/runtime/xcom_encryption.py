"""`core.encrypt_xcom`: give the store's XCom codec the Fernet key, and re-encrypt XComs when the key rotates.

Called where a process opens the metadata database (the CLI's and kernels' Environment, the worker), so
an encrypted XCom is readable wherever XComs are read, and written encrypted wherever they are written.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbflow.configuration import Config
from nbflow.store.codec import PREFIX, XComCodec, install_codec

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def configure_xcom_encryption(config: Config) -> XComCodec:
    """Install the codec `config` describes: encrypting new values only with `core.encrypt_xcom`, decrypting always."""
    from nbflow.secrets.fernet import fernet_from_config

    codec = XComCodec(encrypt=config.getboolean("core", "encrypt_xcom"),
                      cipher_factory=lambda: fernet_from_config(config))
    install_codec(codec)
    return codec


def reencrypt_xcoms(session: "Session", fernet: Any, *, encrypt: bool) -> int:
    """Re-encrypt every encrypted XCom with `fernet`'s first key (and encrypt plain ones when `encrypt`);
    UndecryptableXComError names a value no configured key opens (the caller's transaction rolls back)."""
    from nbflow.store import xcoms as xcom_rows
    from nbflow.store.keys import TIKey

    codec = XComCodec(encrypt=True, cipher_factory=lambda: fernet)

    def recode(row: Any) -> str | None:
        if not row.value.startswith(PREFIX):
            return codec.encode(row.value) if encrypt else None
        codec.decode(row.value, TIKey(row.dag_id, row.task_id, row.run_id, row.map_index), row.key)  # names it
        return PREFIX + fernet.rotate(row.value[len(PREFIX):].encode("ascii")).decode("ascii")

    return xcom_rows.reencode_xcoms(session, recode)
