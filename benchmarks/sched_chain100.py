"""`sched_chain100`: 100 no-op PythonOperator tasks in a chain under the scheduler (local executor)."""
from benchmarks._scheduler import measure

DAG = '''
from nbflow import DAG
from nbflow.models.baseoperator import chain
from nbflow.operators.python import PythonOperator
with DAG("chain100", schedule=None):
    chain(*[PythonOperator(task_id=f"t{i}", python_callable=lambda: None) for i in range(100)])
'''


def run() -> dict[str, object]:
    return measure("sched_chain100", DAG, "chain100")
