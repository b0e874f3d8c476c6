"""The Airflow-compatible import paths that only re-export, listed in one place.

A DAG written for Airflow runs after renaming `airflow` to `nbflow`, so nbflow keeps Airflow's
module paths (`nbflow.models`, `nbflow.decorators`, `nbflow.utils.trigger_rule`, `nbflow.sdk`,
`nbflow.providers.standard.operators.bash`, ...). Where Airflow's path is not where the code
belongs in nbflow's layers (DESIGN.md), the path is a module that only re-exports: nothing but
imports, `__all__` and a docstring that starts "Airflow-compatible path". The real code lives
in its layer, and nbflow's own code imports it from there, never through one of these paths.
That is why `nbflow.utils.trigger_rule` (core) may name `nbflow.authoring`: it holds no code.

`tests/airflow_compat/test_compat_modules.py` checks that every module below only re-exports,
that every module saying it is such a path is listed here, and that no other module imports one.
Airflow paths that are the real code's own home (`nbflow.operators.python`, `nbflow.operators.bash`,
`nbflow.operators.empty`, `nbflow.hooks.base`, `nbflow.utils.state`, `nbflow.utils.timezone`,
`nbflow.exceptions`, ...) are ordinary modules and are not listed.
"""
from __future__ import annotations

#: Every Airflow-compatible module path that only re-exports.
REEXPORT_MODULES: tuple[str, ...] = (
    # Airflow 2's authoring paths
    "nbflow.decorators",
    "nbflow.models",
    "nbflow.models.baseoperator",
    "nbflow.models.connection",
    "nbflow.models.dag",
    "nbflow.models.param",
    "nbflow.models.variable",
    "nbflow.models.xcom_arg",
    "nbflow.utils.dates",
    "nbflow.utils.edgemodifier",
    "nbflow.utils.email",
    "nbflow.utils.helpers",
    "nbflow.utils.task_group",
    "nbflow.utils.trigger_rule",
    "nbflow.utils.weight_rule",
    # Airflow 1's operator modules
    "nbflow.operators.bash_operator",
    "nbflow.operators.dummy",
    "nbflow.operators.dummy_operator",
    "nbflow.operators.python_operator",
    # Airflow 3's task SDK and providers
    "nbflow.sdk",
    "nbflow.providers",
    "nbflow.providers.papermill",
    "nbflow.providers.papermill.operators",
    "nbflow.providers.papermill.operators.papermill",
    "nbflow.providers.smtp",
    "nbflow.providers.smtp.notifications",
    "nbflow.providers.smtp.notifications.smtp",
    "nbflow.providers.smtp.operators",
    "nbflow.providers.smtp.operators.smtp",
    "nbflow.providers.standard",
    "nbflow.providers.standard.operators",
    "nbflow.providers.standard.operators.bash",
    "nbflow.providers.standard.operators.branch",
    "nbflow.providers.standard.operators.empty",
    "nbflow.providers.standard.operators.latest_only",
    "nbflow.providers.standard.operators.python",
    "nbflow.providers.standard.operators.trigger_dagrun",
    "nbflow.providers.standard.sensors",
    "nbflow.providers.standard.sensors.bash",
    "nbflow.providers.standard.sensors.date_time",
    "nbflow.providers.standard.sensors.external_task",
    "nbflow.providers.standard.sensors.filesystem",
    "nbflow.providers.standard.sensors.python",
    "nbflow.providers.standard.sensors.time",
    "nbflow.providers.standard.sensors.time_delta",
    "nbflow.providers.standard.sensors.weekday",
)
