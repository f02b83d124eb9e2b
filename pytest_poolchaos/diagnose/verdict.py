"""From rerun outcomes to a verdict: deterministic, flaky, or a candidate for order-dependent.

A rerun that passed only because a timeout was raised still counts as a failure: it ran longer
than the limit the test really has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..model import Attempt, Verdict

RERUN_MODES = ("inline", "isolated")


@dataclass(frozen=True, slots=True)
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
    alone = [a for a in reruns if a.mode == "isolated"]
    inline = [a for a in reruns if a.mode == "inline"]
    return Tally(len(reruns), sum(map(passed, reruns)), len(alone), sum(map(passed, alone)),
                 len(inline), sum(map(passed, inline)))


def suspect_order(counts: Tally) -> bool:
    """Passes every time alone, and never both passed and failed in the suite's own state."""
    if not counts.isolated_runs or counts.isolated_passes < counts.isolated_runs:
        return False
    return counts.inline_passes in (0, counts.inline_runs)


def verdict(counts: Tally, order_confirmed: bool | None) -> Verdict:
    """``order_confirmed``: the polluter search's answer (None when no search ran)."""
    if counts.runs == 0:
        return Verdict.UNKNOWN
    if suspect_order(counts):
        if order_confirmed is None:
            # Without a search, a test that passes alone but failed in every suite-state rerun
            # is taken as order-dependent; one that also passed in the suite state is flaky.
            if counts.inline_runs and counts.inline_passes == counts.inline_runs:
                return Verdict.FLAKY
            return Verdict.ORDER_DEPENDENT
        return Verdict.ORDER_DEPENDENT if order_confirmed else Verdict.FLAKY
    if counts.passes == 0:
        return Verdict.DETERMINISTIC
    return Verdict.FLAKY
