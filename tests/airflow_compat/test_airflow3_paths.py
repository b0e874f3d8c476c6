"""Airflow 3's provider paths and Airflow 1's module paths resolve after the rename."""
from __future__ import annotations

from datetime import datetime, timezone

from nbflow.runtime.inprocess import make_run_info, run_dag_in_process
from nbflow.runtime.dagbag import DagBag
from tests.conftest import write_dag

AIRFLOW3_TUTORIAL = '''
import textwrap
from datetime import datetime, timedelta
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator, get_current_context
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.sdk import DAG

class PickEven(BaseBranchOperator):
    def choose_branch(self, context):
        return "even" if context["logical_date"].day % 2 == 0 else "odd"

def where_am_i():
    return get_current_context()["ti"].task_id

with DAG("tutorial3", default_args={"retries": 1, "retry_delay": timedelta(seconds=0)},
         schedule=timedelta(days=1), start_date=datetime(2021, 1, 1), catchup=False, tags=["example"]) as dag:
    t1 = BashOperator(task_id="print_date", bash_command="date")
    t2 = BashOperator(task_id="sleep", depends_on_past=False, bash_command="sleep 0.1", retries=3)
    templated_command = textwrap.dedent("""
    {% for i in range(2) %}
        echo "{{ ds }}"
        echo "{{ macros.ds_add(ds, 7)}}"
    {% endfor %}
    """)
    t3 = BashOperator(task_id="templated", bash_command=templated_command)
    who = PythonOperator(task_id="who", python_callable=where_am_i)
    pick = PickEven(task_id="pick")
    t1 >> [t2, t3] >> who >> pick >> [EmptyOperator(task_id="even"), EmptyOperator(task_id="odd")]
'''

AIRFLOW1_PATHS = '''
from datetime import datetime
from airflow import DAG
from airflow.operators.bash_operator import BashOperator
from airflow.operators.python_operator import PythonOperator
from airflow.operators.dummy_operator import DummyOperator
with DAG("old_paths", schedule_interval="@daily", start_date=datetime(2021, 1, 1)) as dag:
    DummyOperator(task_id="start") >> BashOperator(task_id="b", bash_command="echo hi") >> \\
        PythonOperator(task_id="p", python_callable=lambda: 1)
'''


def renamed(text: str) -> str:
    return text.replace("airflow", "nbflow").replace("Airflow", "Nbflow").replace("AIRFLOW", "NBFLOW")


def test_airflow3_tutorial_with_provider_paths_runs_after_the_rename(tmp_path) -> None:
    write_dag(tmp_path / "dags", "tutorial3.py", renamed(AIRFLOW3_TUTORIAL))
    bag = DagBag(tmp_path / "dags")
    assert bag.import_errors == {}
    dag = bag.get_dag("tutorial3")
    run = make_run_info(dag, datetime(2025, 1, 2, tzinfo=timezone.utc), {})
    result = run_dag_in_process(dag, run=run, log_folder=tmp_path / "logs")
    states = {row["task_id"]: row["state"] for row in result.tasks}
    assert result.state == "success"
    assert states["even"] == "success" and states["odd"] == "skipped"


def test_airflow1_module_paths_run_after_the_rename(tmp_path) -> None:
    write_dag(tmp_path / "dags", "old.py", renamed(AIRFLOW1_PATHS))
    bag = DagBag(tmp_path / "dags")
    assert bag.import_errors == {}
    dag = bag.get_dag("old_paths")
    result = run_dag_in_process(dag, run=make_run_info(dag, None, {}), log_folder=tmp_path / "logs")
    assert result.state == "success"
