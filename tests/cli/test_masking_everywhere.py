"""No secret in any output: tasks that print, echo, `env`, raise and return secrets under a real `nbflow scheduler`.

The secrets are a sensitive variable (`NBFLOW_VAR_API_KEY`) and connection passwords (`NBFLOW_CONN_*`,
URI and JSON forms); a broken DAG file quotes one in its exception. No task reads them through `Variable.get` or a hook: they reach the output the
way a hostile or careless task would leak them, straight from the environment. Afterwards every file
under $NBFLOW_HOME is read as bytes and no form of any secret may be in it (raw, URL-encoded).

The one place a secret may legitimately rest is an XCom the task returned: with `core.encrypt_xcom` off
its JSON is stored as the task returned it, so the SQLite file holds it in the `xcom` table (and only
there); with encryption on, the file holds only its Fernet token. Both cases are tested.
"""
from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet

from nbflow.runtime import api
from tests.cli.conftest import Cli
from tests.conftest import write_dag
from tests.runtime.scheduler_helpers import make_env, start_nbflow_scheduler, stop_scheduler, wait_for

API_KEY = "apikey-7f3c9e21b4d8"
WAREHOUSE_PASSWORD = "p@ss/w0rd-9z8y7x"
JSON_PASSWORD = "jsonpw-55aa66bb"
SECRETS = (API_KEY, WAREHOUSE_PASSWORD, JSON_PASSWORD)
FORMS = tuple(dict.fromkeys(form for secret in SECRETS for form in (secret, quote(secret, safe=""))))

LEAKY_DAG = '''
import os
from nbflow import DAG
from nbflow.operators.bash import BashOperator
from nbflow.operators.python import PythonOperator

def password():
    uri = os.environ["NBFLOW_CONN_WAREHOUSE"]
    from urllib.parse import unquote
    return unquote(uri.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1])

def print_it():
    print("the warehouse password is", password(), "and its URI", os.environ["NBFLOW_CONN_WAREHOUSE"])
    print("the api connection is", os.environ["NBFLOW_CONN_API"])

def raise_it():
    raise ValueError(f"cannot log in to the warehouse with {password()}")

def return_it():
    return {"key": os.environ["NBFLOW_VAR_API_KEY"], "note": "the key is " + os.environ["NBFLOW_VAR_API_KEY"]}

def on_failure(context):
    print("callback sees", password())

with DAG("leaky", schedule=None):
    BashOperator(task_id="echo_key", bash_command='echo "key=$NBFLOW_VAR_API_KEY"')
    BashOperator(task_id="run_env", bash_command="env")
    PythonOperator(task_id="print_password", python_callable=print_it)
    PythonOperator(task_id="return_key", python_callable=return_it)
    PythonOperator(task_id="fd_writes", python_callable=lambda: os.system(
        'echo "fd1 $NBFLOW_VAR_API_KEY"; echo "fd2 $NBFLOW_VAR_API_KEY" >&2'))

with DAG("failing", schedule=None, on_failure_callback=on_failure):
    PythonOperator(task_id="raise_password", python_callable=raise_it)
'''


