"""DAG files written for Airflow, in the style of its tutorial and example DAGs, run after the rename.

Each file is kept here as Airflow users write it (`from airflow import DAG`, `AirflowSkipException`, ...),
passed through the case-preserving rename airflow→nbflow, Airflow→Nbflow, AIRFLOW→NBFLOW, written to a
dags folder, loaded as a DAG file and run in process.
"""
from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from nbflow.authoring.dag import DAG
from nbflow.runtime.run_info import DagRunInfo
from tests.authoring.helpers import Ran, load_dag, run

UTC = dt.timezone.utc


def rename(text: str) -> str:
    """The rename an Airflow user applies to a DAG file, keeping case."""
    return text.replace("airflow", "nbflow").replace("Airflow", "Nbflow").replace("AIRFLOW", "NBFLOW")


def load_renamed(tmp_path: Path, name: str, airflow_text: str, dag_id: str) -> DAG:
    path = tmp_path / "dags" / f"{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rename(textwrap.dedent(airflow_text).lstrip()), encoding="utf-8")
    return load_dag(path, dag_id)


def run_renamed(tmp_path: Path, name: str, airflow_text: str, dag_id: str, **kwargs: object) -> Ran:
    ran = run(load_renamed(tmp_path, name, airflow_text, dag_id), tmp_path, **kwargs)  # type: ignore[arg-type]
    return ran


def test_rename_keeps_case() -> None:
    assert rename("from airflow.exceptions import AirflowSkipException  # AIRFLOW_HOME") == \
        "from nbflow.exceptions import NbflowSkipException  # NBFLOW_HOME"


TUTORIAL = '''
    """
    ### Tutorial Documentation
    Documentation that goes along with the Airflow tutorial located
    [here](https://airflow.apache.org/tutorial.html)
    """
    import textwrap
    from datetime import datetime, timedelta

    # The DAG object; we'll need this to instantiate a DAG
    from airflow.models.dag import DAG

    # Operators; we need this to operate!
    from airflow.operators.bash import BashOperator

    with DAG(
        "tutorial",
        # These args will get passed on to each operator
        # You can override them on a per-task basis during operator initialization
        default_args={
            "depends_on_past": False,
            "email": ["airflow@example.com"],
            "email_on_failure": False,
            "email_on_retry": False,
            "retries": 1,
            "retry_delay": timedelta(minutes=5),
            # 'queue': 'bash_queue',
            # 'pool': 'backfill',
            # 'priority_weight': 10,
            # 'end_date': datetime(2016, 1, 1),
            # 'wait_for_downstream': False,
            # 'sla': timedelta(hours=2),
            # 'execution_timeout': timedelta(seconds=300),
            # 'trigger_rule': 'all_success'
        },
        description="A simple tutorial DAG",
        schedule=timedelta(days=1),
        start_date=datetime(2021, 1, 1),
        catchup=False,
        tags=["example"],
    ) as dag:

        # t1, t2 and t3 are examples of tasks created by instantiating operators
        t1 = BashOperator(
            task_id="print_date",
            bash_command="date",
        )

        t2 = BashOperator(
            task_id="sleep",
            depends_on_past=False,
            bash_command="sleep 0.1",
            retries=3,
        )
        t1.doc_md = textwrap.dedent(
            """\\
        #### Task Documentation
        You can document your task using the attributes `doc_md` (markdown),
        `doc` (plain text), `doc_rst`, `doc_json`, `doc_yaml` which gets
        rendered in the UI's Task Instance Details page.
        """
        )

        dag.doc_md = __doc__  # providing that you have a docstring at the beginning of the DAG; OR
        dag.doc_md = """
        This is a documentation placed anywhere
        """  # otherwise, type it like this
        templated_command = textwrap.dedent(
            """
        {% for i in range(5) %}
            echo "{{ ds }}"
            echo "{{ macros.ds_add(ds, 7)}}"
            echo "{{ params.my_param }}"
        {% endfor %}
        """
        )

        t3 = BashOperator(
            task_id="templated",
            depends_on_past=False,
            bash_command=templated_command,
            params={"my_param": "Parameter I passed in"},
        )

        t1 >> [t2, t3]
'''


