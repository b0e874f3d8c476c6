"""BaseOperator: its arguments, dependencies (`>>`, `<<`, chain, cross_downstream), labels, cycles."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, ClassVar

import pytest

from nbflow.authoring.baseoperator import BaseOperator
from nbflow.authoring.dag import DAG
from nbflow.authoring.trigger_rule import TriggerRule
from nbflow.exceptions import DagCycleException, DagDefinitionError, DuplicateTaskIdFound
from nbflow.models.baseoperator import chain, cross_downstream
from nbflow.operators.empty import EmptyOperator
from nbflow.operators.python import PythonOperator
from nbflow.utils.edgemodifier import Label
from tests.authoring.helpers import run


def _cb(context: dict[str, Any]) -> None:
    return None


EVERY_ARGUMENT: dict[str, Any] = {
    "owner": "team", "retries": 2, "retry_delay": dt.timedelta(seconds=30), "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10), "execution_timeout": dt.timedelta(minutes=1),
    "trigger_rule": TriggerRule.ONE_SUCCESS, "pool": "db", "pool_slots": 2, "priority_weight": 7,
    "depends_on_past": True, "wait_for_downstream": True, "queue": "q1", "email": ["ops@example.com"],
    "email_on_failure": False, "email_on_retry": False, "on_execute_callback": _cb, "on_success_callback": _cb,
    "on_failure_callback": [_cb], "on_retry_callback": _cb, "on_skipped_callback": _cb,
    "doc_md": "# does X", "do_xcom_push": False, "max_active_tis_per_dag": 3, "weight_rule": "absolute",
    "sla": dt.timedelta(hours=1), "executor_config": {"k": "v"}, "task_display_name": "Task X",
}


def test_every_listed_argument_is_accepted_and_stored() -> None:
    with DAG("args"):
        op = EmptyOperator(task_id="op", params={"p": 1}, **EVERY_ARGUMENT)
    for name, value in EVERY_ARGUMENT.items():
        assert getattr(op, name) == value, name
    assert op.params["p"] == 1


def test_durations_may_be_given_in_seconds() -> None:
    op = EmptyOperator(task_id="op", retry_delay=0.5, max_retry_delay=3, execution_timeout=60)
    assert op.retry_delay == dt.timedelta(seconds=0.5)
    assert op.max_retry_delay == dt.timedelta(seconds=3)
    assert op.execution_timeout == dt.timedelta(minutes=1)


def test_unknown_argument_is_an_error_naming_operator_task_and_argument() -> None:
    with pytest.raises(DagDefinitionError, match=r"EmptyOperator \(task_id: op\): not_an_arg"):
        EmptyOperator(task_id="op", not_an_arg=1)


def test_unknown_trigger_rule_is_an_error_listing_the_valid_ones() -> None:
    with pytest.raises(DagDefinitionError, match="'op'.*'sometimes'.*all_success"):
        EmptyOperator(task_id="op", trigger_rule="sometimes")


def test_unknown_weight_rule_is_an_error_listing_the_valid_ones() -> None:
    with pytest.raises(DagDefinitionError, match="'op'.*'sideways'.*absolute, downstream, upstream"):
        EmptyOperator(task_id="op", weight_rule="sideways")


@pytest.mark.parametrize("task_id", ["", "with space", "a/b"])
def test_invalid_task_id_is_an_error(task_id: str) -> None:
    with pytest.raises(DagDefinitionError, match="task_id"):
        EmptyOperator(task_id=task_id)


def test_class_template_fields_and_ext_are_used_by_subclasses(tmp_path: Path) -> None:
    class Greet(BaseOperator):
        template_fields: ClassVar[tuple[str, ...]] = ("greeting",)
        template_ext: ClassVar[tuple[str, ...]] = (".txt",)

        def __init__(self, *, greeting: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.greeting = greeting

        def execute(self, context: dict[str, Any]) -> str:
            return self.greeting

    (tmp_path / "greeting.txt").write_text("hi {{ ds }}")
    with DAG("templ", template_searchpath=str(tmp_path)) as d:
        Greet(task_id="inline", greeting="hello {{ params.who }}", params={"who": "you"})
        Greet(task_id="from_file", greeting="greeting.txt")
    ran = run(d, tmp_path)
    assert ran.xcom("inline") == "hello you"
    assert ran.xcom("from_file") == "hi 2025-01-02"


def test_template_field_that_is_not_an_attribute_is_an_error() -> None:
    class Broken(BaseOperator):
        template_fields: ClassVar[tuple[str, ...]] = ("missing",)

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)

    with pytest.raises(DagDefinitionError, match="'missing'"):
        Broken(task_id="b")


def test_rshift_and_lshift_link_tasks_and_return_the_right_side() -> None:
    with DAG("shift"):
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        assert (a >> b) is b
        assert (c << b) is b
    assert a.downstream_task_ids == {"b"}
    assert b.upstream_task_ids == {"a"} and b.downstream_task_ids == {"c"}


def test_shift_operators_accept_lists_on_either_side() -> None:
    with DAG("lists"):
        a, b, c, d, e = (EmptyOperator(task_id=x) for x in "abcde")
        a >> [b, c]
        [b, c] >> d
        e << [a, d]
        [c] << a
    assert a.downstream_task_ids == {"b", "c", "e"}
    assert d.upstream_task_ids == {"b", "c"}
    assert e.upstream_task_ids == {"a", "d"}


def test_set_upstream_and_set_downstream() -> None:
    with DAG("methods"):
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        b.set_upstream(a)
        b.set_downstream([c])
    assert a.downstream_task_ids == {"b"} and c.upstream_task_ids == {"b"}
    assert [t.task_id for t in b.upstream_list] == ["a"]
    assert [t.task_id for t in b.downstream_list] == ["c"]


def test_linking_a_task_without_dag_puts_it_in_the_other_tasks_dag() -> None:
    with DAG("adopt") as d:
        a = EmptyOperator(task_id="a")
    loose = EmptyOperator(task_id="loose")
    a >> loose
    assert loose.dag is d and "loose" in d.task_dict


def test_linking_tasks_of_two_dags_is_an_error() -> None:
    with DAG("one"):
        a = EmptyOperator(task_id="a")
    with DAG("two"):
        b = EmptyOperator(task_id="b")
    with pytest.raises(DagDefinitionError, match="different DAGs"):
        a >> b


def test_chain_links_each_element_to_the_next() -> None:
    with DAG("chain"):
        a, b, c, d = (EmptyOperator(task_id=x) for x in "abcd")
        chain(a, [b, c], d)
    assert a.downstream_task_ids == {"b", "c"}
    assert d.upstream_task_ids == {"b", "c"}


def test_chain_pairs_lists_of_equal_length_element_by_element() -> None:
    with DAG("pairs"):
        t = {x: EmptyOperator(task_id=x) for x in ["a", "b1", "b2", "c1", "c2", "d"]}
        chain(t["a"], [t["b1"], t["b2"]], [t["c1"], t["c2"]], t["d"])
    assert t["b1"].downstream_task_ids == {"c1"}
    assert t["b2"].downstream_task_ids == {"c2"}
    assert t["d"].upstream_task_ids == {"c1", "c2"}


def test_chain_of_lists_with_different_lengths_is_an_error() -> None:
    with DAG("mismatch"):
        a, b, c = (EmptyOperator(task_id=x) for x in "abc")
        with pytest.raises(DagDefinitionError, match="2 and 1"):
            chain([a, b], [c])


def test_cross_downstream_links_every_pair() -> None:
    with DAG("cross"):
        a, b, c, d = (EmptyOperator(task_id=x) for x in "abcd")
        cross_downstream([a, b], [c, d])
    assert a.downstream_task_ids == b.downstream_task_ids == {"c", "d"}
    assert c.upstream_task_ids == d.upstream_task_ids == {"a", "b"}


def test_labels_are_recorded_in_edge_info() -> None:
    with DAG("labels") as d:
        a, b, c, e = (EmptyOperator(task_id=x) for x in "abce")
        a >> Label("when big") >> [b, c]
        [b, c] >> Label("join") >> e
    assert d.get_edge_info("a", "b") == {"label": "when big"}
    assert d.edge_info[("a", "c")] == {"label": "when big"}
    assert d.edge_info[("c", "e")] == {"label": "join"}
    assert e.upstream_task_ids == {"b", "c"}


def test_label_set_with_upstream_side_last() -> None:
    with DAG("labels_lshift") as d:
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        b << Label("back") << a
    assert a.downstream_task_ids == {"b"}
    assert d.get_edge_info("a", "b") == {"label": "back"}


def test_duplicate_task_id_is_an_error_naming_dag_and_task() -> None:
    with DAG("dupes"):
        EmptyOperator(task_id="same")
        with pytest.raises(DuplicateTaskIdFound, match="DAG 'dupes'.*'same'"):
            EmptyOperator(task_id="same")


def test_a_task_cannot_depend_on_itself() -> None:
    with DAG("self_loop"):
        a = EmptyOperator(task_id="a")
        with pytest.raises(DagDefinitionError, match="itself"):
            a >> a


def test_check_cycle_names_the_cycle() -> None:
    with DAG("loop") as d:
        a, b, c, x = (EmptyOperator(task_id=t) for t in "abcx")
        x >> a >> b >> c >> a
    with pytest.raises(DagCycleException) as info:
        d.check_cycle()
    assert info.value.cycle == ["a", "b", "c", "a"]
    assert "DAG 'loop' has a cycle: a >> b >> c >> a" in str(info.value)


def test_acyclic_dag_passes_check_and_sorts_upstream_first() -> None:
    with DAG("diamond") as d:
        a, b, c, e = (EmptyOperator(task_id=t) for t in "abce")
        a >> [c, b] >> e
    d.check_cycle()
    assert [t.task_id for t in d.topological_sort()] == ["a", "b", "c", "e"]
    assert [t.task_id for t in d.roots] == ["a"] and [t.task_id for t in d.leaves] == ["e"]


def test_xcomarg_in_a_classic_operator_argument_makes_a_dependency(tmp_path: Path) -> None:
    producer = PythonOperator(task_id="producer", python_callable=lambda: 21)
    with DAG("implicit") as d:  # the consumer comes first in the DAG: only the dependency orders them
        consumer = PythonOperator(task_id="consumer", python_callable=lambda v, k: v + k,
                                  op_args=[producer.output], op_kwargs={"k": producer.output})
    assert consumer.upstream_task_ids == {"producer"}
    assert d.task_ids == ["consumer", "producer"]
    ran = run(d, tmp_path)
    assert ran.xcom("consumer") == 42


def test_next_retry_delay_without_backoff_is_the_retry_delay() -> None:
    op = EmptyOperator(task_id="op", retry_delay=dt.timedelta(seconds=10))
    assert [op.next_retry_delay(n) for n in (2, 3, 4)] == [dt.timedelta(seconds=10)] * 3


def test_max_retry_delay_applies_only_with_exponential_backoff() -> None:
    op = EmptyOperator(task_id="op", retry_delay=dt.timedelta(seconds=10), max_retry_delay=dt.timedelta(seconds=5))
    assert op.next_retry_delay(2) == dt.timedelta(seconds=10)


def test_backoff_doubles_per_try_with_a_jitter_of_up_to_one_more_period_in_whole_seconds() -> None:
    op = EmptyOperator(task_id="op", retry_delay=dt.timedelta(seconds=10), retry_exponential_backoff=True)
    for try_number, base in [(2, 10), (3, 20), (4, 40)]:
        delay = op.next_retry_delay(try_number, logical_date=dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc))
        assert base <= delay.total_seconds() < 2 * base
        assert delay.total_seconds() == int(delay.total_seconds())


def test_backoff_jitter_is_the_same_for_the_same_instance_and_try() -> None:
    op = EmptyOperator(task_id="op", retry_delay=dt.timedelta(seconds=100), retry_exponential_backoff=True)
    when = dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc)
    assert op.next_retry_delay(3, logical_date=when) == op.next_retry_delay(3, logical_date=when)
    days = {op.next_retry_delay(3, logical_date=when + dt.timedelta(days=n)) for n in range(10)}
    assert len(days) > 1, "the logical date is part of the jitter's seed"


def test_backoff_waits_at_least_one_second() -> None:
    op = EmptyOperator(task_id="op", retry_delay=dt.timedelta(0), retry_exponential_backoff=True)
    assert op.next_retry_delay(2) == dt.timedelta(seconds=1)


def test_backoff_is_capped_by_max_retry_delay_and_by_a_day() -> None:
    capped = EmptyOperator(task_id="capped", retry_delay=dt.timedelta(seconds=10), retry_exponential_backoff=True,
                           max_retry_delay=dt.timedelta(seconds=25))
    assert [capped.next_retry_delay(n).total_seconds() for n in (3, 4, 5)] == [25, 25, 25]
    uncapped = EmptyOperator(task_id="uncapped", retry_delay=dt.timedelta(hours=1), retry_exponential_backoff=True)
    assert uncapped.next_retry_delay(200) == dt.timedelta(days=1)


def test_airflow_2_deprecated_trigger_rule_names_are_converted() -> None:
    with DAG("old_rules"):
        by_name = EmptyOperator(task_id="a", trigger_rule="none_failed_or_skipped")
        by_member = EmptyOperator(task_id="b", trigger_rule=TriggerRule.DUMMY)
        dummy = EmptyOperator(task_id="c", trigger_rule="dummy")
    assert by_name.trigger_rule is TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    assert by_member.trigger_rule is dummy.trigger_rule is TriggerRule.ALWAYS
    assert "dummy" not in TriggerRule.all_triggers()


def test_operator_code_logs_to_the_attempt_log_through_self_log(tmp_path: Path) -> None:
    class Loud(BaseOperator):
        def execute(self, context: dict[str, Any]) -> None:
            self.log.info("processed %d rows", 42)
            self.log.warning("watch out")

    with DAG("self_log") as d:
        Loud(task_id="loud")
    ran = run(d, tmp_path)
    assert ran.states == {"loud": "success"}
    log = ran.log("loud")
    assert "INFO - processed 42 rows" in log and "WARNING - watch out" in log


def test_operator_xcom_push_and_pull_shortcuts(tmp_path: Path) -> None:
    class Pusher(BaseOperator):
        def execute(self, context: dict[str, Any]) -> None:
            self.xcom_push(context, key="rows", value=[1, 2])

    class Puller(BaseOperator):
        def execute(self, context: dict[str, Any]) -> Any:
            return self.xcom_pull(context, task_ids="push", key="rows")

    with DAG("operator_xcom") as d:
        Pusher(task_id="push") >> Puller(task_id="pull")
    assert run(d, tmp_path).xcom("pull") == [1, 2]