@pytest.fixture
def env(nbflow_env, monkeypatch):
    monkeypatch.setenv("NBFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "false")
    monkeypatch.setenv("NBFLOW__SCHEDULER__HEARTBEAT_SEC", "0.2")
    monkeypatch.setenv("NBFLOW_VAR_API_KEY", API_KEY)
    monkeypatch.setenv("NBFLOW_CONN_WAREHOUSE", f"postgres://etl:{quote(WAREHOUSE_PASSWORD, safe='')}@db:5432/wh")
    monkeypatch.setenv("NBFLOW_CONN_API", f'{{"conn_type": "http", "host": "api", "password": "{JSON_PASSWORD}"}}')
    write_dag(nbflow_env.dags, "leaky.py", LEAKY_DAG)
    write_dag(nbflow_env.dags, "broken.py", 'import os\nfrom nbflow import DAG\nraise RuntimeError("bad key " + os.environ["NBFLOW_VAR_API_KEY"])\n')
    return nbflow_env


@contextlib.contextmanager
def running_scheduler(env) -> Iterator[tuple[api.Environment, Path]]:
    """`nbflow scheduler` for one test; its stderr is a file next to (not under) $NBFLOW_HOME."""
    stderr = env.home.parent / "scheduler.err"
    environment = make_env()
    process = start_nbflow_scheduler(stderr)
    try:
        yield environment, stderr
    finally:
        stop_scheduler(process)


def run_to_end(environment: api.Environment, dag_id: str) -> tuple[str, str]:
    run_id = api.trigger_dag(environment, dag_id).run_id
    state = wait_for(lambda: (api.get_run(environment, dag_id, run_id).state in ("success", "failed")
                              and api.get_run(environment, dag_id, run_id).state), timeout=120)
    return run_id, state


def leaks(home: Path, *, skip: tuple[str, ...] = ()) -> list[str]:
    """`path: form` for every file under `home` (bar those named in `skip`) holding a form of a secret."""
    found = []
    for path in sorted(p for p in home.rglob("*") if p.is_file() and p.name not in skip):
        data = path.read_bytes()
        found += [f"{path.relative_to(home)}: {form}" for form in FORMS if form.encode() in data]
    return found


def leaks_in(text: str) -> list[str]:
    return [form for form in FORMS if form in text]


def outputs_of_display_commands(nbflow: Cli, run_id: str, failing_run: str) -> str:
    """What a user sees asking after the runs: logs, XCom, states, runs; all of it, stdout and stderr."""
    commands = [("tasks", "logs", "leaky", run_id, "echo_key"), ("tasks", "logs", "leaky", run_id, "run_env"),
                ("tasks", "logs", "leaky", run_id, "print_password"),
                ("tasks", "logs", "failing", failing_run, "raise_password"),
                ("tasks", "xcom", "leaky", "return_key", "--run-id", run_id),
                ("tasks", "xcom", "leaky", "return_key", "--output", "json"),
                ("tasks", "states-for-dag-run", "failing", failing_run), ("dags", "list-runs", "failing"),
                ("dags", "list-import-errors")]
    texts = []
    for command in commands:
        done = nbflow(*command)
        assert done.code == 0, (command, done.err)
        texts += [done.out, done.err]
    return "\n".join(texts)


def test_with_encrypted_xcoms_no_secret_is_in_any_file_under_home_or_any_output(env, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__CORE__ENCRYPT_XCOM", "true")
    monkeypatch.setenv("NBFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    nbflow = Cli(env)
    with running_scheduler(env) as (environment, stderr):
        run_id, state = run_to_end(environment, "leaky")
        assert state == "success"
        failing_run, failed = run_to_end(environment, "failing")
        assert failed == "failed"
        shown = outputs_of_display_commands(nbflow, run_id, failing_run)
    logs = env.home / "logs"
    echo_log = next(logs.rglob("task_id=echo_key/attempt=1.log")).read_text()
    assert "key=***" in echo_log  # the line is there, its secret is not
    fd_log = next(logs.rglob("task_id=fd_writes/attempt=1.log")).read_text()
    assert "fd1 ***" in fd_log and "fd2 ***" in fd_log  # written past sys.stdout, still in the log, masked
    assert "cannot log in to the warehouse with ***" in next(logs.rglob("task_id=raise_password/attempt=1.log")
                                                             ).read_text()
    assert '"key": "***"' in shown and "the key is ***" in shown
    assert "bad key ***" in shown  # the broken file's import error, as recorded and listed
    assert leaks(env.home) == []
    assert leaks_in(shown) == [] and leaks_in(stderr.read_text()) == []


def test_without_encryption_a_returned_secret_rests_only_in_the_xcom_table(env) -> None:
    with running_scheduler(env) as (environment, stderr):
        run_id, state = run_to_end(environment, "leaky")
        assert state == "success"
        shown = outputs_of_display_commands(Cli(env), run_id, run_to_end(environment, "failing")[0])
    database = ("nbflow.db", "nbflow.db-wal", "nbflow.db-shm")
    assert leaks(env.home, skip=database) == []
    with sqlite3.connect(env.home / "nbflow.db") as db:
        dump = "\n".join(db.iterdump())
        xcoms = "\n".join(value for (value,) in db.execute("SELECT value FROM xcom"))
    assert API_KEY in xcoms  # stored as the task returned it: the documented exception
    assert [line for line in dump.splitlines() if API_KEY in line and not line.startswith('INSERT INTO "xcom"')] == []
    assert leaks_in(shown) == [] and leaks_in(stderr.read_text()) == []


def test_the_sequential_executor_masks_bash_output_and_errors_the_same_way(env, monkeypatch) -> None:
    monkeypatch.setenv("NBFLOW__CORE__EXECUTOR", "sequential")
    monkeypatch.setenv("NBFLOW__CORE__ENCRYPT_XCOM", "true")
    with running_scheduler(env) as (environment, stderr):
        assert run_to_end(environment, "leaky")[1] == "success"
        assert run_to_end(environment, "failing")[1] == "failed"
    assert "key=***" in next((env.home / "logs").rglob("task_id=echo_key/attempt=1.log")).read_text()
    assert leaks(env.home) == []
    assert leaks_in(stderr.read_text()) == []


def test_dags_test_masks_task_output_and_its_final_error_line(env) -> None:
    done = Cli(env)("dags", "test", "failing")
    assert done.code == 1
    assert done.error_line.startswith("error: run ") and "***" in done.error_line
    assert leaks_in(done.out + done.err) == []
    assert leaks(env.home) == []


def test_tasks_test_masks_the_exception_in_its_final_error_line(env) -> None:
    done = Cli(env)("tasks", "test", "failing", "raise_password")
    assert done.code == 1
    assert "ValueError: cannot log in to the warehouse with ***" in done.error_line
    assert leaks_in(done.out + done.err) == []


def test_descriptor_output_reaches_the_attempt_log_masked_while_the_task_still_runs(env, tmp_path) -> None:
    # os.system writes to descriptor 1 itself (a BashOperator's output comes through its own pipe instead).
    release = tmp_path / "release"
    write_dag(env.dags, "live.py", f'''
import os, time
from nbflow import DAG
from nbflow.operators.python import PythonOperator

def write_then_wait():
    os.system('echo "started with $NBFLOW_VAR_API_KEY"')
    while not os.path.exists({str(release)!r}):
        time.sleep(0.1)
    print("released")

with DAG("live", schedule=None):
    PythonOperator(task_id="wait", python_callable=write_then_wait)
''')
    with running_scheduler(env) as (environment, _stderr):
        run_id = api.trigger_dag(environment, "live").run_id
        log = wait_for(lambda: next((env.home / "logs").rglob("task_id=wait/attempt=1.log"), None), timeout=120)
        wait_for(lambda: "started with" in log.read_text(), timeout=60)
        live = log.read_text()
        state_while_seen = api.get_run(environment, "live", run_id).state
        release.touch()
        wait_for(lambda: api.get_run(environment, "live", run_id).state in ("success", "failed"), timeout=120)
    assert state_while_seen == "running"  # the task waits for `release`, created only after the line was seen
    assert "started with ***" in live and API_KEY not in live
    assert "released" in log.read_text()
