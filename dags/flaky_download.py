"""A flaky download: five retries a minute apart, then one e-mail to the on-call address.

The URL comes from the Variable `flaky_download_url`. Its default is this file's own `file://` URL,
so the example succeeds wherever it runs (`make run`, `nbflow dags test`) and sends nothing. To watch
the failure story, point it at something that does not answer and trigger the DAG:

    nbflow variables set flaky_download_url http://127.0.0.1:9/data.csv
    nbflow dags trigger flaky_download

Each failed try logs `up_for_retry`; after the sixth the task fails and the scheduler's worker sends
one e-mail (email_on_retry=False) through `[smtp]` or the `smtp_default` connection. A mail server
that is down costs one line in the task's log, never the task's state. schedule=None: it runs only
when triggered, so its minute-long retry delays never hold up `nbflow standalone --until-idle`.
"""
from __future__ import annotations

import tempfile
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

from nbflow import DAG
from nbflow.models import Variable
from nbflow.operators.python import PythonOperator

default_args = {
    "owner": "data-team",
    "retries": 5,
    "retry_delay": timedelta(minutes=1),
    "email": ["oncall@example.com"],
    "email_on_failure": True,
    "email_on_retry": False,
}


def download(ds=None, **context) -> int:
    """Fetch the URL (10 s timeout) to a scratch file; the byte count is the XCom."""
    url = Variable.get("flaky_download_url", default_var=Path(__file__).resolve().as_uri())
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the example's own URL
        data = response.read()
    target = Path(tempfile.gettempdir()) / f"flaky_download_{ds}.bin"
    target.write_bytes(data)
    print(f"downloaded {len(data)} bytes from {url} to {target}")
    return len(data)


with DAG(
    "flaky_download",
    description="retries five times a minute apart, then e-mails on-call",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args=default_args,
    tags=["example", "email"],
):
    PythonOperator(task_id="download", python_callable=download)