def test_tutorial_with_templated_bash_operator(tmp_path: Path) -> None:
    ran = run_renamed(tmp_path, "tutorial", TUTORIAL, "tutorial")
    assert ran.state == "success"
    assert ran.states == {"print_date": "success", "sleep": "success", "templated": "success"}
    lines = ran.log("templated").splitlines()
    assert lines.count("2025-01-02") == 5 and lines.count("2025-01-09") == 5
    assert lines.count("Parameter I passed in") == 5
    assert ran.xcom("templated") == "Parameter I passed in"
    assert ran.dag.get_task("sleep").retries == 3 and ran.dag.get_task("print_date").retries == 1
    assert ran.dag.get_task("print_date").email == ["nbflow@example.com"]
    assert "This is a documentation placed anywhere" in ran.dag.doc_md


EXAMPLE_XCOM = '''
    """Example DAG demonstrating the usage of XComs."""
    from __future__ import annotations

    import pendulum

    from airflow.decorators import task
    from airflow.models.dag import DAG
    from airflow.models.xcom_arg import XComArg
    from airflow.operators.bash import BashOperator

    value_1 = [1, 2, 3]
    value_2 = {"a": "b"}


    @task
    def push(ti=None):
        """Pushes an XCom without a specific target"""
        ti.xcom_push(key="value from pusher 1", value=value_1)


    @task
    def push_by_returning():
        """Pushes an XCom without a specific target, just by returning it"""
        return value_2


    def _compare_values(pulled_value, check_value):
        if pulled_value != check_value:
            raise ValueError(f"The two values differ {pulled_value} and {check_value}")


    @task
    def puller(pulled_value_2, ti=None):
        """Pull all previously pushed XComs and check if the pushed values match the pulled values."""
        pulled_value_1 = ti.xcom_pull(task_ids="push", key="value from pusher 1")

        _compare_values(pulled_value_1, value_1)
        _compare_values(pulled_value_2, value_2)


    @task
    def pull_value_from_bash_push(ti=None):
        bash_pushed_via_return_value = ti.xcom_pull(key="return_value", task_ids="bash_push")
        bash_manually_pushed_value = ti.xcom_pull(key="manually_pushed_value", task_ids="bash_push")
        print(f"The xcom value pushed by task push via return value is {bash_pushed_via_return_value}")
        print(f"The xcom value pushed by task push manually is {bash_manually_pushed_value}")
        return [bash_pushed_via_return_value, bash_manually_pushed_value]


    with DAG(
        "example_xcom",
        schedule="@once",
        start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
        catchup=False,
        tags=["example"],
    ) as dag:
        bash_push = BashOperator(
            task_id="bash_push",
            bash_command='echo "bash_push demo"  && '
            'echo "Manually set xcom value '
            '{{ ti.xcom_push(key="manually_pushed_value", value="manually_pushed_value") }}" && '
            'echo "value_by_return"',
        )

        bash_pull = BashOperator(
            task_id="bash_pull",
            bash_command='echo "bash pull demo" && '
            f'echo "The xcom pushed manually is {XComArg(bash_push, key="manually_pushed_value")}" && '
            f'echo "The returned_value xcom is {XComArg(bash_push)}" && '
            'echo "finished"',
            do_xcom_push=False,
        )

        python_pull_from_bash = pull_value_from_bash_push()

        [bash_pull, python_pull_from_bash] << bash_push

        puller(push_by_returning()) << push()
'''


def test_xcom_push_and_pull_example(tmp_path: Path) -> None:
    ran = run_renamed(tmp_path, "example_xcom", EXAMPLE_XCOM, "example_xcom")
    assert ran.state == "success", ran.result.tasks
    assert set(ran.states.values()) == {"success"}
    assert ran.xcom("pull_value_from_bash_push") == ["value_by_return", "manually_pushed_value"]
    log = ran.log("bash_pull")
    assert "The xcom pushed manually is manually_pushed_value" in log
    assert "The returned_value xcom is value_by_return" in log
    assert ran.dag.get_task("puller").upstream_task_ids == {"push", "push_by_returning"}


