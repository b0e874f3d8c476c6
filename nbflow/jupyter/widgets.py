"""DagWidget: a DAG's live graph, its runs, task table and log tail, from the metadata database.

The graph is laid out by graphviz once per DAG structure (nbflow/graph.py, as `nbflow dags show`) and
recoloured in the browser from a small `states` map; one refresher thread per kernel polls the
database and sends only what changed (see refresher.py). It shows runs started anywhere: by this
kernel, by `nbflow scheduler`, by someone's CLI. Its last state is also kept as static HTML (SVG and
table) in the output, so a saved notebook shows how the run ended where widgets do not run.
"""
from __future__ import annotations

import hashlib
import html
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from nbflow.exceptions import NbflowException
from nbflow.graph import STATE_COLORS, dag_to_dot, node_id, render
from nbflow.jupyter.refresher import refresher
from nbflow.runtime.run_view import RunView
from nbflow.utils.state import FAILED_STATES, RUN_FINISHED_STATES, TIMED_WAIT_STATES, TaskInstanceState

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.runtime.api import Environment
    from nbflow.runtime.serialized_dag import SerializedDag

_HERE = Path(__file__).parent


def _state_css() -> str:
    rules = [f'.nbflow-dag g.node[data-state="{state}"] path, .nbflow-dag g.node[data-state="{state}"] polygon '
             f'{{ fill: {color}; }}\n.nbflow-dag tr[data-state="{state}"] td.nbflow-state {{ background: {color}; }}'
             for state, color in STATE_COLORS.items()]
    return (_HERE / "dag_widget.css").read_text(encoding="utf-8") + "\n".join(rules) + "\n"


_svg_cache: dict[str, str] = {}


def layout_svg(dag: "DAG | SerializedDag") -> str:
    """The DAG's SVG with every node white; `dot` runs once per structure (cached by the DOT text)."""
    dot = dag_to_dot(dag, states={})
    key = hashlib.sha1(dot.encode()).hexdigest()
    if key not in _svg_cache:
        svg = render(dot, "svg").decode("utf-8")
        _svg_cache[key] = svg[svg.find("<svg"):] if "<svg" in svg else svg
    return _svg_cache[key]


