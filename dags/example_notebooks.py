"""Notebook tasks: extract → transform → report, each a parameterised Jupyter notebook.

`extract` writes the day's orders to a CSV file and records its `path` and record `count`;
`transform` gets both as parameters (an upstream XCom as an XComArg, and one through a template)
and writes a summary; `report` displays it. Every attempt's executed notebook is kept under
$NBFLOW_HOME/notebooks/, and each cell's output streams into the task's log as it runs.
The notebooks live in `notebooks/` (paths here are relative to this file).
"""
from __future__ import annotations

from datetime import datetime

from nbflow import DAG
from nbflow.operators.notebook import NotebookOperator

with DAG(
    "example_notebooks",
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": 1},
    params={"rows": 5},
    tags=["example", "notebooks"],
):
    extract = NotebookOperator(
        task_id="extract",
        input_nb="../notebooks/extract.ipynb",
        parameters={"ds": "{{ ds }}", "rows": "{{ params.rows }}"},
    )
    transform = NotebookOperator(
        task_id="transform",
        input_nb="../notebooks/transform.ipynb",
        parameters={
            "path": extract.output["path"],  # an XComArg: arrives as the recorded value itself
            "count": "{{ ti.xcom_pull(task_ids='extract')['count'] }}",  # a template: arrives as text
        },
    )
    report = NotebookOperator(
        task_id="report",
        input_nb="../notebooks/report.ipynb",
        parameters={"summary_path": transform.output["summary_path"], "count": transform.output["count"],
                    "ds": "{{ ds }}"},
        report_mode=True,  # the executed copy shows outputs only
    )
    extract >> transform >> report
