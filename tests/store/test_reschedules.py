"""Sensor reschedules: recorded per try from the instance's own dates, the first poke read back, the try given
back, forgotten on clear."""
from __future__ import annotations

import datetime as dt

from nbflow.store import reschedules
from nbflow.store.task_instances import clear_task_instances, get_task_instance
from nbflow.store.ti_state import claim_attempt, set_task_state

from .conftest import Db
from .helpers import day, key, make_run


def poke_and_reschedule(s, at: dt.datetime) -> int:
    """One poke of `sense` that ends up_for_reschedule; the try number it ran as."""
    set_task_state(s, key("sense"), "queued")
    try_number, _ = claim_attempt(s, key("sense"), hostname="h", pid=1, at=at)
    set_task_state(s, key("sense"), "up_for_reschedule", expected_state="running", next_retry_at=at,
                   at=at + dt.timedelta(seconds=1))
    reschedules.add_reschedule(s, key("sense"), try_number=try_number, reschedule_date=at + dt.timedelta(minutes=1))
    reschedules.give_back_try(s, key("sense"), try_number)
    return try_number


def test_each_poke_runs_as_the_same_try_and_the_first_pokes_start_is_kept(db: Db) -> None:
    with db.tx() as s:
        make_run(s, tasks=("sense",))
        tries = [poke_and_reschedule(s, day(2) + dt.timedelta(minutes=n)) for n in range(3)]
        assert tries == [1, 1, 1]
        assert get_task_instance(s, key("sense")).try_number == 0
        assert reschedules.first_poke_at(s, key("sense"), 1) == day(2)
        assert reschedules.count_reschedules(s, key("sense"), 1) == 3
        pokes = reschedules.get_reschedules(s, key("sense"))
        assert [(r.start_date, r.end_date - r.start_date, r.reschedule_date - r.start_date) for r in pokes] == \
            [(day(2) + dt.timedelta(minutes=n), dt.timedelta(seconds=1), dt.timedelta(minutes=1)) for n in range(3)]


def test_clearing_a_sensor_forgets_its_pokes_so_its_timeout_starts_again(db: Db) -> None:
    with db.tx() as s:
        make_run(s, tasks=("sense",))
        poke_and_reschedule(s, day(2))
        clear_task_instances(s, "etl", "manual__2025-01-02", ["sense"])
        assert reschedules.first_poke_at(s, key("sense"), 1) is None
        assert reschedules.get_reschedules(s, key("sense")) == []
