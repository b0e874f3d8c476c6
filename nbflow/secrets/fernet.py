"""Fernet keys for values stored encrypted in the metadata database.

`core.fernet_key` holds one key or several, comma-separated: the first encrypts, every one may
decrypt, so a key is rotated by putting the new one first, running `rotate_fernet_key`, then
dropping the old one. When the setting is empty, `ensure_fernet_key` generates a key into
`$NBFLOW_HOME/fernet.key` once and reads it back every later time.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from nbflow.exceptions import NbflowConfigException

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

    from nbflow.configuration import Config

KEY_FILE_NAME = "fernet.key"


def key_file(config: "Config") -> Path:
    """Where a generated key is kept: `$NBFLOW_HOME/fernet.key`."""
    return config.home / KEY_FILE_NAME


def generate_fernet_key() -> str:
    """A new random Fernet key (32 url-safe base64-encoded bytes)."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


def ensure_fernet_key(config: "Config") -> str:
    """The configured key(s), or the key in $NBFLOW_HOME/fernet.key, generated there on first use.

    Safe when several processes start at once: the file is created exclusively, so exactly one
    of them writes it and the others read what it wrote.
    """
    configured = str(config.get("core", "fernet_key") or "").strip()
    if configured:
        return configured
    path = key_file(config)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = generate_fernet_key()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process won the race; read its key below
        else:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(key + "\n")
            return key
    try:
        text = path.read_text(encoding="ascii").strip()
    except OSError as err:
        raise NbflowConfigException(f"cannot read the Fernet key file {path}: {err}; set core.fernet_key "
                                    f"(or NBFLOW__CORE__FERNET_KEY) instead") from err
    if not text:
        # The writer may be between creating and writing the file; an empty file otherwise.
        raise NbflowConfigException(f"the Fernet key file {path} is empty; delete it only if nothing was "
                                    f"encrypted with it yet, or restore the key from a backup")
    return text


def load_fernet(keys: str) -> "MultiFernet":
    """A MultiFernet over comma-separated `keys`: the first encrypts, any may decrypt."""
    from cryptography.fernet import Fernet, MultiFernet

    parts = [part.strip() for part in keys.split(",") if part.strip()]
    if not parts:
        raise NbflowConfigException("core.fernet_key is empty; give one key or several, comma-separated")
    fernets = []
    for number, part in enumerate(parts, start=1):
        try:
            fernets.append(Fernet(part.encode("ascii")))
        except (ValueError, UnicodeEncodeError):
            raise NbflowConfigException(
                f"core.fernet_key: key {number} of {len(parts)} is not a Fernet key (32 url-safe "
                f"base64-encoded bytes); generate one with `python -c \"from cryptography.fernet import "
                f"Fernet; print(Fernet.generate_key().decode())\"`") from None
    return MultiFernet(fernets)


def fernet_from_config(config: "Config") -> "MultiFernet":
    """The MultiFernet of this configuration, generating the key file on first use."""
    return load_fernet(ensure_fernet_key(config))
