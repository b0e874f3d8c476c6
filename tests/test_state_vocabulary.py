"""One state vocabulary: outside nbflow/utils/state.py, code names a state or run type by its enum member.

`ti.state == TaskInstanceState.FAILED`, not `ti.state == "failed"`: a renamed or mistyped state then
raises AttributeError instead of silently comparing unequal. The guard looks only where a string is meant as a state
(or run type), so "failed" in a message, a log line or a CSS class is left alone:

- either side of a comparison (`==`, `!=`, `in`, `not in`), elements of a tuple, list or set there included;
- the value assigned to a name or attribute called `state`, `*_state` or `run_type` (also a default);
- the value of a keyword argument of those names (`state=`, `expected_state=`, `run_type=`);
- the value of a dict entry whose key is one of those names (`{"state": ...}`).
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from nbflow.utils.state import DagRunState, DagRunType, JobState, TaskInstanceState

ROOT = Path(__file__).resolve().parents[1]
HOME = "nbflow/utils/state.py"
VOCABULARY = frozenset(member.value for enum in (TaskInstanceState, DagRunState, DagRunType, JobState)
                       for member in enum)


def names_a_state(name: str | None) -> bool:
    return name is not None and (name in ("state", "run_type") or name.endswith("_state"))


def name_of(node: ast.AST | None) -> str | None:
    """`state` for `state`, `ti.state`, the parameter `state` and the dict key "state"; else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.arg):
        return node.arg
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def literals(node: ast.AST | None) -> Iterator[ast.Constant]:
    """State strings in an expression: the expression itself, or an element of a tuple, list or set."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in VOCABULARY:
        yield node
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        for element in node.elts:
            yield from literals(element)


def meant_as_states(tree: ast.AST) -> Iterator[ast.Constant]:
    """Every state literal where the code means a state (see the module's docstring)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                yield from literals(side)
            continue
        named: list[tuple[str | None, ast.AST | None]] = []  # (a name, the value given to it)
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    named += [(name_of(t), v) for t, v in zip(target.elts, node.value.elts)]  # `a.state, b = ...`
                else:
                    named.append((name_of(target), node.value))
        elif isinstance(node, ast.AnnAssign):
            named.append((name_of(node.target), node.value))
        elif isinstance(node, ast.arguments):  # defaults
            positional = node.posonlyargs + node.args
            named += [(name_of(a), d) for a, d in zip(positional[len(positional) - len(node.defaults):],
                                                      node.defaults)]
            named += [(name_of(a), d) for a, d in zip(node.kwonlyargs, node.kw_defaults)]
        elif isinstance(node, ast.Call):
            named += [(keyword.arg, keyword.value) for keyword in node.keywords]
        elif isinstance(node, ast.Dict):
            named += [(name_of(k), v) for k, v in zip(node.keys, node.values)]
        for name, value in named:
            if names_a_state(name):
                yield from literals(value)


def state_literals(root: Path) -> list[str]:
    """`file:line "value"` for each state literal in root/nbflow outside nbflow/utils/state.py."""
    found = []
    for path in sorted((root / "nbflow").rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative == HOME:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
        spots = sorted({(constant.lineno, constant.value) for constant in meant_as_states(tree)})
        found += [f'{relative}:{line} "{value}"' for line, value in spots]
    return found


def test_nbflow_names_states_by_their_enum_members() -> None:
    found = state_literals(ROOT)
    assert found == [], ("state literals outside nbflow/utils/state.py; use TaskInstanceState, DagRunState, "
                         "DagRunType, JobState or a group from there:\n" + "\n".join(found))


OFFENDING = '''\
"""A module that still spells states as strings."""
from nbflow.utils.state import TaskInstanceState


def finish(ti, run, session, log):
    if ti.state == "failed":
        ti.state, ti.error = "up_for_retry", "boom"
    if run.state in ("queued", TaskInstanceState.RUNNING):
        set_dag_run_state(session, run, expected_state="running")
    log.info("task failed: %s (was running)", ti)  # message text: not a state
    return {"state": "success", "kind": "started", "status": "failed"}


def create(run_type: str = "manual", *, state: str | None = None):
    run_state: str = "queued"
    return run_type, state, run_state
'''


def test_the_guard_names_file_line_and_value_of_each_offence(tmp_path: Path) -> None:
    (tmp_path / "nbflow" / "runtime").mkdir(parents=True)
    (tmp_path / "nbflow" / "runtime" / "finish.py").write_text(OFFENDING, encoding="utf-8")
    assert state_literals(tmp_path) == [
        'nbflow/runtime/finish.py:6 "failed"',
        'nbflow/runtime/finish.py:7 "up_for_retry"',
        'nbflow/runtime/finish.py:8 "queued"',
        'nbflow/runtime/finish.py:9 "running"',
        'nbflow/runtime/finish.py:11 "success"',
        'nbflow/runtime/finish.py:14 "manual"',
        'nbflow/runtime/finish.py:15 "queued"',
    ]


def test_the_home_of_the_vocabulary_may_spell_states(tmp_path: Path) -> None:
    (tmp_path / "nbflow" / "utils").mkdir(parents=True)
    (tmp_path / "nbflow" / "utils" / "state.py").write_text('SUCCESS = "success"\nassert SUCCESS == "success"\n',
                                                            encoding="utf-8")
    assert state_literals(tmp_path) == []