PYTHON_XCOM = '''
    from datetime import datetime

    from airflow import DAG
    from airflow.operators.python import PythonOperator


    def extract(**kwargs):
        ti = kwargs["ti"]
        ti.xcom_push("order_data", '{"1001": 301.27, "1002": 433.21, "1003": 502.22}')


    def transform(**kwargs):
        import json
        ti = kwargs["ti"]
        order_data = json.loads(ti.xcom_pull(task_ids="extract", key="order_data"))
        ti.xcom_push("total_order_value", json.dumps({"total_order_value": sum(order_data.values())}))


    def load(**kwargs):
        import json
        ti = kwargs["ti"]
        total = json.loads(ti.xcom_pull(task_ids="transform", key="total_order_value"))
        print(f"Total order value is: {total['total_order_value']:.2f}")
        return total["total_order_value"]


    with DAG(
        "tutorial_dag",
        default_args={"retries": 2},
        description="DAG tutorial",
        schedule=None,
        start_date=datetime(2021, 1, 1),
        catchup=False,
        tags=["example"],
    ) as dag:
        extract_task = PythonOperator(task_id="extract", python_callable=extract)
        transform_task = PythonOperator(task_id="transform", python_callable=transform)
        load_task = PythonOperator(task_id="load", python_callable=load)

        extract_task >> transform_task >> load_task
'''


def test_python_operator_pushing_and_pulling_xcoms(tmp_path: Path) -> None:
    ran = run_renamed(tmp_path, "tutorial_dag", PYTHON_XCOM, "tutorial_dag")
    assert ran.states == {"extract": "success", "transform": "success", "load": "success"}
    assert ran.xcom("load") == pytest.approx(1236.70)
    assert "Total order value is: 1236.70" in ran.log("load")


EXAMPLE_BRANCH = '''
    """Example DAG demonstrating the usage of the BranchPythonOperator."""
    from __future__ import annotations

    import random

    import pendulum

    from airflow.models.dag import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import BranchPythonOperator
    from airflow.utils.edgemodifier import Label
    from airflow.utils.trigger_rule import TriggerRule

    with DAG(
        dag_id="example_branch_operator",
        start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
        catchup=False,
        schedule="@daily",
        tags=["example", "example2"],
        orientation="TB",
    ) as dag:
        run_this_first = EmptyOperator(
            task_id="run_this_first",
        )

        options = ["a", "b", "c", "d"]

        branching = BranchPythonOperator(
            task_id="branching",
            python_callable=lambda: f"branch_{random.choice(options)}",
        )
        run_this_first >> branching

        join = EmptyOperator(
            task_id="join",
            trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        )

        for option in options:
            t = EmptyOperator(
                task_id=f"branch_{option}",
            )

            empty_follow = EmptyOperator(
                task_id="follow_" + option,
            )

            # Label is optional here, but it can help identify more complex branches
            branching >> Label(option) >> t >> empty_follow >> join
'''


def test_branch_python_operator_joined_with_none_failed_min_one_success(tmp_path: Path) -> None:
    ran = run_renamed(tmp_path, "example_branch_operator", EXAMPLE_BRANCH, "example_branch_operator")
    assert ran.state == "success"
    chosen = ran.xcom("branching")
    letter = chosen.removeprefix("branch_")
    for option in "abcd":
        want = "success" if option == letter else "skipped"
        assert ran.states[f"branch_{option}"] == want and ran.states[f"follow_{option}"] == want
    assert ran.states["join"] == "success"
    assert ran.dag.get_edge_info("branching", "branch_c") == {"label": "c"}


EXAMPLE_SHORT_CIRCUIT = '''
    """Example DAG demonstrating the usage of the ShortCircuitOperator."""
    from __future__ import annotations

    import pendulum

    from airflow.models.baseoperator import chain
    from airflow.models.dag import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import ShortCircuitOperator
    from airflow.utils.trigger_rule import TriggerRule

    with DAG(
        dag_id="example_short_circuit_operator",
        start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
        catchup=False,
        tags=["example"],
    ) as dag:
        cond_true = ShortCircuitOperator(
            task_id="condition_is_True",
            python_callable=lambda: True,
        )

        cond_false = ShortCircuitOperator(
            task_id="condition_is_False",
            python_callable=lambda: False,
        )

        ds_true = [EmptyOperator(task_id=f"true_{i}") for i in [1, 2]]
        ds_false = [EmptyOperator(task_id=f"false_{i}") for i in [1, 2]]

        chain(cond_true, *ds_true)
        chain(cond_false, *ds_false)

        [task_1, task_2, task_3, task_4, task_5, task_6] = [
            EmptyOperator(task_id=f"task_{i}") for i in range(1, 7)
        ]

        task_7 = EmptyOperator(task_id="task_7", trigger_rule=TriggerRule.ALL_DONE)

        short_circuit = ShortCircuitOperator(
            task_id="short_circuit", ignore_downstream_trigger_rules=False, python_callable=lambda: False
        )

        chain(task_1, [task_2, short_circuit], [task_3, task_4], [task_5, task_6], task_7)
'''


