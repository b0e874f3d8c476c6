"""Edge labels: `a >> Label("when empty") >> b` names the edge in graphs."""
from __future__ import annotations

from typing import Any

from nbflow.authoring.dependencies import DependencyMixin, operators_of


class EdgeModifier(DependencyMixin):
    """Sits between two sets of tasks and records a label on the edges it joins."""

    def __init__(self, label: str | None = None) -> None:
        self.label = label
        self._upstream: list[Any] = []
        self._downstream: list[Any] = []

    @property
    def roots(self) -> list[Any]:
        return self._downstream

    @property
    def leaves(self) -> list[Any]:
        return self._upstream

    def set_upstream(self, other: Any, edge_modifier: Any = None) -> None:
        ups = operators_of(other, as_leaves=True)
        self._upstream.extend(ups)
        for down in self._downstream:
            for up in ups:
                up.set_downstream(down, edge_modifier=self)

    def set_downstream(self, other: Any, edge_modifier: Any = None) -> None:
        downs = operators_of(other, as_leaves=False)
        self._downstream.extend(downs)
        for up in self._upstream:
            for down in downs:
                up.set_downstream(down, edge_modifier=self)

    def edge_info(self) -> dict[str, Any]:
        return {"label": self.label}


def Label(label: str) -> EdgeModifier:  # noqa: N802 - Airflow's public name
    """Airflow's Label(): an edge modifier carrying a label."""
    return EdgeModifier(label)
