"""`nbflow tasks test`: one task in this process, dependencies ignored, its log on the terminal."""
from __future__ import annotations

from tests.cli.conftest import Cli
from tests.conftest import write_dag

PIPELINE = """
    from datetime import datetime
    from nbflow import DAG
    from nbflow.operators.bash import BashOperator
    from nbflow.operators.python import PythonOperator
    from nbflow.sdk import task

    def produce():
        return 41

    def consume(ti):
        print(f"got {ti.xcom_pull(task_ids='produce')}")

    def explode():
        raise KeyError("missing column")

    with DAG("pipeline", start_date=datetime(2025, 1, 1), params={"who": "world"}):
        p = PythonOperator(task_id="produce", python_callable=produce)
        c = PythonOperator(task_id="consume", python_callable=consume)
        hello = BashOperator(task_id="hello", bash_command="echo hello {{ params.who }} on {{ ds }}")
        PythonOperator(task_id="explode", python_callable=explode)
        p >> c >> hello

        @task
        def square(x):
            print(f"square of {x} is {x * x}")

        square.expand(x=[2, 3, 4])
"""


def test_runs_one_task_with_templates_and_prints_its_log(nbflow: Cli) -> None:
    write_dag(nbflow.env.dags, "pipeline.py", PIPELINE)
    done = nbflow("tasks", "test", "pipeline", "hello", "2025-02-03", "--conf", '{"who": "nbflow"}')
    assert done.code == 0, done.err
    assert "hello nbflow on 2025-02-03" in done.out
    assert "task hello: success in" in done.err and "attempt=1.log" in done.err


def test_upstream_xcoms_are_absent(nbflow: Cli) -> None:
    write_dag(nbflow.env.dags, "pipeline.py", PIPELINE)
    done = nbflow("tasks", "test", "pipeline", "consume")
    assert done.code == 0 and "got None" in done.out


def test_failing_task_exits_1_with_its_error_and_log(nbflow: Cli) -> None:
    write_dag(nbflow.env.dags, "pipeline.py", PIPELINE)
    done = nbflow("tasks", "test", "pipeline", "explode")
    assert done.code == 1
    assert done.error_line.startswith("error: task explode failed: KeyError: 'missing column'; log: ")
    assert "Traceback" in done.out


def test_unknown_task_lists_the_dags_tasks(nbflow: Cli) -> None:
    write_dag(nbflow.env.dags, "pipeline.py", PIPELINE)
    done = nbflow("tasks", "test", "pipeline", "nope")
    assert done.code == 1
    assert done.error_line == ("error: DAG 'pipeline' has no task 'nope'; its tasks are: consume, explode, "
                               "hello, produce, square")


def test_mapped_task_needs_a_map_index_in_range(nbflow: Cli) -> None:
    write_dag(nbflow.env.dags, "pipeline.py", PIPELINE)
    missing = nbflow("tasks", "test", "pipeline", "square")
    assert missing.code == 1
    assert missing.error_line == ("error: task 'square' is mapped into 3 instance(s); pass --map-index N with N "
                                  "from 0 to 2")
    done = nbflow("tasks", "test", "pipeline", "square", "--map-index", "1")
    assert done.code == 0, done.err
    assert "square of 3 is 9" in done.out and "task square[1]: success" in done.err
