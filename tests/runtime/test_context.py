"""The task context computes some entries only when read; every reader still sees every key with its value."""
from __future__ import annotations

import copy
import datetime as dt
import json
import pickle
import pprint
from pathlib import Path
from typing import Any

import pytest

from nbflow.authoring.dag import DAG
from nbflow.operators.python import PythonOperator, get_current_context
from nbflow.runtime.context import TaskContext, build_context
from nbflow.runtime.run_info import DagRunInfo
from nbflow.runtime.task_instance import RuntimeTaskInstance
from nbflow.runtime.xcom import MemoryXComStore
from tests.authoring.helpers import run

UTC = dt.timezone.utc
LOGICAL = dt.datetime(2025, 1, 31, 6, 30, tzinfo=UTC)
# A weekday cron: the run of Friday 2025-01-31 06:30 follows Thursday's and precedes Monday's.
SCHEDULED = DagRunInfo(dag_id="ctx", run_id="scheduled__2025-01-31T06:30:00+00:00", logical_date=LOGICAL,
                       data_interval_start=LOGICAL, data_interval_end=dt.datetime(2025, 2, 3, 6, 30, tzinfo=UTC),
                       run_type="scheduled")
EXPECTED = {
    "run_id": SCHEDULED.run_id, "logical_date": LOGICAL, "execution_date": LOGICAL,
    "data_interval_start": LOGICAL, "data_interval_end": SCHEDULED.data_interval_end,
    "ds": "2025-01-31", "ds_nodash": "20250131", "ts": "2025-01-31T06:30:00+00:00", "ts_nodash": "20250131T063000",
    "ts_nodash_with_tz": "20250131T063000+0000", "prev_ds": "2025-01-30", "prev_ds_nodash": "20250130",
    "next_ds": "2025-02-03", "next_ds_nodash": "20250203", "yesterday_ds": "2025-01-30", "tomorrow_ds": "2025-02-01",
    "yesterday_ds_nodash": "20250130", "tomorrow_ds_nodash": "20250201", "task_instance_key_str": "ctx__t__20250131",
    "test_mode": False, "try_number": 1, "expanded_ti_count": None, "inlets": [], "outlets": [],
    "map_index_template": None, "templates_dict": None, "prev_data_interval_start_success": None,
    "prev_data_interval_end_success": None, "prev_start_date_success": None, "prev_end_date_success": None,
}
KEYS = ["dag", "task", "ti", "task_instance", "dag_run", "run_id", "logical_date", "execution_date",
        "data_interval_start", "data_interval_end", "ds", "ds_nodash", "ts", "ts_nodash", "ts_nodash_with_tz",
        "prev_ds", "prev_ds_nodash", "next_ds", "next_ds_nodash", "yesterday_ds", "tomorrow_ds",
        "yesterday_ds_nodash", "tomorrow_ds_nodash", "params", "conf", "macros", "var", "conn",
        "task_instance_key_str", "map_index_template", "inlets", "outlets", "test_mode", "try_number",
        "expanded_ti_count", "templates_dict", "prev_data_interval_start_success", "prev_data_interval_end_success",
        "prev_start_date_success", "prev_end_date_success"]


def fresh_context() -> TaskContext:
    dag = DAG("ctx", schedule="30 6 * * 1-5", start_date=dt.datetime(2025, 1, 1, tzinfo=UTC))
    task = PythonOperator(task_id="t", python_callable=lambda: None, dag=dag)
    ti = RuntimeTaskInstance(task=task, run=SCHEDULED, map_index=-1, try_number=1, max_tries=0,
                             xcoms=MemoryXComStore())
    return build_context(task=task, run=SCHEDULED, ti=ti, params={})


def plain_values(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k in EXPECTED}


def test_every_key_is_there_in_airflow_order() -> None:
    context = fresh_context()
    assert list(context) == KEYS
    assert list(context.keys()) == KEYS and len(context) == len(KEYS)
    assert all(key in context for key in KEYS)


def test_each_key_read_alone_has_its_value() -> None:
    for key, expected in EXPECTED.items():
        assert fresh_context()[key] == expected, key
        assert fresh_context().get(key) == expected, key


