"""PythonVirtualenvOperator, ExternalPythonOperator and their decorators, run with real interpreters and venvs.

Venvs are costly, so the module makes few: one cached venv with toolz (shared through `venv_cache_path`),
one interpreter made with `python -m venv` for the external-python tests, and a couple of empty ones.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import nbflow.decorators  # noqa: F401 - registers @task.virtualenv and @task.external_python
from nbflow import DAG
from nbflow.decorators import task
from nbflow.exceptions import DagDefinitionError
from nbflow.operators.python import ExternalPythonOperator, PythonVirtualenvOperator, is_venv_installed
from nbflow.operators.python_virtualenv import VENV_MARKER, prepare_virtualenv
from nbflow.runtime.inprocess import RunResult, TaskEvent, make_run_info, run_dag_in_process
from nbflow.runtime.logs import attempt_log_path
from nbflow.runtime.run_info import TIKey
from nbflow.runtime.xcom import MemoryXComStore
from nbflow.utils.serialization import deserialize
from tests.conftest import write_dag

TOOLZ = "toolz==1.0.0"  # tiny, pure Python, and not installed where nbflow runs
LOGICAL_DATE = dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="session")
def venv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("venv-cache")


@pytest.fixture(scope="session")
def external_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A bare interpreter (no pip, no system site-packages) that is not nbflow's."""
    venv = tmp_path_factory.mktemp("external") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return str(venv / "bin" / "python")


@dataclass
class Ran:
    """One in-process DAG run: its result, XComs, errors by task and log folder."""

    dag: DAG
    result: RunResult
    xcoms: MemoryXComStore
    log_folder: Path
    errors: dict[str, str | None] = field(default_factory=dict)

    def state(self, task_id: str) -> str:
        return next(row["state"] for row in self.result.tasks if row["task_id"] == task_id)

    def xcom(self, task_id: str) -> Any:
        key = TIKey(self.dag.dag_id, task_id, self.result.run.run_id)
        return deserialize(self.xcoms.get(key, "return_value"))

    def log(self, task_id: str, try_number: int = 1) -> str:
        return attempt_log_path(self.log_folder, self.dag.dag_id, self.result.run.run_id, task_id,
                                try_number).read_text(encoding="utf-8")


def run(dag: DAG, tmp_path: Path) -> Ran:
    xcoms = MemoryXComStore()
    ran = Ran(dag, None, xcoms, tmp_path / "logs")  # type: ignore[arg-type]

    def on_event(event: TaskEvent) -> None:
        if event.kind == "finished":
            ran.errors[event.task_id] = event.error

    ran.result = run_dag_in_process(dag, run=make_run_info(dag, LOGICAL_DATE, {}), log_folder=ran.log_folder,
                                    xcoms=xcoms, on_event=on_event)
    return ran


