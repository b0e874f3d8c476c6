"""The state of one DAG run's task instances, and the rules that move it forward.

Shared by in-process runs (`dags test`) and, through the same decisions, the scheduler: which
instances are ready, what a finished attempt means (retry, skip downstream), when the run is over.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from nbflow.runtime.priority import priority_weights
from nbflow.runtime.readiness import Decision, UpstreamSummary, decide, skippable_states
from nbflow.runtime.retries import decide_after_failure
from nbflow.runtime.run_info import AttemptOutcome
from nbflow.utils.state import FAILED_STATES, FINISHED, TIMED_WAIT_STATES, DagRunState
from nbflow.utils.state import TaskInstanceState as TI

if TYPE_CHECKING:
    from nbflow.authoring.dag import DAG

# Handed to an executor already: nothing to decide until the attempt ends.
_IN_FLIGHT = frozenset({TI.RUNNING, TI.QUEUED, TI.SCHEDULED, TI.DEFERRED, TI.RESTARTING})


@dataclass
class TIState:
    task_id: str
    map_index: int = -1
    state: str | None = None
    try_number: int = 0
    next_retry_at: datetime | None = None
    duration: float | None = None
    error: str | None = None


@dataclass
class RunState:
    """Task instances of one run keyed by (task_id, map_index); mapped tasks start as one placeholder."""

    dag: "DAG"
    tis: dict[tuple[str, int], TIState] = field(default_factory=dict)
    expanded: set[str] = field(default_factory=set)

    @classmethod
    def fresh(cls, dag: "DAG", task_ids: set[str] | None = None) -> "RunState":
        state = cls(dag)
        for task_id in dag.task_dict:
            if task_ids is None or task_id in task_ids:
                state.tis[(task_id, -1)] = TIState(task_id)
        return state

    @classmethod
    def of_rows(cls, dag: "DAG", rows: Iterable[tuple[str, int, str | None, int, datetime | None]]) -> "RunState":
        """The run as the store has it: (task_id, map_index, state, try_number, next_retry_at) rows.

        A mapped task counts as expanded once it has numbered instances, or once its placeholder was
        skipped (mapped over nothing), as `expand` leaves it in process. Rows of tasks the DAG no longer
        has are left out.
        """
        state = cls(dag)
        tasks = dag.task_dict
        for task_id, map_index, ti_state, try_number, retry_at in rows:
            task = tasks.get(task_id)
            if task is None:
                continue
            state.tis[(task_id, map_index)] = TIState(task_id, map_index, ti_state, try_number, retry_at)
            if map_index >= 0 or (ti_state == TI.SKIPPED and task.is_mapped):
                state.expanded.add(task_id)
        return state

    def instances_of(self, task_id: str) -> list[TIState]:
        index = self.__dict__.get("_index")
        if index is None or self.__dict__.get("_indexed_size") != len(self.tis):
            index = {}
            for (tid, _), ti in self.tis.items():
                index.setdefault(tid, []).append(ti)
            self.__dict__["_index"], self.__dict__["_indexed_size"] = index, len(self.tis)
        return index.get(task_id, [])

    def upstream_summary(self, task_id: str, counts: dict[str, list[int]] | None = None) -> UpstreamSummary:
        """Upstream state counts; `counts` (from `state_counts`) saves recounting within one pass."""
        counts = counts if counts is not None else self.state_counts()
        total = success = skipped = failed = upstream_failed = removed = 0
        for up in self.dag.task_dict[task_id].upstream_task_ids:
            c = counts.get(up)
            if c is None:  # not part of this run (a task subset): counts as done successfully
                total += 1
                success += 1
                continue
            total += c[0]
            success += c[1]
            skipped += c[2]
            failed += c[3]
            upstream_failed += c[4]
            removed += c[5]
        return UpstreamSummary(total, success, skipped, failed, upstream_failed, removed)

    _SLOTS = {TI.SUCCESS: 1, TI.SKIPPED: 2, TI.FAILED: 3, TI.UPSTREAM_FAILED: 4, TI.REMOVED: 5}

    def trigger_decision(self, task_id: str, counts: dict[str, list[int]] | None = None) -> Decision:
        """What the task's trigger rule says of its upstream states now (readiness.decide)."""
        return decide(self.dag.task_dict[task_id].trigger_rule, self.upstream_summary(task_id, counts))

    def needs_expansion(self, ti: TIState) -> bool:
        """A ready mapped task is expanded into its instances first, not run."""
        return ti.task_id not in self.expanded and self.dag.task_dict[ti.task_id].is_mapped

    def state_counts(self) -> dict[str, list[int]]:
        """Per task: [instances, success, skipped, failed, upstream_failed, removed]."""
        counts: dict[str, list[int]] = {}
        slots = self._SLOTS
        for (task_id, _), ti in self.tis.items():
            c = counts.get(task_id)
            if c is None:
                c = counts[task_id] = [0, 0, 0, 0, 0, 0]
            c[0] += 1
            slot = slots.get(ti.state)  # type: ignore[arg-type]
            if slot:
                c[slot] += 1
        return counts

    def expand(self, task_id: str, count: int) -> None:
        """Replace a mapped task's placeholder by `count` instances (none: the task is skipped)."""
        placeholder = self.tis.pop((task_id, -1))
        self.__dict__.pop("_index", None)
        self.expanded.add(task_id)
        if count == 0:
            self.tis[(task_id, -1)] = TIState(task_id, state=TI.SKIPPED, error="mapped over an empty list")
            return
        for index in range(count):
            self.tis[(task_id, index)] = TIState(task_id, index, try_number=placeholder.try_number)

    def evaluate(self, now: datetime, *, only: set[str] | None = None,
                 known_ready: set[str] | None = None) -> list[TIState]:
        """Settle instances whose trigger rule decides skip/upstream_failed; return those ready to run.

        With `only`, just those tasks (and, as they settle, their downstream ones) are looked at: the
        scheduler passes the tasks whose upstream states changed since its last look. Tasks in
        `known_ready` (ready before, upstream unchanged) count as ready without deciding again.
        """
        ready: list[TIState] = []
        seen: set[int] = set()
        look = None if only is None else set(only)
        counts = self.state_counts()
        slots = self._SLOTS
        changed = True
        while changed:
            changed = False
            for ti in list(self.tis.values()):
                if ti.state in FINISHED or ti.state in _IN_FLIGHT:
                    continue
                if ti.state in TIMED_WAIT_STATES:  # a retry, or a sensor's next poke: ready once due
                    if (ti.next_retry_at is None or ti.next_retry_at <= now) and id(ti) not in seen:
                        seen.add(id(ti))
                        ready.append(ti)
                    continue
                if look is not None and ti.task_id not in look:
                    continue
                if known_ready and ti.state is None and ti.task_id in known_ready:
                    if id(ti) not in seen:
                        seen.add(id(ti))
                        ready.append(ti)
                    continue
                decision = self.trigger_decision(ti.task_id, counts)
                if decision is Decision.RUN:
                    if id(ti) not in seen:
                        seen.add(id(ti))
                        ready.append(ti)
                elif decision is not Decision.WAIT:
                    ti.state = decision.value
                    counts[ti.task_id][slots[ti.state]] += 1  # what its downstream tasks see now
                    if look is not None:
                        look |= self.dag.task_dict[ti.task_id].downstream_task_ids
                    changed = True
        order = {tid: n for n, tid in enumerate(self.dag.task_dict)}
        weights = priority_weights(self.dag)
        ready.sort(key=lambda t: (-weights[t.task_id], order[t.task_id], t.map_index))
        return ready

    def apply(self, ti: TIState, outcome: AttemptOutcome, *, logical_date: datetime | None, now: datetime) -> None:
        """Record an attempt's end: success, skipped, retry later, or failed.

        A failure is retried or not by the same rule as the scheduler's (`retries.decide_after_failure`);
        an in-process instance is never cleared, so its max_tries is its task's retries.
        """
        ti.try_number = outcome.try_number
        ti.duration = outcome.duration
        ti.error = outcome.error
        if outcome.state == TI.FAILED:
            decision = decide_after_failure(self.dag.task_dict[ti.task_id], try_number=outcome.try_number,
                                            retryable=outcome.retryable, logical_date=logical_date, now=now)
            ti.state, ti.next_retry_at = decision.state, decision.next_retry_at
            return
        ti.state = outcome.state
        ti.next_retry_at = None
        if outcome.state == TI.UP_FOR_RESCHEDULE:  # a sensor pokes again later, as the same try
            ti.try_number = outcome.try_number - 1
            ti.next_retry_at = datetime.fromtimestamp(outcome.reschedule_at or 0.0, timezone.utc)
            return
        if outcome.state == TI.SUCCESS and outcome.skip_task_ids:
            self.skip(outcome.skip_task_ids, ignore_trigger_rules=outcome.skip_ignores_trigger_rules)

    def skip(self, task_ids: tuple[str, ...], *, ignore_trigger_rules: bool) -> None:
        """What a branch or short-circuit asked: as `attempt.skip_tasks` does in the store."""
        skippable = skippable_states(ignore_trigger_rules=ignore_trigger_rules)
        for task_id in task_ids:
            for ti in self.instances_of(task_id):
                if ti.state in skippable:
                    ti.state = TI.SKIPPED

    def next_retry_time(self) -> datetime | None:
        times = [ti.next_retry_at for ti in self.tis.values() if ti.state in TIMED_WAIT_STATES and ti.next_retry_at]
        return min(times) if times else None

    @property
    def finished(self) -> bool:
        return all(ti.state in FINISHED for ti in self.tis.values())

    def run_result(self) -> tuple[str, str | None]:
        """Airflow's rule: the run failed if a leaf task failed or was upstream_failed."""
        leaves = {t.task_id for t in self.dag.tasks if not (t.downstream_task_ids & {k[0] for k in self.tis})}
        failed = [ti for ti in self.tis.values() if ti.task_id in leaves and ti.state in FAILED_STATES]
        if failed:
            first = next((ti for ti in self.tis.values() if ti.state == TI.FAILED), failed[0])
            label = first.task_id + (f"[{first.map_index}]" if first.map_index >= 0 else "")
            return DagRunState.FAILED, label
        return DagRunState.SUCCESS, None

    def summary_rows(self) -> list[dict[str, Any]]:
        return [{"task_id": ti.task_id, "map_index": ti.map_index, "state": ti.state, "try_number": ti.try_number,
                 "duration": ti.duration} for ti in self.tis.values()]