def test_short_circuit_operator_example(tmp_path: Path) -> None:
    ran = run_renamed(tmp_path, "example_short_circuit_operator", EXAMPLE_SHORT_CIRCUIT,
                      "example_short_circuit_operator")
    assert ran.state == "success"
    assert ran.states == {
        "condition_is_True": "success", "condition_is_False": "success",
        "true_1": "success", "true_2": "success", "false_1": "skipped", "false_2": "skipped",
        "task_1": "success", "task_2": "success", "task_3": "success", "task_4": "skipped",
        "task_5": "success", "task_6": "skipped", "task_7": "success", "short_circuit": "success",
    }


EXAMPLE_TASK_GROUP = '''
    """Example DAG demonstrating the usage of the TaskGroup."""
    from __future__ import annotations

    import pendulum

    from airflow.models.dag import DAG
    from airflow.operators.bash import BashOperator
    from airflow.operators.empty import EmptyOperator
    from airflow.utils.task_group import TaskGroup

    # [START howto_task_group]
    with DAG(
        dag_id="example_task_group",
        start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
        catchup=False,
        tags=["example"],
    ) as dag:
        start = EmptyOperator(task_id="start")

        # [START howto_task_group_section_1]
        with TaskGroup("section_1", tooltip="Tasks for section_1") as section_1:
            task_1 = EmptyOperator(task_id="task_1")
            task_2 = BashOperator(task_id="task_2", bash_command="echo 1")
            task_3 = EmptyOperator(task_id="task_3")

            task_1 >> [task_2, task_3]
        # [END howto_task_group_section_1]

        # [START howto_task_group_section_2]
        with TaskGroup("section_2", tooltip="Tasks for section_2") as section_2:
            task_1 = EmptyOperator(task_id="task_1")

            # [START howto_task_group_inner_section_2]
            with TaskGroup("inner_section_2", tooltip="Tasks for inner_section2") as inner_section_2:
                task_2 = BashOperator(task_id="task_2", bash_command="echo 1")
                task_3 = EmptyOperator(task_id="task_3")
                task_4 = EmptyOperator(task_id="task_4")

                [task_2, task_3] >> task_4
            # [END howto_task_group_inner_section_2]

        # [END howto_task_group_section_2]

        end = EmptyOperator(task_id="end")

        start >> section_1 >> section_2 >> end
    # [END howto_task_group]
'''


def test_nested_task_groups_example(tmp_path: Path) -> None:
    ran = run_renamed(tmp_path, "example_task_group", EXAMPLE_TASK_GROUP, "example_task_group")
    assert ran.state == "success"
    assert set(ran.states) == {
        "start", "section_1.task_1", "section_1.task_2", "section_1.task_3", "section_2.task_1",
        "section_2.inner_section_2.task_2", "section_2.inner_section_2.task_3",
        "section_2.inner_section_2.task_4", "end"}
    assert set(ran.states.values()) == {"success"}
    d = ran.dag
    assert d.get_task("section_2.task_1").upstream_task_ids == {"section_1.task_2", "section_1.task_3"}
    assert d.get_task("end").upstream_task_ids == {"section_2.task_1", "section_2.inner_section_2.task_4"}


