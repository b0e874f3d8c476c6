"""Trigger rules as Airflow defines them (ti_deps/deps/trigger_rule_dep.py), one row per upstream mix.

Upstream states are written as letters: s success, f failed, u upstream_failed, k skipped, r removed,
n not finished yet. Decisions: RUN, WAIT, SKIP (skipped), UF (upstream_failed).
"""
from __future__ import annotations

import pytest

from nbflow.authoring.trigger_rule import TriggerRule as TR
from nbflow.runtime.readiness import Decision, UpstreamSummary, decide

RUN, WAIT, SKIP, UF = Decision.RUN, Decision.WAIT, Decision.SKIP, Decision.UPSTREAM_FAILED
_STATES = {"s": "success", "f": "failed", "u": "upstream_failed", "k": "skipped", "r": "removed", "n": None}


def summary(states: str) -> UpstreamSummary:
    return UpstreamSummary.of(_STATES[c] for c in states)


TABLE: dict[TR, list[tuple[str, Decision]]] = {
    TR.ALL_SUCCESS: [
        ("ss", RUN), ("sn", WAIT), ("sf", UF), ("su", UF), ("sk", SKIP), ("kf", UF), ("fn", UF), ("kn", SKIP),
    ],
    TR.ALL_FAILED: [
        ("ff", RUN), ("fu", RUN), ("fn", WAIT), ("fs", SKIP), ("fk", SKIP), ("sn", SKIP),
    ],
    TR.ALL_DONE: [
        ("sfk", RUN), ("uu", RUN), ("kk", RUN), ("sn", WAIT), ("fn", WAIT),
    ],
    TR.ALL_DONE_SETUP_SUCCESS: [  # without setup tasks upstream: all_done
        ("sf", RUN), ("kk", RUN), ("fn", WAIT),
    ],
    TR.ALL_DONE_MIN_ONE_SUCCESS: [  # Airflow 3.1: a skipped upstream skips it; no success: upstream_failed
        ("sf", RUN), ("su", RUN), ("ss", RUN), ("sn", WAIT), ("sk", SKIP), ("kn", SKIP), ("ff", UF), ("fu", UF),
    ],
    TR.ALL_SKIPPED: [
        ("kk", RUN), ("kn", WAIT), ("ks", SKIP), ("kf", SKIP), ("ku", SKIP), ("sn", SKIP),
    ],
    TR.ONE_SUCCESS: [
        ("sn", RUN), ("fs", RUN), ("nn", WAIT), ("fn", WAIT), ("kk", SKIP), ("kf", UF), ("ff", UF),
    ],
    TR.ONE_FAILED: [
        ("fn", RUN), ("un", RUN), ("sn", WAIT), ("ss", SKIP), ("sk", SKIP),
    ],
    TR.ONE_DONE: [
        ("sn", RUN), ("fn", RUN), ("nn", WAIT), ("kn", WAIT), ("kk", SKIP), ("ku", SKIP),
    ],
    TR.NONE_FAILED: [
        ("ss", RUN), ("sk", RUN), ("kk", RUN), ("sn", WAIT), ("sf", UF), ("ku", UF), ("fn", UF),
    ],
    TR.NONE_FAILED_MIN_ONE_SUCCESS: [
        ("ss", RUN), ("sk", RUN), ("sn", WAIT), ("kn", WAIT), ("kk", SKIP), ("sf", UF), ("ku", UF), ("fn", UF),
    ],
    TR.NONE_SKIPPED: [
        ("ss", RUN), ("sf", RUN), ("su", RUN), ("sn", WAIT), ("sk", SKIP), ("kn", SKIP),
    ],
    TR.ALWAYS: [
        ("nn", RUN), ("ff", RUN), ("kk", RUN), ("su", RUN),
    ],
}


def test_the_table_covers_every_trigger_rule() -> None:
    assert set(TABLE) == set(TR)


@pytest.mark.parametrize(("rule", "upstream", "expected"),
                         [(rule, up, want) for rule, rows in TABLE.items() for up, want in rows],
                         ids=[f"{rule.value}-{up}" for rule, rows in TABLE.items() for up, _ in rows])
def test_decide_follows_airflows_trigger_rule_semantics(rule: TR, upstream: str, expected: Decision) -> None:
    assert decide(rule, summary(upstream)) is expected


@pytest.mark.parametrize("rule", list(TR))
def test_a_task_without_upstream_runs_whatever_its_rule(rule: TR) -> None:
    assert decide(rule, UpstreamSummary(total=0)) is RUN


def test_rule_may_be_given_as_its_string() -> None:
    assert decide("none_failed", summary("sk")) is RUN


def test_unknown_rule_is_an_error() -> None:
    with pytest.raises(ValueError, match="sometimes"):
        decide("sometimes", summary("s"))


def test_summary_counts_each_state() -> None:
    up = summary("sskfurn")
    assert (up.total, up.success, up.skipped, up.failed, up.upstream_failed, up.removed) == (7, 2, 1, 1, 1, 1)
    assert up.done == 6 and not up.all_done and up.failures == 2