def one_task_dag(dag_id: str, make: Callable[[], Any]) -> DAG:
    with DAG(dag_id, schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
        make()
    return dag


def toolz_venv(venv_cache: Path, task_id: str, fn: Callable[..., Any], **kwargs: Any) -> PythonVirtualenvOperator:
    """An operator on the shared cached venv (same requirements and options, so the same venv)."""
    return PythonVirtualenvOperator(task_id=task_id, python_callable=fn, requirements=[TOOLZ],
                                    system_site_packages=False, venv_cache_path=str(venv_cache), **kwargs)


# --- functions the tests run elsewhere (self-contained: imports inside) --------------------------

def toolz_sum(n):
    import sys

    import toolz
    return {"total": toolz.reduce(lambda a, b: a + b, range(n)), "prefix": sys.prefix,
            "toolz": toolz.__version__}


def describe(n, label, ds, scale=1):
    return {"n": n * scale, "label": label, "ds": ds}


def shout():
    import sys
    print("to stdout from the venv")
    print("to stderr from the venv", file=sys.stderr)
    return "done"


def fail_deep():
    def inner():
        raise ValueError("kaboom from the venv")
    inner()


# --- PythonVirtualenvOperator --------------------------------------------------------------------

def test_is_venv_installed() -> None:
    assert is_venv_installed() is True


def test_requirement_is_installed_in_the_venv_not_in_nbflows(tmp_path: Path, venv_cache: Path) -> None:
    assert importlib.util.find_spec("toolz") is None, "toolz must not be installed where nbflow runs"
    dag = one_task_dag("venv_toolz", lambda: toolz_venv(venv_cache, "sum", toolz_sum, op_args=[5]))
    ran = run(dag, tmp_path)
    assert ran.state("sum") == "success", ran.errors
    value = ran.xcom("sum")
    assert value["total"] == 10 and value["toolz"] == "1.0.0"
    assert Path(value["prefix"]).parent == venv_cache


def test_op_args_op_kwargs_templates_and_ds_reach_the_function(tmp_path: Path, venv_cache: Path) -> None:
    dag = one_task_dag("venv_args", lambda: toolz_venv(
        venv_cache, "describe", describe, op_args=[3], op_kwargs={"label": "run {{ ds_nodash }}", "scale": 2}))
    ran = run(dag, tmp_path)
    assert ran.state("describe") == "success", ran.errors
    assert ran.xcom("describe") == {"n": 6, "label": "run 20250102", "ds": "2025-01-02"}


def test_return_value_reaches_downstream_task_through_xcom(tmp_path: Path, venv_cache: Path) -> None:
    with DAG("venv_xcom", schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
        upstream = toolz_venv(venv_cache, "sum", toolz_sum, op_args=[4])

        @task
        def double(value: dict) -> int:
            return value["total"] * 2

        double(upstream.output)
    ran = run(dag, tmp_path)
    assert ran.result.state == "success", ran.errors
    assert ran.xcom("double") == 12


def test_output_of_the_function_is_in_the_task_log(tmp_path: Path, venv_cache: Path) -> None:
    dag = one_task_dag("venv_log", lambda: toolz_venv(venv_cache, "shout", shout))
    ran = run(dag, tmp_path)
    assert ran.state("shout") == "success", ran.errors
    log = ran.log("shout")
    assert "to stdout from the venv" in log and "to stderr from the venv" in log
    assert "Returned value was: 'done'" in log


def test_failing_function_fails_task_with_its_traceback(tmp_path: Path, venv_cache: Path) -> None:
    dag = one_task_dag("venv_fail", lambda: toolz_venv(venv_cache, "fail", fail_deep))
    ran = run(dag, tmp_path)
    assert ran.state("fail") == "failed"
    error = ran.errors["fail"]
    assert "task 'fail': fail_deep() failed" in error
    assert "ValueError: kaboom from the venv" in error
    assert f'File "{__file__}"' in error and "in inner" in error  # the function's own file and frames
    assert "_nbflow_main" not in error  # the runner's frames are left out


def test_cached_venv_is_reused_not_recreated(tmp_path: Path, venv_cache: Path) -> None:
    dag = one_task_dag("venv_cache", lambda: toolz_venv(venv_cache, "sum", toolz_sum, op_args=[3]))
    first = run(dag, tmp_path / "first")
    assert first.state("sum") == "success", first.errors
    venv_dir = Path(first.xcom("sum")["prefix"])
    marker = (venv_dir / VENV_MARKER).stat()

    second = run(dag, tmp_path / "second")
    assert second.state("sum") == "success", second.errors
    assert Path(second.xcom("sum")["prefix"]) == venv_dir
    assert (venv_dir / VENV_MARKER).stat().st_mtime_ns == marker.st_mtime_ns
    assert f"Using the cached virtualenv {venv_dir}" in second.log("sum")
    assert "Creating virtualenv" not in second.log("sum")


def test_unfinished_cached_venv_is_rebuilt(tmp_path: Path) -> None:
    def prefix():
        import sys
        return sys.prefix

    cache = tmp_path / "cache"
    dag = one_task_dag("venv_rebuild", lambda: PythonVirtualenvOperator(
        task_id="prefix", python_callable=prefix, venv_cache_path=str(cache)))
    venv_dir = Path(run(dag, tmp_path / "first").xcom("prefix"))
    (venv_dir / VENV_MARKER).unlink()  # as if the run creating it had died

    second = run(dag, tmp_path / "second")
    assert second.state("prefix") == "success", second.errors
    assert f"Removing {venv_dir}" in second.log("prefix")
    assert (venv_dir / VENV_MARKER).exists()


def test_cloudpickle_serializer_installs_cloudpickle_in_the_venv(tmp_path: Path) -> None:
    def halves(x):
        import sys
        import cloudpickle  # noqa: F401 - installed because the serializer needs it
        return x / 2, sys.prefix

    dag = one_task_dag("venv_cloud", lambda: PythonVirtualenvOperator(
        task_id="halves", python_callable=halves, op_args=[3], serializer="cloudpickle",
        system_site_packages=False, venv_cache_path=str(tmp_path / "cache")))
    ran = run(dag, tmp_path)
    assert ran.state("halves") == "success", ran.errors
    half, prefix = ran.xcom("halves")
    assert half == 1.5
    assert json.loads((Path(prefix) / VENV_MARKER).read_text())["requirements"] == ["cloudpickle"]


def test_temporary_venv_is_deleted_after_the_run(tmp_path: Path) -> None:
    def where():
        import sys
        return sys.prefix

    dag = one_task_dag("venv_temp", lambda: PythonVirtualenvOperator(task_id="where", python_callable=where))
    ran = run(dag, tmp_path)
    assert ran.state("where") == "success", ran.errors
    prefix = Path(ran.xcom("where"))
    assert prefix != Path(sys.prefix) and prefix.name == "venv"
    assert not prefix.exists()


def test_requirements_file_is_read_and_rendered(tmp_path: Path, venv_cache: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pinned\ntoolz=={{ params.toolz }}\n", encoding="utf-8")
    dag = one_task_dag("venv_reqfile", lambda: PythonVirtualenvOperator(
        task_id="sum", python_callable=toolz_sum, op_args=[3], requirements=str(requirements),
        params={"toolz": "1.0.0"}, system_site_packages=False, venv_cache_path=str(venv_cache)))
    ran = run(dag, tmp_path)
    assert ran.state("sum") == "success", ran.errors
    assert ran.xcom("sum")["toolz"] == "1.0.0"
    marker = json.loads((Path(ran.xcom("sum")["prefix"]) / VENV_MARKER).read_text())
    assert marker["requirements"] == [TOOLZ]  # comment dropped, template rendered: the shared venv's key


def test_pickle_serializer_sends_what_json_cannot(tmp_path: Path, venv_cache: Path) -> None:
    from fractions import Fraction

    def triple(x):
        return x * 3, {1j}

    dag = one_task_dag("venv_pickle", lambda: toolz_venv(
        venv_cache, "triple", triple, op_args=[Fraction(1, 3)], serializer="pickle", do_xcom_push=False))
    ran = run(dag, tmp_path)  # XComs are JSON, so the log shows what came back
    assert ran.state("triple") == "success", ran.errors
    assert "Returned value was: (Fraction(1, 1), {1j})" in ran.log("triple")


def test_json_serializer_round_trips_datetimes_tuples_and_sets(external_python: str, tmp_path: Path) -> None:
    def shift(logical_date, days):
        import datetime
        return logical_date + datetime.timedelta(days=days), (1, 2), {"a"}

    dag = one_task_dag("venv_json", lambda: ExternalPythonOperator(
        task_id="shift", python=external_python, python_callable=shift, op_kwargs={"days": 1}))
    ran = run(dag, tmp_path)
    assert ran.state("shift") == "success", ran.errors
    assert ran.xcom("shift") == (LOGICAL_DATE + dt.timedelta(days=1), (1, 2), {"a"})


def test_return_value_json_cannot_send_is_a_clear_error(external_python: str, tmp_path: Path) -> None:
    def make():
        return object()

    dag = one_task_dag("venv_badjson", lambda: ExternalPythonOperator(
        task_id="make", python=external_python, python_callable=make))
    ran = run(dag, tmp_path)
    assert ran.state("make") == "failed"
    assert "make() returned a builtins.object, which serializer 'json' cannot write back" in ran.errors["make"]


def test_argument_json_cannot_send_is_a_clear_error(external_python: str, tmp_path: Path) -> None:
    dag = one_task_dag("venv_badarg", lambda: ExternalPythonOperator(
        task_id="describe", python=external_python, python_callable=describe, op_args=[1],
        op_kwargs={"label": object()}))
    ran = run(dag, tmp_path)
    assert ran.state("describe") == "failed"
    assert ("task 'describe': op_args/op_kwargs with serializer='json' (or use 'pickle'): cannot store a value of "
            "type builtins.object") in ran.errors["describe"]


def test_skip_on_exit_code_skips_the_task(external_python: str, tmp_path: Path) -> None:
    def leave():
        import sys
        sys.exit(3)

    dag = one_task_dag("venv_skip", lambda: ExternalPythonOperator(
        task_id="leave", python=external_python, python_callable=leave, skip_on_exit_code=3))
    ran = run(dag, tmp_path)
    assert ran.state("leave") == "skipped"
    assert "Process exited with code 3. Skipping." in ran.log("leave")


def test_function_taking_ti_is_a_clear_error(external_python: str, tmp_path: Path) -> None:
    def peek(ti):
        return ti

    dag = one_task_dag("venv_ti", lambda: ExternalPythonOperator(
        task_id="peek", python=external_python, python_callable=peek))
    ran = run(dag, tmp_path)
    assert ran.state("peek") == "failed"
    assert "peek() takes the context entry 'ti', which cannot be sent to another interpreter" in ran.errors["peek"]


def test_string_args_and_env_vars_reach_the_function(external_python: str, tmp_path: Path) -> None:
    def read():
        import os
        return virtualenv_string_args, os.environ["NBFLOW_TEST_COLOR"]  # noqa: F821 - the runner's global

    dag = one_task_dag("venv_strings", lambda: ExternalPythonOperator(
        task_id="read", python=external_python, python_callable=read, string_args=["a", "b"],
        env_vars={"NBFLOW_TEST_COLOR": "blue"}))
    ran = run(dag, tmp_path)
    assert ran.state("read") == "success", ran.errors
    assert ran.xcom("read") == (["a", "b"], "blue")


def test_function_process_is_killed_when_the_task_times_out(external_python: str, tmp_path: Path) -> None:
    def linger(pid_file):
        import os
        import time
        with open(pid_file, "w") as file:
            file.write(str(os.getpid()))
        time.sleep(60)

    pid_file = tmp_path / "pid"
    dag = one_task_dag("venv_timeout", lambda: ExternalPythonOperator(
        task_id="linger", python=external_python, python_callable=linger, op_args=[str(pid_file)],
        execution_timeout=dt.timedelta(seconds=1)))
    ran = run(dag, tmp_path)
    assert ran.state("linger") == "failed"
    assert "timed out" in ran.errors["linger"]
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


# --- ExternalPythonOperator ----------------------------------------------------------------------

def test_external_python_runs_in_the_given_interpreter(external_python: str, tmp_path: Path) -> None:
    def where(ds):
        import sys
        return sys.executable, ds

    dag = one_task_dag("ext_where", lambda: ExternalPythonOperator(
        task_id="where", python=external_python, python_callable=where))
    ran = run(dag, tmp_path)
    assert ran.state("where") == "success", ran.errors
    assert ran.xcom("where") == (external_python, "2025-01-02")


def _older_python() -> str | None:
    """A Python 3.7 or 3.8 on this machine (PATH or pyenv), to check the runner needs nothing newer."""
    candidates = [shutil.which(f"python3.{minor}") for minor in (7, 8)]
    candidates += sorted(str(p) for p in Path("~/.pyenv/versions").expanduser().glob("3.[78].*/bin/python"))
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] in ((3, 7), (3, 8))"],
                          capture_output=True).returncode == 0:
            return candidate
    return None


def test_runner_works_on_an_older_python(tmp_path: Path) -> None:
    python = _older_python()
    if python is None:
        pytest.skip("no Python 3.7 or 3.8 on PATH or under ~/.pyenv/versions")

    def version(when):
        import sys
        return sys.version_info[:2], when

    dag = one_task_dag("ext_old", lambda: ExternalPythonOperator(
        task_id="version", python=python, python_callable=version, op_kwargs={"when": LOGICAL_DATE}))
    ran = run(dag, tmp_path)
    assert ran.state("version") == "success", ran.errors
    found, when = ran.xcom("version")
    assert found in ((3, 7), (3, 8)) and when == LOGICAL_DATE


def test_missing_interpreter_is_a_clear_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere" / "bin" / "python")
    dag = one_task_dag("ext_missing", lambda: ExternalPythonOperator(
        task_id="where", python=missing, python_callable=describe, retries=2, retry_delay=0))
    ran = run(dag, tmp_path)
    assert ran.state("where") == "failed"
    assert f"task 'where': python {missing!r} does not exist" in ran.errors["where"]
    assert next(row for row in ran.result.tasks if row["task_id"] == "where")["try_number"] == 1  # not retried


def test_non_executable_interpreter_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("not an interpreter")
    dag = one_task_dag("ext_noexec", lambda: ExternalPythonOperator(
        task_id="where", python=str(fake), python_callable=describe))
    ran = run(dag, tmp_path)
    assert ran.state("where") == "failed"
    assert f"python {str(fake)!r} is not an executable file" in ran.errors["where"]


def test_cloudpickle_missing_in_the_interpreter_is_a_clear_error(external_python: str, tmp_path: Path) -> None:
    def one():
        return 1

    dag = one_task_dag("ext_nocloud", lambda: ExternalPythonOperator(
        task_id="one", python=external_python, python_callable=one, serializer="cloudpickle"))
    ran = run(dag, tmp_path)
    assert ran.state("one") == "failed"
    assert f"serializer 'cloudpickle' is not installed in {external_python}" in ran.errors["one"]


def test_cloudpickle_serializer_where_it_is_installed(tmp_path: Path) -> None:
    def pair(x):
        return x, x * 2

    dag = one_task_dag("ext_cloud", lambda: ExternalPythonOperator(
        task_id="pair", python=sys.executable, python_callable=pair, op_args=[2.5], serializer="cloudpickle"))
    ran = run(dag, tmp_path)
    assert ran.state("pair") == "success", ran.errors
    assert ran.xcom("pair") == (2.5, 5.0)


# --- decorators ----------------------------------------------------------------------------------

def test_task_virtualenv_decorator(tmp_path: Path, venv_cache: Path) -> None:
    with DAG("deco_venv", schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
        @task.virtualenv(
            requirements=[TOOLZ], system_site_packages=False, venv_cache_path=str(venv_cache),
        )
        def frequencies(word: str) -> dict:
            import toolz
            return toolz.frequencies(word)

        @task
        def most_common(counts: dict) -> str:
            return max(counts, key=counts.get)

        most_common(frequencies("banana"))
    ran = run(dag, tmp_path)
    assert ran.result.state == "success", ran.errors
    assert ran.xcom("frequencies") == {"b": 1, "a": 3, "n": 2}
    assert ran.xcom("most_common") == "a"


def test_task_external_python_decorator(external_python: str, tmp_path: Path) -> None:
    with DAG("deco_ext", schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
        @task.external_python(python=external_python)
        def where(suffix: str, ds=None) -> str:
            import sys
            return f"{sys.executable} {ds} {suffix}"

        where("!")
    ran = run(dag, tmp_path)
    assert ran.state("where") == "success", ran.errors
    assert ran.xcom("where") == f"{external_python} 2025-01-02 !"


DAG_FILE = """
import datetime as dt
from nbflow import DAG
from nbflow.decorators import task

with DAG("from_file", schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
    @task.external_python(
        python=PYTHON,
        serializer="json",
    )
    def explode(n: int) -> int:
        \"\"\"A docstring whose second line is
less indented than the def, which stops textwrap.dedent.\"\"\"
        if n > 1:
            raise RuntimeError(f"too big: {n}")
        return n

    explode(2)
"""


def test_function_from_a_dag_file_fails_with_its_file_and_line(external_python: str, tmp_path: Path) -> None:
    path = write_dag(tmp_path, "from_file.py", DAG_FILE.replace("PYTHON", repr(external_python)))
    spec = importlib.util.spec_from_file_location("nbflow_test_from_file", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ran = run(module.dag, tmp_path)
    assert ran.state("explode") == "failed"
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "raise RuntimeError" in text)
    assert f'File "{path}", line {line}, in explode' in ran.errors["explode"]
    assert "RuntimeError: too big: 2" in ran.errors["explode"]


# --- what is refused while the DAG is parsed -----------------------------------------------------

def test_function_using_an_enclosing_variable_is_refused() -> None:
    factor = 3

    def scaled(x):
        return x * factor

    with pytest.raises(DagDefinitionError, match=r"scaled\(\) uses factor from an enclosing function"):
        ExternalPythonOperator(task_id="scaled", python=sys.executable, python_callable=scaled)


def test_lambda_is_refused() -> None:
    with pytest.raises(DagDefinitionError, match="must be a function defined with `def`"):
        PythonVirtualenvOperator(task_id="lam", python_callable=lambda: 1)


def test_unknown_serializer_is_refused() -> None:
    with pytest.raises(DagDefinitionError, match="serializer 'yaml' is not one of: json, pickle, cloudpickle, dill"):
        PythonVirtualenvOperator(task_id="ser", python_callable=describe, serializer="yaml")


# --- without uv: virtualenv + pip -----------------------------------------------------------------

def test_pip_installer_creates_venv_with_requirements(tmp_path: Path) -> None:
    python = prepare_virtualenv(tmp_path / "venv", system_site_packages=False, requirements=[TOOLZ],
                                installer="pip")
    found = subprocess.run([python, "-c", "import toolz; print(toolz.__version__)"], capture_output=True,
                           text=True, check=True)
    assert found.stdout.strip() == "1.0.0"