TASKFLOW_ETL = '''
    import json

    import pendulum

    from airflow.decorators import dag, task


    @dag(
        schedule=None,
        start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
        catchup=False,
        tags=["example"],
    )
    def tutorial_taskflow_api():
        """
        ### TaskFlow API Tutorial Documentation
        This is a simple data pipeline example which demonstrates the use of
        the TaskFlow API using three simple tasks for Extract, Transform, and Load.
        """
        @task()
        def extract():
            """
            #### Extract task
            A simple Extract task to get data ready for the rest of the data
            pipeline. In this case, getting data is simulated by reading from a
            hardcoded JSON string.
            """
            data_string = '{"1001": 301.27, "1002": 433.21, "1003": 502.22}'

            order_data_dict = json.loads(data_string)
            return order_data_dict

        @task(multiple_outputs=True)
        def transform(order_data_dict: dict):
            """
            #### Transform task
            A simple Transform task which takes in the collection of order data and
            computes the total order value.
            """
            total_order_value = 0

            for value in order_data_dict.values():
                total_order_value += value

            return {"total_order_value": total_order_value}

        @task()
        def load(total_order_value: float):
            """
            #### Load task
            A simple Load task which takes in the result of the Transform task and
            instead of saving it to end user review, just prints it out.
            """

            print(f"Total order value is: {total_order_value:.2f}")

        order_data = extract()
        order_summary = transform(order_data)
        load(order_summary["total_order_value"])


    tutorial_taskflow_api()
'''


def test_taskflow_etl_with_multiple_outputs(tmp_path: Path) -> None:
    ran = run_renamed(tmp_path, "tutorial_taskflow_api", TASKFLOW_ETL, "tutorial_taskflow_api")
    assert ran.states == {"extract": "success", "transform": "success", "load": "success"}
    assert ran.xcom("transform", "total_order_value") == pytest.approx(1236.70)
    assert "Total order value is: 1236.70" in ran.log("load")
    assert "TaskFlow API Tutorial Documentation" in (ran.dag.doc_md or "")


CHAIN_LISTS = '''
    from datetime import datetime

    from airflow import DAG
    from airflow.models.baseoperator import chain, cross_downstream
    from airflow.operators.bash import BashOperator
    from airflow.operators.empty import EmptyOperator

    with DAG(dag_id="example_chain", start_date=datetime(2021, 1, 1), schedule="@daily", catchup=False) as dag:
        start = EmptyOperator(task_id="start")
        extract = [BashOperator(task_id=f"extract_{s}", bash_command=f"echo {s}") for s in ("orders", "users")]
        clean = [BashOperator(task_id=f"clean_{s}", bash_command=f"echo clean {s}") for s in ("orders", "users")]
        report = [EmptyOperator(task_id="report_daily"), EmptyOperator(task_id="report_weekly")]
        publish = [EmptyOperator(task_id="publish_web"), EmptyOperator(task_id="publish_mail")]
        end = EmptyOperator(task_id="end")

        chain(start, extract, clean, report)
        cross_downstream(report, publish)
        chain(publish, end)
'''


def test_chain_over_lists(tmp_path: Path) -> None:
    ran = run_renamed(tmp_path, "example_chain", CHAIN_LISTS, "example_chain")
    assert ran.state == "success" and set(ran.states.values()) == {"success"}
    d = ran.dag
    assert d.get_task("clean_orders").upstream_task_ids == {"extract_orders"}
    assert d.get_task("clean_users").upstream_task_ids == {"extract_users"}
    assert d.get_task("report_daily").upstream_task_ids == {"clean_orders"}
    assert d.get_task("publish_mail").upstream_task_ids == {"report_daily", "report_weekly"}
    assert d.get_task("end").upstream_task_ids == {"publish_web", "publish_mail"}


EXAMPLE_BASH_OPERATOR = '''
    """Example DAG demonstrating the usage of the BashOperator."""
    from __future__ import annotations

    import datetime

    import pendulum

    from airflow.models.dag import DAG
    from airflow.operators.bash import BashOperator
    from airflow.operators.empty import EmptyOperator

    with DAG(
        dag_id="example_bash_operator",
        schedule="0 0 * * *",
        start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
        catchup=False,
        dagrun_timeout=datetime.timedelta(minutes=60),
        tags=["example", "example2"],
        params={"example_key": "example_value"},
    ) as dag:
        run_this_last = EmptyOperator(
            task_id="run_this_last",
        )

        # [START howto_operator_bash]
        run_this = BashOperator(
            task_id="run_after_loop",
            bash_command="echo https://airflow.apache.org/",
        )
        # [END howto_operator_bash]

        run_this >> run_this_last

        for i in range(3):
            task = BashOperator(
                task_id=f"runme_{i}",
                bash_command='echo "{{ task_instance_key_str }}" && sleep 0.01',
            )
            task >> run_this

        # [START howto_operator_bash_template]
        also_run_this = BashOperator(
            task_id="also_run_this",
            bash_command='echo "ti_key={{ task_instance_key_str }}"',
        )
        # [END howto_operator_bash_template]
        also_run_this >> run_this_last

    # [START howto_operator_bash_skip]
    this_will_skip = BashOperator(
        task_id="this_will_skip",
        bash_command='echo "hello world"; exit 99;',
        dag=dag,
    )
    # [END howto_operator_bash_skip]
    this_will_skip >> run_this_last
'''


