"""BashSensor: done when a bash command exits 0."""
from __future__ import annotations

import os
import subprocess
from typing import Any

from nbflow.exceptions import NbflowFailException
from nbflow.sensors.base import BaseSensorOperator


class BashSensor(BaseSensorOperator):
    """Exit 0: done. Another code: poke again; with `retry_exit_code`, only that code pokes again and any other
    non-zero code fails the task (Airflow's rule)."""

    template_fields = ("bash_command", "env")

    def __init__(self, *, bash_command: str, env: dict[str, str] | None = None, output_encoding: str = "utf-8",
                 retry_exit_code: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = env
        self.output_encoding = output_encoding
        self.retry_exit_code = retry_exit_code

    def poke(self, context: dict[str, Any]) -> bool:
        env = None if self.env is None else {**self.env}
        result = subprocess.run(["bash", "-c", self.bash_command], env=env if env is not None else os.environ.copy(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        for line in result.stdout.decode(self.output_encoding, errors="replace").splitlines():
            self.log.info("%s", line)
        self.log.info("command exited with return code %s", result.returncode)
        if result.returncode == 0:
            return True
        if self.retry_exit_code is not None and result.returncode != self.retry_exit_code:
            raise NbflowFailException(f"sensor {self.task_id!r}: command exited with {result.returncode}, "
                                      f"not 0 or retry_exit_code {self.retry_exit_code}")
        return False


__all__ = ["BashSensor"]
