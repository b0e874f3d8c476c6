"""Building the configured executor: one registry lookup, then the executor reads its own settings.

Adding an executor is a module and a decorator, never a branch here. A `celery` executor, say:

    # nbflow/runtime/executors/celery.py
    @dataclass(frozen=True, slots=True)
    class CeleryExecutorSettings(ExecutorSettings):
        broker_url: str
        result_backend: str

    @executors.register("celery")
    class CeleryExecutor(BaseExecutor):
        @classmethod
        def settings_from_config(cls, config: Config) -> CeleryExecutorSettings:
            return CeleryExecutorSettings(parallelism=config.getint("core", "parallelism"),
                                          broker_url=config.get("celery", "broker_url"), ...)

with its defaults as a `[celery]` section in `nbflow.configuration.DEFAULTS` (so
`NBFLOW__CELERY__BROKER_URL` overrides them), `celery` itself imported inside `start()` (it is an
extra), and the module named in `BUILTIN_EXECUTORS` below. A third-party executor skips that
last step: it publishes its class under the `nbflow.executors` entry point group instead.
"""
from __future__ import annotations

import importlib

from nbflow.configuration import Config
from nbflow.runtime.executors.base import BaseExecutor, RunWorkload, executors

#: Modules whose import registers the executors shipped with nbflow.
BUILTIN_EXECUTORS = ("nbflow.runtime.executors.local", "nbflow.runtime.executors.sequential")


def build_executor(config: Config, *, name: str | None = None,
                   run_workload: RunWorkload | None = None) -> BaseExecutor:
    """The executor `name` (default `[core] executor`), built from the settings it reads from `config`.

    `run_workload` runs one attempt in this process; executors that run attempts elsewhere ignore it.
    An unknown name raises UnknownPluginError listing the known ones.
    """
    for module in BUILTIN_EXECUTORS:
        importlib.import_module(module)
    executor_cls = executors.get(name or config.get("core", "executor"), where="core.executor")
    return executor_cls(executor_cls.settings_from_config(config), run_workload=run_workload)