def test_bash_operator_example_with_a_skip(tmp_path: Path) -> None:
    ran = run_renamed(tmp_path, "example_bash_operator", EXAMPLE_BASH_OPERATOR, "example_bash_operator")
    assert ran.states["this_will_skip"] == "skipped"
    assert ran.states["run_this_last"] == "skipped"
    assert ran.xcom("also_run_this") == "ti_key=example_bash_operator__also_run_this__20250102"
    assert ran.xcom("runme_1") == "example_bash_operator__runme_1__20250102"
    assert ran.state == "success"


EXAMPLE_SKIP = '''
    """Example DAG demonstrating the EmptyOperator and a custom EmptySkipOperator which skips by default."""
    from __future__ import annotations

    from typing import TYPE_CHECKING

    import pendulum

    from airflow.exceptions import AirflowSkipException
    from airflow.models.baseoperator import BaseOperator
    from airflow.models.dag import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.utils.trigger_rule import TriggerRule

    if TYPE_CHECKING:
        from airflow.utils.context import Context


    # Create some placeholder operators
    class EmptySkipOperator(BaseOperator):
        """Empty operator which always skips the task."""

        ui_color = "#e8b7e4"

        def execute(self, context: Context):
            raise AirflowSkipException


    def create_test_pipeline(suffix, trigger_rule):
        """
        Instantiate a number of operators for the given DAG.

        :param str suffix: Suffix to append to the operator task_ids
        :param str trigger_rule: TriggerRule for the join task
        :param DAG dag_: The DAG to run the operators on
        """
        skip_operator = EmptySkipOperator(task_id=f"skip_operator_{suffix}")
        always_true = EmptyOperator(task_id=f"always_true_{suffix}")
        join = EmptyOperator(task_id=trigger_rule, trigger_rule=trigger_rule)
        final = EmptyOperator(task_id=f"final_{suffix}")

        skip_operator >> join
        always_true >> join
        join >> final


    with DAG(
        dag_id="example_skip_dag",
        start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
        catchup=False,
        tags=["example"],
    ) as dag:
        create_test_pipeline("1", TriggerRule.ALL_SUCCESS)
        create_test_pipeline("2", TriggerRule.ONE_SUCCESS)
'''


def test_skip_exception_example_with_trigger_rules(tmp_path: Path) -> None:
    ran = run_renamed(tmp_path, "example_skip_dag", EXAMPLE_SKIP, "example_skip_dag")
    assert ran.states == {
        "skip_operator_1": "skipped", "always_true_1": "success", "all_success": "skipped", "final_1": "skipped",
        "skip_operator_2": "skipped", "always_true_2": "success", "one_success": "success", "final_2": "success",
    }


EXAMPLE_LATEST_ONLY = '''
    """Example LatestOnlyOperator and TriggerRule interactions"""
    from __future__ import annotations

    import datetime

    import pendulum

    from airflow.models.dag import DAG
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.latest_only import LatestOnlyOperator
    from airflow.utils.trigger_rule import TriggerRule

    with DAG(
        dag_id="latest_only_with_trigger",
        schedule=datetime.timedelta(hours=4),
        start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
        catchup=False,
        tags=["example3"],
    ) as dag:
        latest_only = LatestOnlyOperator(task_id="latest_only")
        task1 = EmptyOperator(task_id="task1")
        task2 = EmptyOperator(task_id="task2")
        task3 = EmptyOperator(task_id="task3")
        task4 = EmptyOperator(task_id="task4", trigger_rule=TriggerRule.ALL_DONE)

        latest_only >> task1 >> [task3, task4]
        task2 >> [task3, task4]
'''


