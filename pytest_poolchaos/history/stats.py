"""One test's past, summed up: pure functions over plain values, no SQLite, no pytest.

A *flip* is a change between passing and failing from one recorded run of a test to its next
(skips are neither and are stepped over). A test that failed and then passed again, with no
rerun involved, is the classic flaky test: the diagnosis says so even when this run had no
reruns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any, NamedTuple

from . import SLOW_MARGIN_S

__all__ = [
    "FAILED",
    "WINDOW",
    "Past",
    "flaky_line",
    "flips",
    "history_phrase",
    "percentile",
    "recovered",
    "slower",
    "state",
    "summarize",
]

#: How many earlier runs of a test the report looks at ("failed 3 of the last 20 ...").
WINDOW = 20
FAILED = frozenset({"failed", "error"})
_PASSED = frozenset({"passed", "xfailed", "xpassed"})  # an expected failure keeps CI green

#: A slow-down is flagged when this run took at least SLOW_FACTOR times the test's median and
#: more than its p95, at least SLOW_MARGIN_S longer than the median, with at least
#: BASELINE_RUNS passing runs behind the median.
SLOW_FACTOR = 2.0
BASELINE_RUNS = 5


class Past(NamedTuple):
    """One earlier run of one test."""

    created: str  # ISO 8601, UTC
    outcome: str
    duration_s: float
    category: str | None = None


def state(outcome: str) -> bool | None:
    """True for a pass, False for a failure, None for neither (skipped)."""
    if outcome in FAILED:
        return False
    return True if outcome in _PASSED else None


def _states(outcomes: Sequence[str]) -> list[bool]:
    return [s for s in map(state, outcomes) if s is not None]


def flips(outcomes: Sequence[str]) -> int:
    """Pass<->fail changes between consecutive runs, oldest first."""
    states = _states(outcomes)
    return sum(1 for before, after in pairwise(states) if before != after)


def recovered(outcomes: Sequence[str]) -> bool:
    """Whether a failure was later followed by a pass (oldest first): it comes and goes."""
    failed = False
    for passed in _states(outcomes):
        if not passed:
            failed = True
        elif failed:
            return True
    return False


def percentile(values: Sequence[float], share: float) -> float:
    """Linear interpolation between closest ranks (what numpy calls 'linear')."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = share * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def baseline(past: Sequence[Past]) -> tuple[float, float, int] | None:
    """(p50, p95, runs) of the passing runs' durations, or None without enough of them."""
    durations = [p.duration_s for p in past if state(p.outcome)]
    if len(durations) < BASELINE_RUNS:
        return None
    return percentile(durations, 0.5), percentile(durations, 0.95), len(durations)


def slower(duration_s: float, p50: float, p95: float) -> bool:
    return (duration_s >= SLOW_FACTOR * p50 and duration_s > p95
            and duration_s - p50 >= SLOW_MARGIN_S)


def summarize(past: Sequence[Past], first_failed: str | None, last_failed: str | None,
              duration_s: float | None = None) -> dict[str, Any]:
    """The contract's ``tests[].history`` object for a test with ``past`` (newest first).

    ``first_failed``/``last_failed`` span everything recorded, the counts only the window;
    ``duration_s`` is this run's, compared against the window's passing runs.
    """
    window = list(past[:WINDOW])[::-1]  # oldest first
    outcomes = [p.outcome for p in window]
    categories: dict[str, int] = {}
    for p in window:
        if p.category and p.outcome in FAILED:
            categories[p.category] = categories.get(p.category, 0) + 1
    changes = flips(outcomes)
    out: dict[str, Any] = {
        "runs": len(window),
        "failures": sum(1 for outcome in outcomes if outcome in FAILED),
        "flips": changes,
        "first_failed": first_failed,
        "last_failed": last_failed,
        "categories": categories,
        "flip_rate": round(changes / (len(window) - 1), 3) if len(window) > 1 else 0.0,
        "recovered": recovered(outcomes),
        "recent": outcomes,
    }
    found = baseline(window)
    if found is not None:
        p50, p95, _ = found
        out["p50_s"], out["p95_s"] = round(p50, 6), round(p95, 6)
        out["slower"] = duration_s is not None and slower(duration_s, p50, p95)
    return out


def history_phrase(history: Mapping[str, Any] | None) -> str | None:
    """``failed 3 of the last 20 recorded runs, flip rate 0.16, first failed on 2024-05-01``."""
    if not history or not history.get("runs"):
        return None
    runs, failures = int(history["runs"]), int(history.get("failures") or 0)
    last = "the last recorded run" if runs == 1 else f"the last {runs} recorded runs"
    if runs == 1:
        return f"{'failed' if failures else 'passed'} {last}"
    if not failures:
        return f"passed all of {last}"
    text = f"failed {failures} of {last}, flip rate {float(history.get('flip_rate') or 0):.2f}"
    if first := history.get("first_failed"):
        text += f", first failed on {str(first)[:10]}"
    return text


def flaky_line(history: Mapping[str, Any]) -> str:
    """The evidence line behind a verdict of ``flaky`` that rests on history alone."""
    return (f"it passed again after failing in earlier recorded runs (flip rate "
            f"{float(history.get('flip_rate') or 0):.2f}), with no rerun involved: a failure that "
            f"comes and goes is flaky")
