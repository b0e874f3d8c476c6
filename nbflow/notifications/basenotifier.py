"""BaseNotifier (Airflow 2.6+): an object usable wherever a callback is, rendering its templated fields first.

`on_failure_callback=[SmtpNotifier(...), my_function]` calls the notifier with the task's (or DAG's)
context. A notifier never fails what called it: its error is one line in the log it runs under
(the attempt's log, or the run's callbacks.log), and the next callback still runs.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

from nbflow.utils.registry import Registry

#: Every BaseNotifier subclass by class name; entry point group `nbflow.notifiers`; the plugins
#: folder's modules add theirs when loaded (plugins.py).
notifiers: Registry[type["BaseNotifier"]] = Registry("notifier", entry_points="nbflow.notifiers")


class BaseNotifier:
    """Subclass, set `template_fields` and implement `notify(context)`."""

    template_fields: ClassVar[Sequence[str]] = ()
    template_ext: ClassVar[Sequence[str]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        notifiers.add(cls.__name__, cls)

    @property
    def task_id(self) -> str:
        """How template errors name this notifier (they name a task otherwise)."""
        return f"notifier {type(self).__name__}"

    def notify(self, context: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement notify(context)")

    def render_template_fields(self, context: dict[str, Any], jinja_env: Any = None) -> None:
        """Render each of `template_fields` in place, with the context (Airflow's macros and filters too)."""
        from nbflow.authoring.templating import make_template_env, render_value

        dag = context.get("dag")
        env = jinja_env or (dag.get_template_env() if dag is not None else make_template_env(None))
        for name in self.template_fields:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, render_value(self, name, value, context, env))

    def __call__(self, *args: Any) -> None:
        """Called as a callback: render a copy (this object serves every run), notify, log a failure in one line."""
        context = args[0] if args else {}
        work = copy.copy(self)
        try:
            work.render_template_fields(context)
            work.notify(context)
        except Exception as err:  # noqa: BLE001 - a notification never changes a task's or run's state
            print(f"[nbflow] {work.describe()} failed: {err}", flush=True)

    def describe(self) -> str:
        """Who was to be told, for the one failure line ('SmtpNotifier to a@x')."""
        return type(self).__name__
