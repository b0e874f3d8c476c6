"""PythonOperator: arguments, templates_dict, the context by parameter name or `**context`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nbflow.authoring.dag import DAG
from nbflow.exceptions import DagDefinitionError
from nbflow.operators.python import PythonOperator
from tests.authoring.helpers import run


def test_op_args_and_op_kwargs_are_passed(tmp_path: Path) -> None:
    with DAG("args") as d:
        PythonOperator(task_id="call", python_callable=lambda a, b, c=0: [a, b, c], op_args=[1, 2],
                       op_kwargs={"c": 3})
    assert run(d, tmp_path).xcom("call") == [1, 2, 3]


def test_op_args_and_op_kwargs_are_templated(tmp_path: Path) -> None:
    with DAG("templated_args") as d:
        PythonOperator(task_id="call", python_callable=lambda day, nested: f"{day} {nested}",
                       op_args=["{{ ds }}"], op_kwargs={"nested": {"run": "{{ run_id }}"}})
    ran = run(d, tmp_path)
    assert ran.xcom("call") == f"2025-01-02 {{'run': '{ran.result.run.run_id}'}}"


def test_templates_dict_is_rendered_and_reaches_the_callable(tmp_path: Path) -> None:
    def use(templates_dict: dict[str, str]) -> str:
        return templates_dict["day"] + "/" + templates_dict["next"]

    with DAG("templates_dict") as d:
        PythonOperator(task_id="use", python_callable=use,
                       templates_dict={"day": "{{ ds_nodash }}", "next": "{{ macros.ds_add(ds, 1) }}"})
    assert run(d, tmp_path).xcom("use") == "20250102/2025-01-03"


def test_context_entries_are_given_by_parameter_name(tmp_path: Path) -> None:
    def named(ds: str, ti: Any, params: dict[str, Any], extra: int) -> str:
        return f"{ds} {ti.task_id} {params['p']} {extra}"

    with DAG("by_name", params={"p": "P"}) as d:
        PythonOperator(task_id="named", python_callable=named, op_kwargs={"extra": 7})
    assert run(d, tmp_path).xcom("named") == "2025-01-02 named P 7"


def test_the_whole_context_is_given_to_a_callable_taking_kwargs(tmp_path: Path) -> None:
    def everything(first: int, **context: Any) -> list[Any]:
        return [first, context["ds"], context["dag"].dag_id, context["task"].task_id,
                sorted(k for k in ("logical_date", "data_interval_start", "run_id", "ti") if k in context)]

    with DAG("kwargs_ctx") as d:
        PythonOperator(task_id="everything", python_callable=everything, op_args=[1])
    assert run(d, tmp_path).xcom("everything") == [
        1, "2025-01-02", "kwargs_ctx", "everything", ["data_interval_start", "logical_date", "run_id", "ti"]]


def test_an_op_arg_filling_a_parameter_named_like_a_context_key_wins(tmp_path: Path) -> None:
    with DAG("positional_ds") as d:
        PythonOperator(task_id="f", python_callable=lambda ds: ds, op_args=["mine"])
    assert run(d, tmp_path).xcom("f") == "mine"


def test_return_value_is_the_xcom_and_is_logged(tmp_path: Path) -> None:
    with DAG("returns") as d:
        PythonOperator(task_id="r", python_callable=lambda: {"rows": 3})
        PythonOperator(task_id="quiet", python_callable=lambda: 5, show_return_value_in_logs=False)
        PythonOperator(task_id="no_push", python_callable=lambda: 5, do_xcom_push=False)
    ran = run(d, tmp_path)
    assert ran.xcom("r") == {"rows": 3}
    assert "Returned value was: {'rows': 3}" in ran.log("r")
    assert "Returned value" not in ran.log("quiet")
    assert ran.xcom("no_push") is None


def test_print_output_and_the_task_logger_reach_the_attempt_log(tmp_path: Path) -> None:
    def chatty(ti: Any) -> None:
        print("printed line")
        ti.log.info("logged line")

    with DAG("chatty") as d:
        PythonOperator(task_id="chatty", python_callable=chatty)
    log = run(d, tmp_path).log("chatty")
    assert "printed line" in log and "logged line" in log


def test_xcom_push_and_pull_between_tasks(tmp_path: Path) -> None:
    def push(ti: Any) -> None:
        ti.xcom_push(key="rows", value=[1, 2])

    def pull(ti: Any) -> Any:
        return [ti.xcom_pull(task_ids="push", key="rows"), ti.xcom_pull(task_ids=["push"], key="rows"),
                ti.xcom_pull(task_ids="push", key="missing", default="d")]

    with DAG("push_pull") as d:
        PythonOperator(task_id="push", python_callable=push) >> PythonOperator(task_id="pull", python_callable=pull)
    assert run(d, tmp_path).xcom("pull") == [[1, 2], [[1, 2]], "d"]


def test_an_exception_fails_the_task_with_its_traceback_in_the_log(tmp_path: Path) -> None:
    def boom() -> None:
        raise ValueError("bad row 7")

    with DAG("boom") as d:
        PythonOperator(task_id="boom", python_callable=boom)
    ran = run(d, tmp_path)
    assert ran.states == {"boom": "failed"} and ran.state == "failed"
    assert "ValueError: bad row 7" in ran.log("boom")
    assert 'in boom\n    raise ValueError("bad row 7")' in ran.log("boom")


def test_a_callable_that_is_not_callable_is_a_definition_error() -> None:
    with pytest.raises(DagDefinitionError, match="'p'.*python_callable must be callable"):
        PythonOperator(task_id="p", python_callable="not a function")  # type: ignore[arg-type]


def test_get_current_context_gives_the_running_tasks_context(tmp_path: Path) -> None:
    from nbflow.decorators import task
    from nbflow.operators.python import get_current_context

    def helper() -> str:  # not handed the context: asks for it
        context = get_current_context()
        return f"{context['ti'].task_id} {context['ds']}"

    with DAG("current_context") as d:
        @task
        def uses_helper() -> str:
            return helper()

        uses_helper()
        PythonOperator(task_id="classic", python_callable=helper)
    ran = run(d, tmp_path)
    assert ran.xcom("uses_helper") == "uses_helper 2025-01-02"
    assert ran.xcom("classic") == "classic 2025-01-02"


def test_get_current_context_outside_a_task_is_an_error() -> None:
    from nbflow.exceptions import NbflowException
    from nbflow.operators.python import get_current_context

    with pytest.raises(NbflowException, match="outside a running task"):
        get_current_context()


def test_airflow_2_provide_context_is_accepted_and_the_context_still_given(tmp_path: Path) -> None:
    with DAG("provide_context") as d:
        PythonOperator(task_id="p", python_callable=lambda **context: context["ds"], provide_context=True)
    assert run(d, tmp_path).xcom("p") == "2025-01-02"


def test_templates_dict_value_naming_a_template_file_is_read_and_rendered(tmp_path: Path) -> None:
    from tests.authoring.helpers import load_dag
    from tests.conftest import write_dag

    dags = tmp_path / "dags"
    write_dag(dags, "sql/daily.sql", "SELECT * FROM t WHERE day = '{{ ds }}'\n")
    write_dag(dags, "config.json", '{"day": "{{ ds_nodash }}"}\n')
    path = write_dag(dags, "sql_dag.py", """
        from nbflow import DAG
        from nbflow.operators.python import PythonOperator

        def show(templates_dict):
            return [templates_dict["query"].strip(), templates_dict["config"].strip()]

        with DAG("sql_dag") as dag:
            PythonOperator(task_id="show", python_callable=show, templates_exts=[".sql", ".json"],
                           templates_dict={"query": "sql/daily.sql", "config": "config.json"})
    """)
    ran = run(load_dag(path, "sql_dag"), tmp_path)
    assert ran.xcom("show") == ["SELECT * FROM t WHERE day = '2025-01-02'", '{"day": "20250102"}']
