"""When a failed attempt runs again: the one rule that every path ending an attempt asks.

The worker recording an outcome (`attempt.record_outcome`), the scheduler failing an attempt
whose process died (`attempt.fail_dead_attempt`), the in-process engine of `dags test`
(`run_state.RunState.apply`) and the task runner choosing between the retry and the failure
callback all call `decide_after_failure`, so they cannot disagree. The rule is Airflow 3's: an
attempt that failed with an error another attempt could fix runs again while its try number is
at most the instance's max_tries (the task's `retries`, more once the instance was cleared),
`next_retry_delay` after it failed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from nbflow.exceptions import NbflowFailException, ParamValidationError, TemplateRenderError, XComError
from nbflow.utils.state import TaskInstanceState

if TYPE_CHECKING:
    from nbflow.authoring.baseoperator import BaseOperator

# Errors that retrying cannot fix: the task asked to fail, or its templates, params or XComs are wrong.
_NOT_RETRYABLE = (NbflowFailException, TemplateRenderError, ParamValidationError, XComError)


def is_retryable(error: BaseException) -> bool:
    """Whether another attempt could end differently (not for NbflowFailException, bad templates, params, XComs)."""
    return not isinstance(error, _NOT_RETRYABLE)


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What a failed attempt leaves its instance in, and from when an up_for_retry one may run again."""

    state: TaskInstanceState  # up_for_retry or failed
    next_retry_at: datetime | None = None

    @property
    def retries(self) -> bool:
        return self.state == TaskInstanceState.UP_FOR_RETRY


_FAILED = RetryDecision(TaskInstanceState.FAILED)


def tries_allowed(task: "BaseOperator", max_tries: int | None) -> int:
    """The instance's max_tries: as claimed when known (clearing raises it), else its task's retries."""
    return task.retries if max_tries is None else max_tries


def will_retry(*, try_number: int, max_tries: int, retryable: bool) -> bool:
    """Whether failed attempt `try_number` leaves its instance up_for_retry: the rule without its clock.

    The task runner asks only this to pick the retry or the failure callback before the outcome is
    recorded; `decide_after_failure` asks it too, then adds when.
    """
    return retryable and try_number <= max_tries


def decide_after_failure(task: "BaseOperator | None", *, try_number: int, max_tries: int | None = None,
                         retryable: bool = True, logical_date: datetime | None, now: datetime) -> RetryDecision:
    """Retry or fail the instance whose attempt `try_number` failed, and when the retry may start.

    `max_tries` is the instance's (a cleared instance has more than its task's `retries`); None
    means the task's own. `task` None (its DAG is gone) still retries, at once, if tries remain.
    The delay's jitter is seeded by `logical_date`, so every path computes the same time.
    """
    limit = tries_allowed(task, max_tries) if task is not None else (max_tries or 0)
    if not will_retry(try_number=try_number, max_tries=limit, retryable=retryable):
        return _FAILED
    if task is None:
        return RetryDecision(TaskInstanceState.UP_FOR_RETRY, now)
    return RetryDecision(TaskInstanceState.UP_FOR_RETRY,
                         now + task.next_retry_delay(try_number + 1, logical_date=logical_date))
