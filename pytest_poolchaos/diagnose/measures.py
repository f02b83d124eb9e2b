"""Suggestions that quote what the reruns measured, instead of guessing numbers.

expectation: the failing comparison's operands on every run (observed range vs. the bound);
timeout: the durations of runs that finished (limit raised), their p95 and a limit of about
twice that.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ..model import Attempt, Category, Evidence, Suggestion

HEADROOM = 2.0  # suggested timeout = this times the p95 of the measured durations
_RERUNS = ("inline", "isolated")
_ASSERT = re.compile(r"^\s*assert\s+(?P<left>.+?)\s*(?P<op><=|>=|<|>)\s*"
                     r"(?P<right>[-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*$")
#: the timeout argument of the wait that gave up, in its source line
_WAIT_ARG = re.compile(r"(timeout\s*=\s*)([0-9]*\.?[0-9]+)")


def _passed(attempt: Attempt) -> bool:
    return attempt.outcome == "passed" and not attempt.values.get("over_limit", False)


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
    """The compared value over every run: failing runs give their value, passing runs say it
    met the bound; a bound is suggested only from what was seen, never below the lowest."""
    comparison = original.comparison if original is not None else None
    reruns = [a for a in attempts if a.mode in _RERUNS and a.outcome != "skipped"]
    if comparison is None or comparison.left_value is None or not reruns:
        return []
    op, bound = comparison.op, comparison.right_value
    observed = [comparison.left_value]
    for attempt in reruns:
        left = attempt.values.get("left")
        if attempt.outcome != "passed" and isinstance(left, int | float):
            observed.append(float(left))
    if bound is None:
        return []
    passes = sum(1 for a in reruns if _passed(a))
    failed = 1 + len(reruns) - passes
    runs = f"{len(reruns) + 1} runs (the failing one and {len(reruns)} reruns)"
    low, high = min(observed), max(observed)
    values = ", ".join(fmt(value) for value in observed)
    reached = "" if len(observed) == failed else \
        f" ({len(observed)} of the {failed} failing runs reached the assertion)"
    seen = f"was {fmt(low)}" if low == high else f"ranged {fmt(low)}..{fmt(high)}"
    detail = f"failing values: {values}; passing runs: {passes}; bound: {op} {fmt(bound)}"
    if not passes:
        again = ("fails the same way each run: fix the code or the expected value"
                 if len(observed) > 1 and low == high else
                 "never met the bound: the bound or the code is wrong, not the timing")
        return [Suggestion(f"Measured over {runs}: failed every time; the value {seen} "
                           f"against {op} {fmt(bound)}{reached}; it {again}.", detail)]
    lowest = low if op in (">", ">=") else high
    text = (f"Measured over {runs}: passed {passes}, failed {failed}; in the failing runs the "
            f"value {seen}{reached}, in the passing ones it met {op} {fmt(bound)}. It varies "
            f"from run to run: make it deterministic, or accept the spread with a bound no "
            f"tighter than the worst value seen, {fmt(lowest)}.")
    call = _assertion(original, op, lowest)
    return [Suggestion(text, f"{call}\n{detail}" if call else detail)]


def _assertion(original: Evidence | None, op: str, value: float) -> str:
    """The failing assert with its bound set to ``value`` (``>`` becomes ``>=`` so the worst
    value seen passes), or '' when the source line is not a plain comparison."""
    match = _ASSERT.match(original.source_line if original is not None else "")
    if match is None or match["op"] != op:
        return ""
    inclusive = {">": ">=", "<": "<="}.get(op, op)
    return f"assert {match['left'].strip()} {inclusive} {fmt(value)}"


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
    fired = original is not None and original.timeout is not None and original.timeout.fired
    # pytest-timeout's limit is raised with its marker; a call's own wait, in the call.
    change = (f"@pytest.mark.timeout({fmt(suggested)})" if fired
              else _raised_wait(original, suggested))
    what = "a limit" if fired else "a wait"
    return [Suggestion(
        f"Measured: the test finished in {fmt(min(finished))}..{fmt(max(finished))} s over "
        f"{len(finished)} passing rerun(s){limit_text}, p95 {fmt(high)} s; {what} of about "
        f"{fmt(suggested)} s (twice the p95) would hold, or make the work faster.",
        f"durations: {durations} s; p95 {fmt(high)} s"
        + (f"; suggested {change}" if change else ""))]


def _raised_wait(original: Evidence | None, seconds: float) -> str:
    """The failing line with its ``timeout=`` raised to ``seconds``, or ''."""
    source = original.source_line.strip() if original is not None else ""
    if not _WAIT_ARG.search(source):
        return ""
    return _WAIT_ARG.sub(lambda m: f"{m.group(1)}{fmt(seconds)}", source, count=1)
