"""A DAG as a graphviz graph: DOT text built here, pictures rendered by graphviz's `dot` binary.

Shared by the CLI (`nbflow dags show`), the notebook widget and the web pages. Node ids are stable
(`n_<task_id>`, escaped), so a picture's SVG elements can be found again by task id.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nbflow.exceptions import GraphRenderError
from nbflow.utils.state import TaskInstanceState as TI

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG
    from nbflow.authoring.taskgroup import TaskGroup
    from nbflow.runtime.serialized_dag import SerializedDag

# One fill colour per task instance state: Airflow's hues, lightened so black labels stay readable.
STATE_COLORS: dict[str, str] = {
    TI.SUCCESS: "#8fd18f",
    TI.RUNNING: "#b8f5b8",
    TI.FAILED: "#f08080",
    TI.UPSTREAM_FAILED: "#ffb366",
    TI.SKIPPED: "#ffa6d5",
    TI.UP_FOR_RETRY: "#ffe066",
    TI.UP_FOR_RESCHEDULE: "#7fe5dc",
    TI.QUEUED: "#cccccc",
    TI.SCHEDULED: "#e3cfa8",
    TI.DEFERRED: "#c9adf2",
    TI.RESTARTING: "#f0a3f0",
    TI.REMOVED: "#eeeeee",
}
NO_STATE_COLOR = "#ffffff"
RENDER_FORMATS = ("svg", "png", "pdf")
_PLAIN_ID = re.compile(r"[A-Za-z0-9_]+")
_NOT_PLAIN = re.compile(r"[^A-Za-z0-9_]")


def node_id(task_id: str) -> str:
    """`n_<task_id>` for ids made of [A-Za-z0-9_]; otherwise every other character becomes `_` and a
    short hash of the id is appended, so `a.b` and `a_b` (or `a-b`) never share a node."""
    if _PLAIN_ID.fullmatch(task_id):
        return f"n_{task_id}"
    digest = hashlib.sha1(task_id.encode()).hexdigest()[:6]
    return f"n_{_NOT_PLAIN.sub('_', task_id)}_{digest}"


def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attrs(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={_quote(value)}" for key, value in values.items() if value is not None)


def dag_to_dot(dag: "DAG | SerializedDag", states: Mapping[str, str | None] | None = None) -> str:
    """DOT text for `dag`, left to right; with `states` (task_id → state) nodes are coloured by state,
    otherwise by their operator's `ui_color`. Task groups are clusters; edge labels come from `Label`s."""
    graph = {"rankdir": "LR", "label": dag.dag_id, "labelloc": "t", "fontname": "Helvetica", "fontsize": 14,
             "nodesep": 0.3, "ranksep": 0.5}
    node = {"shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fontsize": 11,
            "fillcolor": NO_STATE_COLOR, "height": 0.35}
    edge = {"arrowsize": 0.7, "fontname": "Helvetica", "fontsize": 9, "color": "#555555"}
    lines = [f"digraph {_quote(dag.dag_id)} {{", f"  graph [{_attrs(graph)}];", f"  node [{_attrs(node)}];",
             f"  edge [{_attrs(edge)}];"]
    _add_group(lines, dag.task_group, states, "  ")
    for task in dag.tasks:
        for downstream in sorted(task.downstream_task_ids):
            label = dag.get_edge_info(task.task_id, downstream).get("label")
            attrs = f" [{_attrs({'label': label})}]" if label else ""
            lines.append(f"  {node_id(task.task_id)} -> {node_id(downstream)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _add_group(lines: list[str], group: "TaskGroup | Any", states: Mapping[str, str | None] | None, indent: str) -> None:
    for child in group.children.values():
        if hasattr(child, "children"):  # a TaskGroup, or a serialized DAG's group
            lines.append(f"{indent}subgraph {_quote('cluster_' + node_id(child.group_id or '')[2:])} {{")
            cluster = {"label": child.label, "style": "rounded,dashed", "color": "#6f8fcf",
                       "tooltip": child.tooltip or None}
            lines.append(f"{indent}  graph [{_attrs(cluster)}];")
            _add_group(lines, child, states, indent + "  ")
            lines.append(f"{indent}}}")
        else:
            lines.append(f"{indent}{node_id(child.task_id)} [{_attrs(_node_attrs(child, states))}];")


def _node_attrs(task: Any, states: Mapping[str, str | None] | None) -> dict[str, Any]:
    label = task.label + (" [ ]" if task.is_mapped else "")
    tooltip = f"{task.task_id} ({task.operator_name})"
    if states is None:
        fill = task.ui_color or NO_STATE_COLOR
    else:
        state = states.get(task.task_id)
        fill = STATE_COLORS.get(state or "", NO_STATE_COLOR)
        tooltip += f": {state or 'no status'}"
    return {"label": label, "id": node_id(task.task_id), "fillcolor": fill, "tooltip": tooltip}


def render(dot_text: str, fmt: str) -> bytes:
    """The picture of `dot_text` in `fmt` (svg, png or pdf), drawn by graphviz's `dot`."""
    if fmt not in RENDER_FORMATS:
        raise GraphRenderError(f"cannot render a graph as {fmt!r}; use one of: {', '.join(RENDER_FORMATS)} "
                               f"(or .dot for the DOT text)")
    binary = shutil.which("dot")
    if binary is None:
        raise GraphRenderError("graphviz's `dot` is not installed; run `make venv sysdeps` or "
                               "`apt-get install graphviz`")
    done = subprocess.run([binary, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=120,
                          check=False)
    if done.returncode != 0:
        problem = done.stderr.decode(errors="replace").strip().splitlines()
        raise GraphRenderError(f"graphviz's dot failed (exit {done.returncode}): "
                               f"{problem[0] if problem else 'no message'}")
    return done.stdout
