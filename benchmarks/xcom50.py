"""`xcom50`: 50 chained @tasks each returning input + 1; the final value is checked."""
from benchmarks._scheduler import measure

DAG = '''
from nbflow import DAG
from nbflow.decorators import task
with DAG("xcom50", schedule=None):
    @task
    def inc(x):
        return x + 1
    value = inc(0)
    for _ in range(49):
        value = inc(value)
'''


def check(env, run) -> None:
    from nbflow.runtime.xcom_db import DbXComStore
    from nbflow.store.keys import TIKey
    raw = DbXComStore(env.sessions).get(TIKey("xcom50", "inc__49", run.run_id), "return_value")
    if raw != "50":
        raise RuntimeError(f"xcom50: final value is {raw}, expected 50")


def run() -> dict[str, object]:
    return measure("xcom50", DAG, "xcom50", check=check)