class DagWidget(anywidget.AnyWidget):
    """Live graph, run picker, buttons, task table and log tail for one DAG; refreshes itself until closed."""

    _esm = _HERE / "dag_widget.js"
    _css = _state_css()

    dag_id = traitlets.Unicode("").tag(sync=True)
    svg = traitlets.Unicode("").tag(sync=True)
    node_ids = traitlets.Dict().tag(sync=True)  # node id in the SVG → task id
    states = traitlets.Dict().tag(sync=True)  # task id → state, of the run shown
    runs = traitlets.List().tag(sync=True)  # [{run_id, state, logical_date}], newest first
    run_id = traitlets.Unicode("").tag(sync=True)  # the run shown
    follow_latest = traitlets.Bool(True).tag(sync=True)  # show each new run as it starts
    tasks = traitlets.List().tag(sync=True)  # [{task_id, label, state, try_number, start, duration}]
    selected_task = traitlets.Unicode("").tag(sync=True)
    log = traitlets.Unicode("").tag(sync=True)
    log_try = traitlets.Int(0).tag(sync=True)
    paused = traitlets.Bool(None, allow_none=True).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)  # one line: what went wrong, or what a button did

    def __init__(self, dag_id: str, run_id: str | None = None, *, dag: "DAG | SerializedDag | None" = None,
                 env: "Environment | None" = None, refresh: bool = True,
                 reader: "Callable[[DagWidget], RunView | None] | None" = None) -> None:
        """`reader`, when given, replaces the database as what the widget shows (a `%dag test` run is in
        no database); the buttons then only say so."""
        super().__init__(dag_id=dag_id, run_id=run_id or "", follow_latest=run_id is None)
        self._reader = reader
        self._env = env if env is not None or reader is not None else _default_env()
        self.dag = dag if dag is not None else self._find_dag(dag_id)
        self._view: RunView | None = None
        self._static_for: tuple[Any, ...] | None = None
        self.display_handle: Any = None
        if self.dag is not None:
            try:
                self.svg = layout_svg(self.dag)
            except NbflowException as err:
                self.message = f"no graph: {err}"
            self.node_ids = {node_id(task_id): task_id for task_id in self.dag.task_dict}
        self.on_msg(self._on_action)
        self.refresh()
        if refresh:
            refresher.watch(self)

    def _find_dag(self, dag_id: str) -> "DAG | SerializedDag | None":
        """A kernel's cell DAG as the environment holds it, else as the DAG processor stored it (never
        imported in this process)."""
        from nbflow.runtime import api
        try:
            return api.dag_structure(self._env, dag_id)
        except NbflowException as err:
            self.message = str(err).splitlines()[0]
            return None

    # -- from the database ------------------------------------------------------------------------
    def read(self) -> RunView | None:
        """What the database says now (runs on the refresher thread); None with `message` set when it cannot."""
        from nbflow.runtime.run_view import read_run_view
        if self._reader is not None:
            return self._reader(self)
        try:
            return read_run_view(self._env.readers, self._env.config.log_folder, self.dag_id,
                                 run_id=None if self.follow_latest else (self.run_id or None),
                                 log_task=self.selected_task or None)
        except Exception as err:  # noqa: BLE001 - one line in the widget; the kernel goes on
            self.message = f"cannot read the metadata database: {str(err).splitlines()[0] if str(err) else err}"
            return None

    def refresh(self) -> None:
        """Read and show now (the refresher calls `apply(read())` off the kernel's main thread)."""
        self.apply(self.read())

    def apply(self, view: RunView | None) -> None:
        """Set only the traits that changed, in one message."""
        if view is None or view == self._view:
            return
        old, self._view = self._view, view
        with self.hold_sync():
            if old is None or old.runs != view.runs:
                self.runs = [{"run_id": r.run_id, "state": r.state, "run_type": r.run_type,
                              "logical_date": r.logical_date.isoformat() if r.logical_date else None}
                             for r in view.runs]
            if self.run_id != (view.run_id or ""):
                self.run_id = view.run_id or ""
            if old is None or old.tasks != view.tasks:
                self.states = view.states
                self.tasks = [_task_row(task) for task in view.tasks]
            if self.paused != view.paused:
                self.paused = view.paused
            if self.log != view.log:
                self.log = view.log
            if self.log_try != (view.log_try or 0):
                self.log_try = view.log_try or 0
            if self.message.startswith("cannot read"):
                self.message = ""
        self._update_static()

    # -- buttons --------------------------------------------------------------------------------------
    def _on_action(self, widget: Any, content: dict[str, Any], buffers: Any) -> None:
        action = content.get("action") if isinstance(content, dict) else None
        try:
            self.message = self.act(str(action))
        except NbflowException as err:
            self.message = str(err).splitlines()[0]
        except Exception as err:  # noqa: BLE001 - a button never raises into the kernel
            self.message = f"{action} failed: {type(err).__name__}: {err}"
        self.refresh()

    def act(self, action: str) -> str:
        """Trigger, clear_failed, pause or unpause, through the runtime's door; what happened, in one line."""
        from nbflow.runtime import api

        if self._reader is not None:
            return f"this is a test run, kept in no database: `%dag run {self.dag_id}` starts a run these buttons act on"
        if action == "trigger":
            run = api.trigger_dag(self._env, self.dag_id)
            self.follow_latest = True
            return f"queued run {run.run_id}"
        if action in ("pause", "unpause"):
            api.set_paused(self._env, self.dag_id, action == "pause")
            return f"{self.dag_id} {action}d"
        if action == "clear_failed":
            if not self.run_id:
                return "no run to clear"
            failed = [t.task_id for t in (self._view.tasks if self._view else ())
                      if t.state in FAILED_STATES]
            if not failed:
                return f"run {self.run_id} has no failed task"
            api.clear_tasks(self._env, self.dag_id, self.run_id, sorted(set(failed)))
            return f"cleared {len(set(failed))} task(s) of run {self.run_id}; the scheduler runs them again"
        return f"unknown action {action!r}"

    # -- what a saved notebook keeps ------------------------------------------------------------------
    def static_html(self) -> str:
        """The graph coloured by state and the task table, as plain HTML (no JavaScript)."""
        parts = [f"<div><b>{html.escape(self.dag_id)}</b>"
                 f"{' · ' + html.escape(self.run_id) if self.run_id else ' · no runs yet'}</div>"]
        if self.dag is not None:
            try:
                svg = render(dag_to_dot(self.dag, states=self.states), "svg").decode("utf-8")
                parts.append(svg[svg.find("<svg"):])
            except NbflowException:
                pass
        rows = "".join(_static_row(r) for r in self.tasks)
        parts.append("<table><tr><th>task</th><th>state</th><th>try</th><th>started</th><th>duration</th></tr>"
                     f"{rows}</table>")
        return "\n".join(parts)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            data["text/html"] = self.static_html()
        return bundle

    def _update_static(self) -> None:
        """When the run shown ends (or another run is shown), refresh the static copy in the output."""
        if self.display_handle is None or self._view is None:
            return
        run_state = next((r.state for r in self._view.runs if r.run_id == self._view.run_id), None)
        key = (self._view.run_id, run_state if run_state in RUN_FINISHED_STATES else None)
        if key == self._static_for or key[1] is None:
            return
        self._static_for = key
        try:
            self.display_handle.update(self)
        except Exception:  # noqa: BLE001 - only the saved copy; the live widget is unaffected
            pass

    def __repr__(self) -> str:
        return f"DagWidget({self.dag_id!r}, run {self.run_id or 'none yet'})"

    def close(self) -> None:
        refresher.forget(self)
        super().close()


def _static_row(row: dict[str, Any]) -> str:
    duration = "" if row["duration"] is None else f"{row['duration']:.2f} s"
    cells = [row["label"], row["state"] or "no status", str(row["try_number"]), row["start"] or "", duration]
    return "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>"


def _task_row(task: Any) -> dict[str, Any]:
    label = f"{task.task_id}[{task.map_index}]" if task.map_index >= 0 else task.task_id
    state = task.state
    waiting = state in TIMED_WAIT_STATES and task.next_retry_at is not None
    # A rescheduled sensor waits for its next poke (its slot is free); a failed try waits for its retry.
    what = "next poke" if state == TaskInstanceState.UP_FOR_RESCHEDULE else "next try"
    if waiting:
        label += f" ({what} at {task.next_retry_at:%H:%M:%S})"
    return {"task_id": task.task_id, "label": label, "state": state, "try_number": task.try_number,
            "start": task.start_date.strftime("%H:%M:%S") if task.start_date else None,
            "duration": round(task.duration, 3) if task.duration is not None else None,
            "next_at": f"{what} at {task.next_retry_at.isoformat()}" if waiting else None}


_env_cache: list["Environment"] = []


def _default_env() -> "Environment":
    if not _env_cache:
        from nbflow.configuration import load_config
        from nbflow.runtime.api import Environment
        _env_cache.append(Environment.from_config(load_config()))
    return _env_cache[0]


__all__ = ["DagWidget", "layout_svg"]
