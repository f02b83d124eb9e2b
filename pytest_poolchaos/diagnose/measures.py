"""Suggestions that quote what the reruns measured, instead of guessing numbers.

expectation: the failing comparison's operands on every run (observed range vs. the bound);
timeout: the durations of runs that finished (limit raised), their p95 and a limit of about
twice that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..model import Attempt, Category, Evidence, Suggestion

HEADROOM = 2.0  # suggested timeout = this times the p95 of the measured durations


def suggestions(category: Category, original: Evidence | None,
                attempts: Sequence[Attempt]) -> list[Suggestion]:
    if category is Category.EXPECTATION:
        return _expectation(original, attempts)
    if category is Category.TIMEOUT:
        return _timeout(original, attempts)
    return []


def p95(values: Sequence[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def fmt(value: float) -> str:
    return f"{value:.3g}"


def _expectation(original: Evidence | None, attempts: Sequence[Attempt]) -> list[Suggestion]:
    comparison = original.comparison if original is not None else None
    observed: list[float] = []
    bound: float | None = None
    op = comparison.op if comparison is not None else ""
    if comparison is not None and comparison.left_value is not None:
        observed.append(comparison.left_value)
        bound = comparison.right_value
    for attempt in attempts:
        left = attempt.values.get("left")
        if isinstance(left, int | float):
            observed.append(float(left))
            right = attempt.values.get("right")
            bound = float(right) if isinstance(right, int | float) else bound
            op = str(attempt.values.get("op") or op)
    if len(observed) < 2 or bound is None:
        return []
    runs = ", ".join(fmt(value) for value in observed)
    low, high = min(observed), max(observed)
    seen = (f"was {fmt(low)} every time" if low == high
            else f"ranged {fmt(low)}..{fmt(high)}")
    advice = ("the check fails the same way each run: fix the code or the expected value"
              if low == high else "make the bound cover the observed range with a margin, "
              "or make the value deterministic")
    return [Suggestion(
        f"Measured over {len(observed)} runs (the failing one and {len(observed) - 1} reruns "
        f"that reached the assertion): the value {seen} against the asserted bound {op} "
        f"{fmt(bound)}; {advice}.",
        f"observed: {runs}; bound: {op} {fmt(bound)}")]


def _timeout(original: Evidence | None, attempts: Sequence[Attempt]) -> list[Suggestion]:
    limit = original.timeout.seconds if original is not None and original.timeout else None
    finished = [float(a.values["duration"]) for a in attempts
                if a.outcome == "passed" and "duration" in a.values]
    raised = [a for a in attempts if "raised" in a.values]
    if not finished:
        if not raised:
            return []
        top = max(float(a.values["raised"]) for a in raised)
        return [Suggestion(
            f"Still did not finish with the limit raised to {fmt(top)} s in {len(raised)} "
            f"rerun(s): this looks like a hang (deadlock, lost wake-up, blocked join), not "
            f"slow work; raising the timeout will not help.")]
    high = p95(finished)
    suggested = math.ceil(HEADROOM * high * 10) / 10
    durations = ", ".join(fmt(value) for value in finished)
    limit_text = f" (the limit is {fmt(limit)} s)" if limit else ""
    return [Suggestion(
        f"Measured: the test finished in {fmt(min(finished))}..{fmt(max(finished))} s over "
        f"{len(finished)} rerun(s){limit_text}, p95 {fmt(high)} s; a limit of about "
        f"{fmt(suggested)} s (twice the p95) would hold, or make the work faster.",
        f"durations: {durations} s; p95 {fmt(high)} s; suggested "
        f"@pytest.mark.timeout({fmt(suggested)})")]
