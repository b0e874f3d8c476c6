"""May a task instance run now? Trigger rules over its upstream states; pure functions."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from nbflow.authoring.trigger_rule import TriggerRule as TR
from nbflow.utils.state import TaskInstanceState as TI


# Rules that can say "run" before every upstream task is done; the others wait for all of them.
EARLY_RULES = frozenset({TR.ALWAYS, TR.ONE_SUCCESS, TR.ONE_FAILED, TR.ONE_DONE})

# What a skip asked for by a branch or short-circuit may overwrite: an instance not started yet, and
# with ignore_downstream_trigger_rules one waiting to retry too; never one running or finished.
_SKIPPABLE = (None,)
_SKIPPABLE_IGNORING_RULES = (None, TI.SCHEDULED, TI.UP_FOR_RETRY)


def skippable_states(*, ignore_trigger_rules: bool) -> tuple[str | None, ...]:
    """States a downstream instance may be in for a skip request to skip it (scheduler and `dags test` alike)."""
    return _SKIPPABLE_IGNORING_RULES if ignore_trigger_rules else _SKIPPABLE


class Decision(str, Enum):
    WAIT = "wait"
    RUN = "run"
    SKIP = TI.SKIPPED
    UPSTREAM_FAILED = TI.UPSTREAM_FAILED


@dataclass(frozen=True, slots=True)
class UpstreamSummary:
    """Counts of upstream task instance states (mapped upstreams count each instance)."""

    total: int
    success: int = 0
    skipped: int = 0
    failed: int = 0
    upstream_failed: int = 0
    removed: int = 0

    @classmethod
    def of(cls, states: Iterable[str | None]) -> "UpstreamSummary":
        states = list(states)
        c = Counter(states)
        return cls(total=len(states), success=c[TI.SUCCESS], skipped=c[TI.SKIPPED], failed=c[TI.FAILED],
                   upstream_failed=c[TI.UPSTREAM_FAILED], removed=c[TI.REMOVED])

    @property
    def done(self) -> int:
        return self.success + self.skipped + self.failed + self.upstream_failed + self.removed

    @property
    def all_done(self) -> bool:
        return self.done >= self.total

    @property
    def failures(self) -> int:
        return self.failed + self.upstream_failed


def decide(rule: TR | str, up: UpstreamSummary) -> Decision:
    """Airflow's trigger-rule semantics, including early decisions before every upstream is done."""
    rule = TR(rule)
    if up.total == 0 or rule is TR.ALWAYS:
        return Decision.RUN
    done, n = up.all_done, up.total
    if rule is TR.ALL_SUCCESS:
        if up.failures:
            return Decision.UPSTREAM_FAILED
        if up.skipped:
            return Decision.SKIP
        return Decision.RUN if up.success + up.removed >= n else Decision.WAIT
    if rule is TR.ALL_FAILED:
        if up.success or up.skipped:
            return Decision.SKIP
        return Decision.RUN if done else Decision.WAIT
    if rule in (TR.ALL_DONE, TR.ALL_DONE_SETUP_SUCCESS):
        return Decision.RUN if done else Decision.WAIT
    if rule is TR.ALL_DONE_MIN_ONE_SUCCESS:
        # Airflow 3.1: a skipped upstream is never "done" for this rule, so it skips the task at once;
        # every upstream done without one success is an upstream failure.
        if up.skipped:
            return Decision.SKIP
        if not done:
            return Decision.WAIT
        return Decision.RUN if up.success else Decision.UPSTREAM_FAILED
    if rule is TR.ALL_SKIPPED:
        if up.success or up.failures:
            return Decision.SKIP
        return Decision.RUN if done else Decision.WAIT
    if rule is TR.ONE_SUCCESS:
        if up.success:
            return Decision.RUN
        if not done:
            return Decision.WAIT
        return Decision.UPSTREAM_FAILED if up.failures else Decision.SKIP
    if rule is TR.ONE_FAILED:
        if up.failures:
            return Decision.RUN
        return Decision.SKIP if done else Decision.WAIT
    if rule is TR.ONE_DONE:
        if up.success or up.failed:
            return Decision.RUN
        return Decision.SKIP if done else Decision.WAIT
    if rule is TR.NONE_FAILED:
        if up.failures:
            return Decision.UPSTREAM_FAILED
        return Decision.RUN if done else Decision.WAIT
    if rule is TR.NONE_FAILED_MIN_ONE_SUCCESS:
        if up.failures:
            return Decision.UPSTREAM_FAILED
        if not done:
            return Decision.WAIT
        return Decision.RUN if up.success else Decision.SKIP
    if rule is TR.NONE_SKIPPED:
        if up.skipped:
            return Decision.SKIP
        return Decision.RUN if done else Decision.WAIT
    raise ValueError(f"unknown trigger rule {rule!r}")
