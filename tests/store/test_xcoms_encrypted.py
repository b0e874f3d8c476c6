"""XComs at rest encrypted with Fernet (`core.encrypt_xcom`), on SQLite and Postgres.

The store's codec is given a cipher (a real `MultiFernet`); the rows are read back past nbflow to see
what is really stored.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy import text

from nbflow.exceptions import UndecryptableXComError
from nbflow.runtime.xcom_encryption import reencrypt_xcoms
from nbflow.store.codec import XComCodec, current_codec, install_codec
from nbflow.store.xcoms import get_values_of_tasks, get_xcom, get_xcoms, set_xcom

from .conftest import Db
from .helpers import key, make_run

SECRET = {"token": "tok-4a7b9c1d2e3f"}


@pytest.fixture
def codec() -> Iterator[None]:
    """Whatever codec a test installs is undone afterwards."""
    before = current_codec()
    yield
    install_codec(before)


def use(*keys: bytes, encrypt: bool = True) -> MultiFernet:
    fernet = MultiFernet([Fernet(k) for k in keys])
    install_codec(XComCodec(encrypt=encrypt, cipher_factory=lambda: fernet))
    return fernet


def stored(db: Db) -> list[str]:
    with db.tx() as s:
        return [value for (value,) in s.execute(text("SELECT value FROM xcom ORDER BY task_id"))]


def test_an_encrypted_xcom_is_stored_as_a_fernet_token_and_read_back_as_json(db: Db, codec: None) -> None:
    use(Fernet.generate_key())
    with db.tx() as s:
        make_run(s, tasks=("extract",))
        set_xcom(s, key("extract"), "return_value", json.dumps(SECRET))
    [raw] = stored(db)
    assert raw.startswith("fernet:") and "tok-4a7b9c1d2e3f" not in raw
    with db.tx() as s:
        assert json.loads(get_xcom(s, key("extract")).value) == SECRET
        assert json.loads(get_xcoms(s, "etl", "manual__2025-01-02")[0].value) == SECRET
        assert json.loads(get_values_of_tasks(s, "etl", "manual__2025-01-02", ["extract"])["extract"]) == SECRET


def test_plain_xcoms_written_before_encryption_stay_readable(db: Db, codec: None) -> None:
    with db.tx() as s:
        make_run(s, tasks=("old",))
        set_xcom(s, key("old"), "return_value", "42")
    use(Fernet.generate_key())
    with db.tx() as s:
        assert get_xcom(s, key("old")).value == "42"


def test_encrypted_xcoms_stay_readable_after_encryption_is_turned_off(db: Db, codec: None) -> None:
    secret_key = Fernet.generate_key()
    use(secret_key)
    with db.tx() as s:
        make_run(s, tasks=("a",))
        set_xcom(s, key("a"), "return_value", "1")
    use(secret_key, encrypt=False)
    with db.tx() as s:
        set_xcom(s, key("b"), "return_value", "2")
        assert [row.value for row in get_xcoms(s, "etl", "manual__2025-01-02", ["a", "b"])] == ["1", "2"]
    assert stored(db)[1] == "2"


def test_reading_with_the_wrong_key_names_the_xcom_and_the_fix(db: Db, codec: None) -> None:
    use(Fernet.generate_key())
    with db.tx() as s:
        make_run(s, tasks=("extract",))
        set_xcom(s, key("extract"), "return_value", "1")
    use(Fernet.generate_key())
    with db.tx() as s, pytest.raises(UndecryptableXComError) as caught:
        get_xcom(s, key("extract"))
    message = str(caught.value)
    assert "XCom 'return_value' of task extract of run manual__2025-01-02 of DAG 'etl'" in message
    assert "core.fernet_key" in message and "\n" not in message


def test_reading_without_any_key_says_so(db: Db, codec: None) -> None:
    use(Fernet.generate_key())
    with db.tx() as s:
        make_run(s, tasks=("extract",))
        set_xcom(s, key("extract"), "return_value", "1")
    install_codec(XComCodec())
    with db.tx() as s, pytest.raises(UndecryptableXComError, match="no Fernet key is configured"):
        get_values_of_tasks(s, "etl", "manual__2025-01-02", ["extract"])


def test_rotation_re_encrypts_with_the_new_key_and_encrypts_plain_values(db: Db, codec: None) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    use(old)
    with db.tx() as s:
        make_run(s, tasks=("a", "b"))
        set_xcom(s, key("a"), "return_value", json.dumps(SECRET))
    install_codec(XComCodec())
    with db.tx() as s:
        set_xcom(s, key("b"), "return_value", "7")  # written while encryption was off
    with db.tx() as s:
        assert reencrypt_xcoms(s, MultiFernet([Fernet(new), Fernet(old)]), encrypt=True) == 2
    use(new)  # the old key is gone
    with db.tx() as s:
        assert json.loads(get_xcom(s, key("a")).value) == SECRET and get_xcom(s, key("b")).value == "7"
    assert all(value.startswith("fernet:") for value in stored(db))


def test_rotation_stops_at_an_xcom_no_key_decrypts_and_changes_nothing(db: Db, codec: None) -> None:
    use(Fernet.generate_key())
    with db.tx() as s:
        make_run(s, tasks=("a",))
        set_xcom(s, key("a"), "return_value", "1")
    before = stored(db)
    with pytest.raises(UndecryptableXComError, match="task a of run"), db.tx() as s:
        reencrypt_xcoms(s, MultiFernet([Fernet(Fernet.generate_key())]), encrypt=True)
    assert stored(db) == before
