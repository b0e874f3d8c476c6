"""Statements built once per process and reused with bound parameters.

Building a SQLAlchemy statement (coercing every column and operator) costs about ten times what
executing it on SQLite costs. The hot paths — an attempt's claim and result, the mini-scheduler,
the scheduler's reads — run the same few shapes thousands of times, so each shape is built once
here, keyed by what makes it differ, and only its parameters change between calls.
"""
from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table, and_, bindparam

from nbflow.store.keys import TIKey

S = TypeVar("S")

_statements: dict[Hashable, Any] = {}


def prepared(key: Hashable, build: Callable[[], S]) -> S:
    """The statement cached under `key`, built by `build()` on first use."""
    try:
        return _statements[key]  # type: ignore[no-any-return]
    except KeyError:
        statement = _statements[key] = build()
        return statement


def key_where(table: Table) -> ColumnElement[bool]:
    """One task instance (or its XComs) by key, with the key as parameters (see `key_params`)."""
    return and_(table.c.dag_id == bindparam("k_dag_id"), table.c.task_id == bindparam("k_task_id"),
                table.c.run_id == bindparam("k_run_id"), table.c.map_index == bindparam("k_map_index"))


def key_params(key: TIKey) -> dict[str, Any]:
    return {"k_dag_id": key.dag_id, "k_task_id": key.task_id, "k_run_id": key.run_id, "k_map_index": key.map_index}


def tasks_where(table: Table) -> ColumnElement[bool]:
    """Several tasks of one run at one map index: `k_task_ids` is an expanding parameter."""
    return and_(table.c.dag_id == bindparam("k_dag_id"), table.c.run_id == bindparam("k_run_id"),
                table.c.map_index == bindparam("k_map_index"),
                table.c.task_id.in_(bindparam("k_task_ids", expanding=True)))


def same_run(keys: list[TIKey]) -> bool:
    """Whether every key has the first key's DAG, run and map index (so `tasks_where` selects them)."""
    first = keys[0]
    return all(k.dag_id == first.dag_id and k.run_id == first.run_id and k.map_index == first.map_index
               for k in keys)


def tasks_params(keys: list[TIKey]) -> dict[str, Any]:
    first = keys[0]
    return {"k_dag_id": first.dag_id, "k_run_id": first.run_id, "k_map_index": first.map_index,
            "k_task_ids": sorted({k.task_id for k in keys})}
