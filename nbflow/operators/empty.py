"""EmptyOperator: does nothing; used to group and join dependencies."""
from __future__ import annotations

from typing import Any

from nbflow.authoring.baseoperator import BaseOperator


class EmptyOperator(BaseOperator):
    """A task that succeeds at once (the runtime skips even starting an attempt for it)."""

    ui_color = "#e8f7e4"
    is_empty = True

    def execute(self, context: dict[str, Any]) -> None:
        return None


DummyOperator = EmptyOperator
