"""Classic operators with templating, in the style of Airflow's tutorial DAG.

A BashOperator prints dates with `{{ ds }}` and `{{ macros.ds_add(ds, 7) }}` and a param; Python tasks
push and pull XComs through `ti`. After the rename airflow→nbflow this is an Airflow DAG file.
"""
from __future__ import annotations

import json
import textwrap
from datetime import datetime, timedelta

from nbflow import DAG
from nbflow.operators.bash import BashOperator
from nbflow.operators.python import PythonOperator

default_args = {
    "owner": "data-team",
    "retries": 1,
    "retry_delay": timedelta(seconds=0.1),
}


def extract(ti=None, **context):
    """Push one XCom under a key and return another (the `return_value`)."""
    orders = {"1001": 301.27, "1002": 433.21, "1003": 502.22}
    ti.xcom_push(key="order_data", value=json.dumps(orders))
    return len(orders)


def transform(ti=None, **context):
    orders = json.loads(ti.xcom_pull(task_ids="extract", key="order_data"))
    count = ti.xcom_pull(task_ids="extract")
    total = round(sum(orders.values()), 2)
    print(f"{count} orders, {total} in total")
    ti.xcom_push(key="total_order_value", value=total)


def load(ti=None, ds=None, **context):
    total = ti.xcom_pull(task_ids="transform", key="total_order_value")
    print(f"loading total {total} for {ds}")
    return {"day": ds, "total": total}


with DAG(
    "example_classic",
    description="Templated BashOperators and PythonOperators passing XComs",
    default_args=default_args,
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"greeting": "hello"},
    tags=["example", "classic"],
    doc_md=__doc__,
) as dag:
    print_date = BashOperator(task_id="print_date", bash_command="date -u +%Y-%m-%d")

    templated = BashOperator(
        task_id="templated",
        bash_command=textwrap.dedent(
            """
            {% for i in range(3) %}
                echo "{{ params.greeting }} {{ ds }}, a week later is {{ macros.ds_add(ds, 7) }}"
            {% endfor %}
            echo "{{ params.my_param }}"
            """
        ),
        params={"my_param": "a parameter passed to the BashOperator"},
    )

    extract_task = PythonOperator(task_id="extract", python_callable=extract)
    transform_task = PythonOperator(task_id="transform", python_callable=transform)
    load_task = PythonOperator(task_id="load", python_callable=load)

    print_date >> [templated, extract_task]
    extract_task >> transform_task >> load_task
