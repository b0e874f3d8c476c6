"""How a task's queueing priority is totalled (Airflow's WeightRule)."""
from __future__ import annotations

from enum import Enum


class WeightRule(str, Enum):
    DOWNSTREAM = "downstream"  # own weight plus every task downstream of it (the default)
    UPSTREAM = "upstream"  # own weight plus every task upstream of it
    ABSOLUTE = "absolute"  # own weight only

    @classmethod
    def all_weight_rules(cls) -> set[str]:
        return {rule.value for rule in cls}