def test_latest_only_example_on_an_old_scheduled_run(tmp_path: Path) -> None:
    d = load_renamed(tmp_path, "latest_only_with_trigger", EXAMPLE_LATEST_ONLY, "latest_only_with_trigger")
    start = dt.datetime(2021, 1, 1, 4, tzinfo=UTC)
    old = DagRunInfo(dag_id=d.dag_id, run_id="scheduled__2021-01-01T04:00:00+00:00", logical_date=start,
                     data_interval_start=start, data_interval_end=start + dt.timedelta(hours=4), run_type="scheduled")
    ran = run(d, tmp_path, run_info=old)
    assert ran.states == {"latest_only": "success", "task1": "skipped", "task2": "success", "task3": "skipped",
                          "task4": "success"}


EXAMPLE_DYNAMIC_TASK_MAPPING = '''
    """Example DAG demonstrating the usage of dynamic task mapping."""
    from __future__ import annotations

    from datetime import datetime

    from airflow.decorators import task
    from airflow.models.dag import DAG

    with DAG(dag_id="example_dynamic_task_mapping", schedule=None, start_date=datetime(2022, 3, 4)) as dag:

        @task
        def add_one(x: int):
            return x + 1

        @task
        def sum_it(values):
            total = sum(values)
            print(f"Total was {total}")
            return total

        added_values = add_one.expand(x=[1, 2, 3])
        sum_it(added_values)
'''


def test_dynamic_task_mapping_example(tmp_path: Path) -> None:
    ran = run_renamed(tmp_path, "example_dynamic_task_mapping", EXAMPLE_DYNAMIC_TASK_MAPPING,
                      "example_dynamic_task_mapping")
    assert ran.states == {"add_one[0]": "success", "add_one[1]": "success", "add_one[2]": "success",
                          "sum_it": "success"}
    assert "Total was 9" in ran.log("sum_it")


AIRFLOW_2_STYLE = '''
    from datetime import timedelta

    from airflow import DAG
    from airflow.operators.dummy import DummyOperator
    from airflow.operators.python import PythonOperator, get_current_context
    from airflow.utils.dates import days_ago

    default_args = {"owner": "airflow", "start_date": days_ago(2), "retries": 0}

    def report():
        context = get_current_context()
        return f"{context['ti'].task_id} ran for {context['ds']}"

    with DAG("old_school", default_args=default_args, schedule_interval=timedelta(days=1)) as dag:
        start = DummyOperator(task_id="start")
        start >> PythonOperator(task_id="report", python_callable=report)
'''


def test_airflow_2_idioms_days_ago_dummy_operator_and_get_current_context(tmp_path: Path) -> None:
    ran = run_renamed(tmp_path, "old_school", AIRFLOW_2_STYLE, "old_school")
    assert ran.states == {"start": "success", "report": "success"}
    assert ran.xcom("report") == "report ran for 2025-01-02"
    assert ran.dag.get_task("start").owner == "nbflow"


def test_days_ago_is_midnight_utc_n_days_back() -> None:
    from nbflow.utils.dates import days_ago

    today = dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert days_ago(2) == today - dt.timedelta(days=2)
    assert days_ago(0, hour=6) == today.replace(hour=6)


AIRFLOW_3_SDK_STYLE = '''
    import pendulum

    from airflow.sdk import Label, Param, TaskGroup, chain, dag, task


    @dag(
        schedule="@daily",
        start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
        catchup=False,
        params={"n": Param(3, type="integer", minimum=1, description="how many numbers")},
    )
    def sdk_style():
        @task
        def numbers(params=None):
            return list(range(1, params["n"] + 1))

        @task
        def square(x: int) -> int:
            return x * x

        @task
        def total(values) -> int:
            return sum(values)

        @task
        def report(value: int, **context) -> str:
            return f"{context['ds']}: {value}"

        with TaskGroup("math") as math:
            squares = square.expand(x=numbers())
            summed = total(squares)

        chain(math, Label("then"), report(summed))


    sdk_style()
'''


def test_airflow_3_sdk_style_dag_with_params_mapping_and_groups(tmp_path: Path) -> None:
    d = load_renamed(tmp_path, "sdk_style", AIRFLOW_3_SDK_STYLE, "sdk_style")
    ran = run(d, tmp_path)
    assert ran.state == "success"
    assert ran.xcom("math.total") == 14 and ran.xcom("report") == "2025-01-02: 14"
    assert run(d, tmp_path / "conf", conf={"n": 4}).xcom("math.total") == 30
    bad = run(d, tmp_path / "bad", conf={"n": 0})
    assert bad.state == "failed" and "'n'" in (bad.result.error or "")
