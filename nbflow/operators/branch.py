"""BaseBranchOperator: subclass it and return the branch(es) to follow from `choose_branch`."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nbflow.authoring.baseoperator import BaseOperator
from nbflow.operators.skipping import skip_all_except


class BaseBranchOperator(BaseOperator):
    """Airflow's BaseBranchOperator: direct downstream tasks not chosen are skipped."""

    inherits_from_skipmixin = True

    def choose_branch(self, context: dict[str, Any]) -> str | Iterable[str] | None:
        raise NotImplementedError(f"{type(self).__name__} must implement choose_branch(context)")

    def execute(self, context: dict[str, Any]) -> Any:
        branches = self.choose_branch(context)
        skip_all_except(self, context["ti"], branches)
        return branches