@pytest.mark.parametrize("view", [
    pytest.param(lambda c: dict(c), id="dict()"),
    pytest.param(lambda c: {**c}, id="{**c}"),
    pytest.param(lambda c: (lambda **kw: kw)(**c), id="f(**c)"),
    pytest.param(lambda c: dict(c.items()), id="items()"),
    pytest.param(lambda c: dict(zip(c.keys(), c.values())), id="values()"),
    pytest.param(lambda c: c.copy(), id="copy()"),
    pytest.param(lambda c: copy.copy(c), id="copy.copy"),
    pytest.param(lambda c: {} | c, id="{} | c"),
    pytest.param(lambda c: c | {}, id="c | {}"),
    pytest.param(lambda c: {k: c[k] for k in c}, id="c[k]"),
])
def test_whole_context_readers_see_real_values(view: Any) -> None:
    seen = view(fresh_context())
    assert plain_values(seen) == EXPECTED
    assert type(seen) is dict


def test_text_forms_show_real_values() -> None:
    for text in (repr(fresh_context()), str(fresh_context()), pprint.pformat(fresh_context())):
        assert "_Deferred" not in text
        assert "'prev_ds': '2025-01-30'" in text and "'ts_nodash': '20250131T063000'" in text
    strings = {k: v for k, v in fresh_context().items() if isinstance(v, str)}
    assert json.loads(json.dumps(strings))["next_ds"] == "2025-02-03"


def test_comparison_copy_and_pickle_of_plain_values() -> None:
    context = fresh_context()
    for key in ("dag", "task", "ti", "task_instance", "dag_run", "conf", "var", "conn", "macros", "params"):
        del context[key]
    assert context == EXPECTED and EXPECTED == context and not context != EXPECTED
    assert pickle.loads(pickle.dumps(fresh_context_without_objects())) == EXPECTED
    assert copy.deepcopy(fresh_context_without_objects()) == EXPECTED


def fresh_context_without_objects() -> TaskContext:
    context = fresh_context()
    for key in ("dag", "task", "ti", "task_instance", "dag_run", "conf", "var", "conn", "macros", "params"):
        context.pop(key)
    return context


def test_pop_setdefault_and_overwrite_give_real_values() -> None:
    context = fresh_context()
    assert context.pop("prev_ds") == "2025-01-30" and "prev_ds" not in context
    assert context.setdefault("next_ds", "x") == "2025-02-03"
    context["ts"] = "mine"
    assert dict(context)["ts"] == "mine"
    assert context.pop("missing", 7) == 7


def test_user_defined_macros_still_override_context_entries() -> None:
    dag = DAG("ctx", schedule="@daily", start_date=dt.datetime(2025, 1, 1, tzinfo=UTC),
              user_defined_macros={"ts": "macro ts", "extra": 1})
    task = PythonOperator(task_id="t", python_callable=lambda: None, dag=dag)
    ti = RuntimeTaskInstance(task=task, run=SCHEDULED, map_index=-1, try_number=1, max_tries=0,
                             xcoms=MemoryXComStore())
    context = build_context(task=task, run=SCHEDULED, ti=ti, params={})
    assert context["ts"] == "macro ts" and dict(context)["ts"] == "macro ts" and context["extra"] == 1


def test_a_task_sees_the_same_values_by_name_by_kwargs_by_template_and_by_get_current_context(
        tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def by_name(prev_ds: str, next_ds: str, ts_nodash: str) -> None:
        seen["by_name"] = {"prev_ds": prev_ds, "next_ds": next_ds, "ts_nodash": ts_nodash}

    def by_kwargs(**context: Any) -> None:
        seen["by_kwargs"] = plain_values(context)
        seen["current"] = plain_values(dict(get_current_context()))

    with DAG("ctx", schedule="30 6 * * 1-5", start_date=dt.datetime(2025, 1, 1, tzinfo=UTC)) as dag:
        PythonOperator(task_id="t", python_callable=by_name)
        PythonOperator(task_id="k", python_callable=by_kwargs)
        PythonOperator(task_id="j", python_callable=lambda x: x,
                       op_kwargs={"x": "{{ prev_ds }}|{{ next_ds_nodash }}|{{ tomorrow_ds }}"})
    ran = run(dag, tmp_path, run_info=SCHEDULED)
    assert ran.states == {"t": "success", "k": "success", "j": "success"}
    assert seen["by_name"] == {"prev_ds": "2025-01-30", "next_ds": "2025-02-03", "ts_nodash": "20250131T063000"}
    assert seen["by_kwargs"] == seen["current"] == dict(EXPECTED, task_instance_key_str="ctx__k__20250131")
    assert ran.xcom("j") == "2025-01-30|20250203|2025-02-01"
