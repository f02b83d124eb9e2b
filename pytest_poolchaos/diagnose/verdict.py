"""From rerun outcomes to a verdict: deterministic, flaky, or a candidate for order-dependent.

A rerun that passed only because a timeout was raised still counts as a failure: it ran longer
than the limit the test really has.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model import STABLE_ALONE, Attempt, Verdict
from ..model.frozen import frozen

RERUN_MODES = ("inline", "isolated", "confirm")
_ALONE = ("isolated", "confirm")  # without the neighbours the test had in the suite


@frozen
class Tally:
    runs: int
    passes: int
    isolated_runs: int
    isolated_passes: int
    inline_runs: int
    inline_passes: int

    @property
    def pass_rate(self) -> float | None:
        return round(self.passes / self.runs, 3) if self.runs else None


def passed(attempt: Attempt) -> bool:
    return attempt.outcome == "passed" and not attempt.values.get("over_limit", False)


def tally(attempts: Sequence[Attempt]) -> Tally:
    reruns = [a for a in attempts if a.mode in RERUN_MODES and a.outcome != "skipped"]
    alone = [a for a in reruns if a.mode in _ALONE]
    inline = [a for a in reruns if a.mode == "inline"]
    return Tally(len(reruns), sum(map(passed, reruns)), len(alone), sum(map(passed, alone)),
                 len(inline), sum(map(passed, inline)))


def suspect_order(counts: Tally) -> bool:
    """Passes every time alone, and never both passed and failed in the suite's own state."""
    if not counts.isolated_runs or counts.isolated_passes < counts.isolated_runs:
        return False
    return counts.inline_passes in (0, counts.inline_runs)


def verdict(counts: Tally, order_confirmed: bool | None) -> Verdict:
    """``order_confirmed``: the polluter search's answer (None when no search ran, or it ran
    out of budget).

    Order-dependent needs a stable result alone (``STABLE_ALONE`` passes) and the failing order
    reproduced at least once (by the search, or by a rerun in the suite's own state): a test
    that failed once at random and then passed alone is flaky, never some earlier test's fault.
    """
    if counts.runs == 0:
        return Verdict.UNKNOWN
    if suspect_order(counts):
        in_suite_state = counts.inline_runs > 0
        if order_confirmed is False or (order_confirmed is None and in_suite_state
                                        and counts.inline_passes == counts.inline_runs):
            return Verdict.FLAKY  # no earlier test makes it fail, or it passed in place
        reproduced = order_confirmed is True or (in_suite_state and not counts.inline_passes)
        if counts.isolated_passes >= STABLE_ALONE and reproduced:
            return Verdict.ORDER_DEPENDENT
        return Verdict.UNKNOWN
    if counts.passes == 0:
        return Verdict.DETERMINISTIC
    return Verdict.FLAKY
