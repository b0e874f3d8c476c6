"""Airflow's trigger rules: when may a task run, given its upstream tasks' states."""
from __future__ import annotations

from enum import Enum


class TriggerRule(str, Enum):
    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_DONE_SETUP_SUCCESS = "all_done_setup_success"
    ALL_DONE_MIN_ONE_SUCCESS = "all_done_min_one_success"
    ALL_SKIPPED = "all_skipped"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALWAYS = "always"
    # Airflow 2's deprecated names, aliases of the rules that replaced them (not listed when iterating).
    DUMMY = "always"
    NONE_FAILED_OR_SKIPPED = "none_failed_min_one_success"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def _missing_(cls, value: object) -> "TriggerRule | None":
        # Airflow 2's deprecated names, which it still accepts and converts the same way.
        return _DEPRECATED.get(str(value))

    @classmethod
    def is_valid(cls, value: str) -> bool:
        return value in cls.all_triggers()

    @classmethod
    def all_triggers(cls) -> set[str]:
        return {member.value for member in cls}


_DEPRECATED = {"dummy": TriggerRule.ALWAYS, "none_failed_or_skipped": TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS}
