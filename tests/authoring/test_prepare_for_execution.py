"""The copy an attempt runs: equal to the parsed task, independent of it, made as copy.copy would make it."""
from __future__ import annotations

from typing import Any

from nbflow.authoring.baseoperator import BaseOperator
from nbflow.authoring.dag import DAG
from nbflow.operators.python import PythonOperator


def test_the_copy_has_every_attribute_and_its_own_template_fields() -> None:
    with DAG("copy"):
        task = PythonOperator(task_id="t", python_callable=print, op_args=["{{ ds }}"], op_kwargs={"a": "{{ ds }}"},
                              retries=2)
    work = task.prepare_for_execution()
    assert type(work) is PythonOperator and work is not task
    assert vars(work).keys() == vars(task).keys()
    assert all(getattr(work, k) is getattr(task, k) for k in vars(task) if k not in task.template_fields)
    assert work.op_args == task.op_args and work.op_args is not task.op_args
    assert work.op_kwargs == task.op_kwargs and work.op_kwargs is not task.op_kwargs
    work.render_template_fields({"ds": "2025-01-02"})
    assert (work.op_args, task.op_args) == (["2025-01-02"], ["{{ ds }}"])


def rebuild(cls: type, state: dict[str, Any]) -> Any:
    clone = cls.__new__(cls)
    clone.__dict__.update(state)
    return clone


def test_an_operator_that_customises_copying_is_copied_its_way() -> None:
    class Counted(BaseOperator):
        copies = 0

        def __copy__(self) -> Any:
            Counted.copies += 1
            clone = type(self).__new__(type(self))
            clone.__dict__.update(self.__dict__, copied_by_hook=True)
            return clone

        def execute(self, context: dict[str, Any]) -> None:
            return None

    class Reduced(BaseOperator):
        def __reduce_ex__(self, protocol: Any) -> Any:
            return rebuild, (type(self), dict(self.__dict__, reduced=True))

    with DAG("hooks"):
        counted = Counted(task_id="c")
        reduced = Reduced(task_id="r")
    assert counted.prepare_for_execution().copied_by_hook and Counted.copies == 1
    assert reduced.prepare_for_execution().__dict__.get("reduced") is True
