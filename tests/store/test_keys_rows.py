"""Keys and row snapshots: the values the store hands to other layers."""
from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

import nbflow.store
from nbflow.store import models, rows
from nbflow.store.keys import TaskSpec, TIKey

SNAPSHOTS = {
    models.DagORM: rows.DagRow, models.ImportErrorORM: rows.ImportErrorRow, models.DagRunORM: rows.DagRunRow,
    models.TaskInstanceORM: rows.TaskInstanceRow, models.TaskInstanceHistoryORM: rows.TaskInstanceHistoryRow,
    models.TaskRescheduleORM: rows.TaskRescheduleRow,
    models.XComORM: rows.XComRow, models.PoolORM: rows.PoolRow, models.ConnectionORM: rows.ConnectionRow,
    models.VariableORM: rows.VariableRow, models.JobORM: rows.JobRow,
    models.SerializedDagORM: rows.SerializedDagRow, models.DagFileORM: rows.DagFileRow,
}


def test_ti_key_reads_dag_task_and_run() -> None:
    assert str(TIKey("etl", "load", "manual__2025-01-02")) == "etl.load[manual__2025-01-02]"


def test_ti_key_shows_map_index_when_mapped() -> None:
    assert str(TIKey("etl", "load", "manual__2025-01-02", 3)) == "etl.load[manual__2025-01-02][3]"


def test_ti_key_is_hashable_frozen_and_picklable() -> None:
    key = TIKey("etl", "load", "r1")
    assert {key: 1}[TIKey("etl", "load", "r1", -1)] == 1
    assert pickle.loads(pickle.dumps(key)) == key
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.task_id = "other"  # type: ignore[misc]


def test_task_spec_defaults_match_airflow() -> None:
    spec = TaskSpec("extract")
    assert (spec.map_index, spec.max_tries, spec.pool, spec.pool_slots, spec.queue) == (
        -1, 0, "default_pool", 1, "default")


@pytest.mark.parametrize("orm", list(SNAPSHOTS), ids=lambda orm: orm.__tablename__)
def test_each_snapshot_has_exactly_its_tables_columns(orm: type) -> None:
    columns = [c.name for c in orm.__table__.columns]  # type: ignore[attr-defined]
    assert [f.name for f in dataclasses.fields(SNAPSHOTS[orm])] == columns


def test_every_table_has_a_snapshot() -> None:
    assert set(models.Base.metadata.tables) == {orm.__tablename__ for orm in SNAPSHOTS}  # type: ignore[attr-defined]


def test_connection_and_variable_reprs_hide_values() -> None:
    conn = rows.ConnectionRow(1, "wh", "postgres", None, "db", None, "etl", "s3cret", 5432, '{"k": "s3cret"}',
                              False, False)
    var = rows.VariableRow(1, "token", "s3cret", None, False)
    assert "s3cret" not in repr(conn) and "s3cret" not in repr(var)


def test_importing_the_store_opens_no_database_reads_no_config_starts_no_thread(tmp_path: Path) -> None:
    code = ("import threading, sys\n"
            "import nbflow.store, nbflow.store.migrate, nbflow.store.dags, nbflow.store.runs\n"
            "import nbflow.store.task_instances, nbflow.store.ti_state, nbflow.store.xcoms\n"
            "import nbflow.store.pools, nbflow.store.jobs, nbflow.store.connections\n"
            "assert threading.active_count() == 1, threading.enumerate()\n"
            "assert 'nbflow.authoring' not in sys.modules and 'nbflow.runtime' not in sys.modules\n")
    repo = Path(nbflow.store.__file__).parents[2]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo), "HOME": str(tmp_path),
           # a config file that does not exist: reading configuration would raise
           "NBFLOW_CONFIG": str(tmp_path / "missing.toml"), "NBFLOW_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []  # no database file, no home folder
