"""BashOperator: run a templated bash command; its last output line is the XCom."""
from __future__ import annotations

import os
import signal
import subprocess
from collections import deque
from collections.abc import Callable, Container
from typing import Any

from nbflow.authoring.baseoperator import BaseOperator
from nbflow.authoring.taskflow import DecoratedOperator, task_decorator_factory, task_decorators
from nbflow.exceptions import NbflowException, NbflowSkipException

TAIL_LINES = 20
KILL_GRACE_SECONDS = 5.0  # after SIGTERM, before SIGKILL


class BashOperator(BaseOperator):
    """Exit code 99 (skip_on_exit_code) marks the task skipped; any other non-zero exit fails it."""

    template_fields = ("bash_command", "env", "cwd")
    template_fields_renderers = {"bash_command": "bash", "env": "json"}
    template_ext = (".sh", ".bash")
    ui_color = "#f0ede4"

    def __init__(self, *, bash_command: str, env: dict[str, str] | None = None, append_env: bool = False,
                 output_encoding: str = "utf-8", skip_on_exit_code: int | Container[int] | None = 99,
                 cwd: str | None = None, output_processor: Callable[[str], Any] = lambda out: out,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = env
        self.append_env = append_env
        self.output_encoding = output_encoding
        self.skip_on_exit_code = (skip_on_exit_code if isinstance(skip_on_exit_code, Container)
                                  else [skip_on_exit_code] if skip_on_exit_code is not None else [])
        self.cwd = cwd
        self.output_processor = output_processor
        self._process: subprocess.Popen[bytes] | None = None

    def _environment(self, context: dict[str, Any]) -> dict[str, str]:
        env = dict(os.environ) if self.env is None or self.append_env else {}
        env.update({k: str(v) for k, v in (self.env or {}).items()})
        ti, dag_run = context.get("ti"), context.get("dag_run")
        env.update({
            "NBFLOW_CTX_DAG_ID": self.dag_id, "NBFLOW_CTX_TASK_ID": self.task_id,
            "NBFLOW_CTX_RUN_ID": str(context.get("run_id", "")),
            "NBFLOW_CTX_LOGICAL_DATE": str(context.get("logical_date", "") or ""),
            "NBFLOW_CTX_TRY_NUMBER": str(getattr(ti, "try_number", 1)),
            "NBFLOW_CTX_DAG_RUN_ID": str(getattr(dag_run, "run_id", "")),
        })
        return env

    def execute(self, context: dict[str, Any]) -> Any:
        if self.cwd is not None and not os.path.isdir(self.cwd):
            raise NbflowException(f"task {self.task_id!r}: cwd {self.cwd!r} is not a folder")
        if not str(self.bash_command).strip():
            raise NbflowException(f"task {self.task_id!r}: bash_command is empty")
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        process = subprocess.Popen(["bash", "-c", self.bash_command], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, env=self._environment(context), cwd=self.cwd,
                                   start_new_session=True)
        self._process = process
        assert process.stdout is not None
        with process.stdout:  # closed however reading ends (a timeout raises in here)
            for raw in iter(process.stdout.readline, b""):
                line = raw.decode(self.output_encoding, errors="replace").rstrip("\n")
                tail.append(line)
                print(line, flush=True)
        code = process.wait()
        self._process = None
        if code in self.skip_on_exit_code:
            raise NbflowSkipException(f"bash command exited with code {code}; skipping")
        if code != 0:
            shown = "\n".join(tail)
            raise NbflowException(f"task {self.task_id!r}: bash command failed with exit code {code}; "
                                  f"last output:\n{shown}")
        return self.output_processor(tail[-1]) if tail else None

    def on_kill(self) -> None:
        """Stop the command and everything it started (its own session), then reap it."""
        process = self._process
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=KILL_GRACE_SECONDS)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._process = None


class _BashDecoratedOperator(DecoratedOperator, BashOperator):
    """`@task.bash`: the function returns the command to run."""

    custom_operator_name = "@task.bash"
    template_fields = ("op_args", "op_kwargs", "env", "cwd")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(bash_command="(set by the function)", **kwargs)

    def execute(self, context: dict[str, Any]) -> Any:
        from nbflow.operators.python import determine_kwargs
        extra = determine_kwargs(self.python_callable, self.op_args, context)
        command = self.python_callable(*self.op_args, **{**extra, **self.op_kwargs})
        if not isinstance(command, str) or not command.strip():
            raise NbflowException(f"task {self.task_id!r}: @task.bash function must return a non-empty command "
                                  f"string, got {command!r}")
        self.bash_command = self.render_template(command, context)
        return super().execute(context)


def bash_task(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """`@task.bash`."""
    return task_decorator_factory(python_callable, decorated_operator_class=_BashDecoratedOperator, **kwargs)


task_decorators.add("bash", bash_task)
