"""The attempt process's side of its socket to the worker."""
from __future__ import annotations

import json
import socket
import threading

from nbflow.runtime.attempt_channel import AttemptChannel, ChannelXComStore, encode
from nbflow.store.keys import TIKey

UP = TIKey("etl", "extract", "manual__1", -1)


def test_values_sent_with_the_start_are_read_without_asking_the_worker() -> None:
    ours, theirs = socket.socketpair()
    store = ChannelXComStore(AttemptChannel(theirs), known={(UP, "return_value"): "41"})
    assert store.get(UP, "return_value") == "41"
    ours.setblocking(False)
    try:
        asked = ours.recv(1024)
    except BlockingIOError:
        asked = b""
    assert asked == b""  # nothing went to the worker


def test_other_values_are_asked_of_the_worker() -> None:
    ours, theirs = socket.socketpair()
    store = ChannelXComStore(AttemptChannel(theirs), known={(UP, "return_value"): "41"})
    requests: list[dict] = []

    def worker() -> None:
        line = ours.makefile("rb").readline()
        requests.append(json.loads(line))
        ours.sendall(encode({"value": "7"}))

    thread = threading.Thread(target=worker)
    thread.start()
    assert store.get(UP, "other") == "7"
    thread.join(timeout=10)
    assert requests == [{"get": {"op": "get", "key": ["etl", "extract", "manual__1", -1], "name": "other"}}]


def test_an_attempt_reads_its_own_pushes_before_anything_else() -> None:
    _, theirs = socket.socketpair()
    store = ChannelXComStore(AttemptChannel(theirs), known={(UP, "return_value"): "41"})
    store.set(UP, "return_value", "42")
    assert store.get(UP, "return_value") == "42"
    assert store.take_pending() == [(UP, "return_value", "42")]
