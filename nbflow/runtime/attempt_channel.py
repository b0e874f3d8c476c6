"""The line between a forked attempt process and the warm worker that supervises it.

The worker claims each attempt and records how it ended; the attempt process only runs the task.
It receives its start (workload, try number, run) over a Unix socket, asks the worker for the
XComs it pulls over the same socket, and sends back its outcome with the XComs it pushed. So an
attempt process opens no database connection: in a freshly forked process every page SQLAlchemy
touches is copied on write, which cost more than the attempt itself (as in Airflow 3, where task
processes reach the metadata only through their supervisor).

Messages are JSON lines. Worker → attempt: `{"start": ...}` once, then one `{"value": ...}` per
request. Attempt → worker: `{"get": ...}` requests, then `{"outcome": ..., "xcoms": [...]}`.
"""
from __future__ import annotations

import json
import socket
from dataclasses import asdict
from datetime import datetime
from typing import Any

from nbflow.runtime.run_info import AttemptOutcome, DagRunInfo
from nbflow.runtime.workload import Workload
from nbflow.runtime.xcom import HeldPushes
from nbflow.store.keys import TIKey

_DATE_FIELDS = ("logical_date", "data_interval_start", "data_interval_end", "start_date")


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message) + "\n").encode()


def start_message(workload: Workload, try_number: int, run: DagRunInfo,
                  upstream_values: dict[str, str] | None = None, max_tries: int | None = None) -> bytes:
    """`upstream_values`: the return values of upstream tasks, read when the attempt was claimed, so
    that pulling them (what every TaskFlow task does) needs no round trip to the worker."""
    fields = asdict(run)
    for name in _DATE_FIELDS:
        if fields[name] is not None:
            fields[name] = fields[name].isoformat()
    return encode({"start": {"workload": asdict(workload), "try_number": try_number, "run": fields,
                             "upstream_values": upstream_values or {}, "max_tries": max_tries}})


def read_start(message: dict[str, Any]) -> tuple[Workload, int, DagRunInfo, dict[str, str], int | None]:
    start = message["start"]
    fields = dict(start["run"])
    for name in _DATE_FIELDS:
        if fields[name] is not None:
            fields[name] = datetime.fromisoformat(fields[name])
    return (Workload(**start["workload"]), int(start["try_number"]), DagRunInfo(**fields),
            dict(start.get("upstream_values") or {}), start.get("max_tries"))


def outcome_message(outcome: AttemptOutcome, xcoms: list[tuple[TIKey, str, str]]) -> bytes:
    return encode({"outcome": asdict(outcome),
                   "xcoms": [[_key_fields(key), name, value] for key, name, value in xcoms]})


def read_outcome(message: dict[str, Any]) -> tuple[AttemptOutcome, list[tuple[TIKey, str, str]]]:
    fields = dict(message["outcome"])
    fields["skip_task_ids"] = tuple(fields["skip_task_ids"])
    xcoms = [(TIKey(*key), name, value) for key, name, value in message["xcoms"]]
    return AttemptOutcome(**fields), xcoms


class AttemptChannel:
    """The attempt process's end of the socket: one blocking request at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._reader = sock.makefile("rb")

    def receive(self) -> dict[str, Any] | None:
        """The next message from the worker; None when it closed the socket (nothing to run)."""
        line = self._reader.readline()
        return json.loads(line) if line else None

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def ask(self, request: dict[str, Any]) -> Any:
        self.send(encode({"get": request}))
        reply = self.receive()
        if reply is None:
            raise ConnectionError("the worker closed the attempt's channel")
        if "error" in reply:
            raise RuntimeError(f"the worker could not read XComs: {reply['error']}")
        return reply["value"]


class ChannelXComStore(HeldPushes):
    """The XComStore protocol for an attempt process: reads ask the worker, pushes go with the outcome."""

    def __init__(self, channel: AttemptChannel, *, known: dict[tuple[TIKey, str], str] | None = None) -> None:
        super().__init__()
        self._channel = channel
        self._known = known or {}  # values the worker sent with the start (upstream return values)

    def get(self, key: TIKey, name: str) -> str | None:
        held = self._pending.get((key, name)) or self._known.get((key, name))
        if held is not None:
            return held
        return self._channel.ask({"op": "get", "key": _key_fields(key), "name": name})  # type: ignore[no-any-return]

    def get_latest(self, key: TIKey, name: str) -> str | None:
        held = self._pending.get((key, name))
        if held is not None:
            return held
        return self._channel.ask({"op": "get_latest", "key": _key_fields(key), "name": name})  # type: ignore[no-any-return]

    def get_mapped(self, dag_id: str, run_id: str, task_id: str, name: str) -> list[str | None]:
        return self._channel.ask({"op": "get_mapped", "dag_id": dag_id, "run_id": run_id,  # type: ignore[no-any-return]
                                  "task_id": task_id, "name": name})

    def clear(self, key: TIKey) -> None:
        """Nothing to do: the worker deleted the instance's earlier XComs when it claimed the attempt."""


def answer(request: dict[str, Any], xcoms: Any) -> Any:
    """The worker's side of `ChannelXComStore`: the value a request asks for, read from `xcoms`."""
    op = request["op"]
    if op == "get":
        return xcoms.get(TIKey(*request["key"]), request["name"])
    if op == "get_latest":
        return xcoms.get_latest(TIKey(*request["key"]), request["name"])
    if op == "get_mapped":
        return xcoms.get_mapped(request["dag_id"], request["run_id"], request["task_id"], request["name"])
    raise ValueError(f"unknown request {op!r}")


def _key_fields(key: TIKey) -> list[Any]:
    return [key.dag_id, key.task_id, key.run_id, key.map_index]
