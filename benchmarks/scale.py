"""`scale`: one DAG of 2,000 no-op tasks in 20 layers of 100; the scheduler's per-loop time over the run.

Task i of layer L waits for tasks i and i+1 (mod 100) of layer L-1, so layers overlap as they would
in a real pipeline rather than draining completely between them.
"""
from benchmarks._scheduler import measure

DAG = '''
from nbflow import DAG
from nbflow.operators.python import PythonOperator
with DAG("scale", schedule=None, max_active_tasks=64):
    previous = None
    for layer in range(20):
        tasks = [PythonOperator(task_id=f"l{layer}_t{i}", python_callable=lambda: None) for i in range(100)]
        if previous is not None:
            for i, t in enumerate(tasks):
                [previous[i], previous[(i + 1) % 100]] >> t
        previous = tasks
'''


def run() -> dict[str, object]:
    return measure("scale", DAG, "scale", runs=1)
