"""`wide200`: start → 200 parallel no-op tasks → join, under the scheduler (local executor)."""
from benchmarks._scheduler import measure

DAG = '''
from nbflow import DAG
from nbflow.operators.empty import EmptyOperator
from nbflow.operators.python import PythonOperator
with DAG("wide200", schedule=None):
    start, join = EmptyOperator(task_id="start"), EmptyOperator(task_id="join")
    start >> [PythonOperator(task_id=f"t{i}", python_callable=lambda: None) for i in range(200)] >> join
'''


def run() -> dict[str, object]:
    return measure("wide200", DAG, "wide200")
