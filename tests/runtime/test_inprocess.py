"""run_dag_in_process: dependency order, events, task subsets, whole-run outcomes."""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

from nbflow.authoring.dag import DAG
from nbflow.decorators import task
from nbflow.operators.bash import BashOperator
from nbflow.operators.empty import EmptyOperator
from nbflow.operators.python import PythonOperator
from nbflow.runtime.inprocess import make_run_info, run_dag_in_process
from tests.authoring.helpers import run

UTC = dt.timezone.utc


def order_dag(out: Path) -> DAG:
    def note(name: str) -> Any:
        def write() -> None:
            with out.open("a") as f:
                f.write(name + "\n")
        return write

    with DAG("order") as d:
        # Defined in reverse so that only the dependencies give the order.
        tasks = {n: PythonOperator(task_id=n, python_callable=note(n)) for n in ["d", "c", "b", "a"]}
        tasks["a"] >> [tasks["b"], tasks["c"]] >> tasks["d"]
    return d


def test_tasks_run_upstream_first(tmp_path: Path) -> None:
    out = tmp_path / "order.txt"
    ran = run(order_dag(out), tmp_path)
    lines = out.read_text().split()
    assert ran.state == "success"
    assert lines[0] == "a" and lines[-1] == "d" and sorted(lines[1:3]) == ["b", "c"]


def test_events_report_each_task_start_and_end(tmp_path: Path) -> None:
    events: list[Any] = []
    with DAG("events") as d:
        EmptyOperator(task_id="a") >> BashOperator(task_id="b", bash_command="exit 1")
    result = run_dag_in_process(d, run=make_run_info(d, None, {}), log_folder=tmp_path, on_event=events.append)
    assert [(e.kind, e.task_id, e.state) for e in events] == [
        ("started", "a", "running"), ("finished", "a", "success"),
        ("started", "b", "running"), ("finished", "b", "failed")]
    assert "exit code 1" in events[-1].error
    assert result.state == "failed" and result.failed_task == "b"


def test_echo_receives_the_task_output(tmp_path: Path) -> None:
    with DAG("echo") as d:
        BashOperator(task_id="b", bash_command="echo to the terminal")
    echo = io.StringIO()
    run_dag_in_process(d, run=make_run_info(d, None, {}), log_folder=tmp_path, echo=echo)
    assert "to the terminal" in echo.getvalue()


def test_a_subset_of_tasks_runs_alone(tmp_path: Path) -> None:
    out = tmp_path / "order.txt"
    d = order_dag(out)
    result = run_dag_in_process(d, run=make_run_info(d, None, {}), log_folder=tmp_path, task_ids={"b", "d"})
    assert result.state == "success"
    assert sorted(out.read_text().split()) == ["b", "d"]
    assert {r["task_id"] for r in result.tasks} == {"b", "d"}


def noting(out: Path) -> Any:
    """`note(name)`: a callable that appends `name` to `out` when its task runs."""
    def note(name: str) -> Any:
        def write() -> None:
            with out.open("a") as f:
                f.write(name + "\n")
        return write
    return note


def test_higher_priority_weight_runs_first_among_ready_tasks(tmp_path: Path) -> None:
    out = tmp_path / "order.txt"
    note = noting(out)
    with DAG("priority") as d:
        PythonOperator(task_id="low", python_callable=note("low"), priority_weight=1)
        PythonOperator(task_id="high", python_callable=note("high"), priority_weight=10)
    run(d, tmp_path)
    assert out.read_text().split() == ["high", "low"]


def test_a_task_with_more_work_downstream_runs_first_by_default(tmp_path: Path) -> None:
    out = tmp_path / "order.txt"
    note = noting(out)
    with DAG("weights") as d:
        alone = PythonOperator(task_id="alone", python_callable=note("alone"), priority_weight=2)
        head = PythonOperator(task_id="head", python_callable=note("head"))
        head >> [PythonOperator(task_id=f"tail{i}", python_callable=note(f"tail{i}")) for i in range(2)]
        fixed = PythonOperator(task_id="fixed", python_callable=note("fixed"), priority_weight=2, weight_rule="absolute")
        fixed >> PythonOperator(task_id="after_fixed", python_callable=note("after_fixed"), priority_weight=5)
    run(d, tmp_path)
    # head totals 1 + 2 downstream = 3 > alone's 2; fixed counts only its own 2 (ties go by definition order)
    assert out.read_text().split()[:3] == ["head", "alone", "fixed"]


def test_run_id_and_interval_of_a_manual_run(tmp_path: Path) -> None:
    with DAG("ids", schedule="@daily", start_date=dt.datetime(2025, 1, 1)) as d:
        pass
    info = make_run_info(d, dt.datetime(2025, 1, 2, tzinfo=UTC), {"a": 1})
    assert info.run_id == "manual__2025-01-02T00:00:00+00:00"
    assert info.conf == {"a": 1} and info.run_type == "manual"
    assert (info.data_interval_start, info.data_interval_end) == \
        (dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2025, 1, 2, tzinfo=UTC)), "Airflow: the last complete day"


def test_a_mapped_instance_whose_arguments_are_invalid_fails_only_that_task(tmp_path: Path) -> None:
    with DAG("bad_instance") as d:
        configs = PythonOperator(task_id="configs", python_callable=lambda: [{"bash_command": "echo ok"}, {"nope": 1}])
        mapped = BashOperator.partial(task_id="cmd").expand_kwargs(configs.output)
        mapped >> EmptyOperator(task_id="after", trigger_rule="all_done")
        EmptyOperator(task_id="independent")
    ran = run(d, tmp_path)
    assert ran.states["cmd[0]"] == "success"
    assert ran.states["cmd[1]"] == "failed"
    assert ran.states["after"] == "success" and ran.states["independent"] == "success"
    assert "map index 1 could not be built" in ran.log("cmd", map_index=1)


def test_the_example_pipeline_runs_end_to_end(tmp_path: Path) -> None:
    with DAG("pipeline", schedule="@daily", start_date=dt.datetime(2025, 1, 1),
             default_args={"retries": 1, "retry_delay": 0.01}) as d:
        b = BashOperator(task_id="b", bash_command="echo {{ ds }} {{ macros.ds_add(ds, 1) }}")

        @task
        def add(x: int) -> int:
            return x + 1

        @task(multiple_outputs=True)
        def two() -> dict[str, int]:
            return {"a": 1, "b": 2}

        t = two()
        r = add(add(t["a"]))

        @task
        def times_ten(v: int) -> int:
            return v * 10

        @task
        def total(values: list[int]) -> int:
            return sum(values)

        tt = total(times_ten.expand(v=[1, 2, 3]))
        b >> t
        [r, tt] >> EmptyOperator(task_id="end", trigger_rule="none_failed_min_one_success")
    ran = run(d, tmp_path)
    assert ran.state == "success"
    assert ran.xcom("b") == "2025-01-02 2025-01-03"
    assert ran.xcom("add__1") == 3 and ran.xcom("total") == 60
    assert ran.states["end"] == "success"
