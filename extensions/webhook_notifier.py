"""Example notifier plugin: POST a JSON summary of the task or run to a URL (Slack-style webhooks, chat bots).

A module in the plugins folder (`[core] plugins_folder`) that defines a BaseNotifier subclass makes
it available by class name, in a DAG file and wherever the DAG is parsed again (worker, callback child):

    from nbflow.notifications import get_notifier
    WebhookNotifier = get_notifier("WebhookNotifier")

    PythonOperator(..., on_failure_callback=[WebhookNotifier(url="https://hooks.example.com/{{ dag.dag_id }}")])

The body: {"dag_id", "task_id", "run_id", "state", "try_number", "exception"} (task_id null for a DAG's
own callback). The request is bounded by `timeout`; a failure (unreachable, HTTP error) is one line in
the task's log and never changes a state (BaseNotifier.__call__).
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from nbflow.notifications.basenotifier import BaseNotifier


class WebhookNotifier(BaseNotifier):
    """POST JSON to `url` (templated, as are the headers)."""

    template_fields = ("url", "headers")

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, timeout: float = 10.0) -> None:
        self.url, self.headers, self.timeout = url, dict(headers or {}), timeout

    def payload(self, context: dict[str, Any]) -> dict[str, Any]:
        ti, task, dag = context.get("ti"), context.get("task"), context.get("dag")
        exception = context.get("exception")
        return {"dag_id": getattr(dag, "dag_id", None), "task_id": getattr(task, "task_id", None),
                "run_id": context.get("run_id"),
                "state": getattr(ti, "state", None) or context.get("reason"),
                "try_number": getattr(ti, "try_number", None),
                "exception": str(exception) if exception is not None else None}

    def notify(self, context: dict[str, Any]) -> None:
        body = json.dumps(self.payload(context), default=str).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", **self.headers})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - the user's URL
                response.read()
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"the server answered HTTP {err.code} {err.reason}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise RuntimeError(f"{reason} (timeout {self.timeout:g} s)") from None

    def describe(self) -> str:
        return f"WebhookNotifier to {self.url}"
