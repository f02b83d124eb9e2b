"""Cleaners: tests that, run between a polluter and its victim, make the victim pass.

iPFlakies' term. A cleaner shows what must be reset for the victim to pass (it usually sets
the state the victim assumes) and so where a fixture belongs. The search runs after the
polluter search, on what is left of the same run and time budgets:

1. tests that the main run saw change what the polluter left behind (same env key or watched
   value) are tried first, one ``[polluter, cleaner, victim]`` run each;
2. then the remaining tests as one group between polluter and victim; if the victim passes,
   the group is halved until one test is left (delta debugging on the group).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..model import Attempt, Leak, LedgerEntry, Suggestion
from .reruns import from_child
from .runner import Runner

_RELATED_TRIES = 3
_SLACK_S = 30.0
STARTUP_S = 2.0  # what starting one pytest subprocess costs, about


@dataclass
class Cleaners:
    """Outcome of one cleaner search."""

    found: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    runs: int = 0
    seconds: float = 0.0
    exhausted: bool = False


class CleanerSearch:
    def __init__(self, runner: Runner, budget_runs: int, budget_s: float,
                 durations: Mapping[str, float]) -> None:
        self.runner = runner
        self.budget_runs = budget_runs
        self.budget_s = budget_s
        self.durations = durations
        self.result = Cleaners()
        self.start = 0.0

    def find(self, polluter: str, victim: str, candidates: Sequence[str],
             related: Sequence[str]) -> Cleaners:
        """``related``: candidates whose recorded changes touch what the polluter left."""
        self.start = time.perf_counter()
        try:
            self._related(polluter, victim, [c for c in related if c in candidates])
            if not self.result.found:
                rest = [c for c in candidates if c not in related]
                self._group(polluter, victim, rest)
        finally:
            self.result.seconds = time.perf_counter() - self.start
        return self.result

    def _related(self, polluter: str, victim: str, related: Sequence[str]) -> None:
        for nodeid in related[:_RELATED_TRIES]:
            if self._out_of_budget():
                return
            if self._passes(polluter, [nodeid], victim, "pair"):
                self.result.found.append(nodeid)
                return

    def _group(self, polluter: str, victim: str, group: list[str]) -> None:
        if not group or self._out_of_budget():
            return
        expected = sum(self.durations.get(n, 0.0) for n in [polluter, *group, victim])
        if expected + STARTUP_S > self.budget_s - (time.perf_counter() - self.start):
            self.result.exhausted = True  # one run of the group would not fit: do not start it
            return
        if not self._passes(polluter, group, victim, "bisect"):
            return  # nothing in the group cleans (or only together with a polluter of its own)
        confirmed = True  # the group as it stands made the victim pass
        while len(group) > 1:
            if self._out_of_budget():
                return
            half = group[: len(group) // 2]
            if self._passes(polluter, half, victim, "bisect"):
                group, confirmed = half, True
            else:  # then the cleaner is in the other half, unless it takes both halves
                group, confirmed = group[len(group) // 2:], False
        if confirmed or (not self._out_of_budget()
                         and self._passes(polluter, group, victim, "pair")):
            self.result.found.append(group[0])

    def _passes(self, polluter: str, between: list[str], victim: str, mode: str) -> bool:
        nodeids = [polluter, *between, victim]
        expected = sum(self.durations.get(nodeid, 0.0) for nodeid in nodeids)
        left = self.budget_s - (time.perf_counter() - self.start)
        run = self.runner.run(nodeids, timeout=min(max(left, 1.0), expected * 3 + _SLACK_S),
                              light=True)
        self.result.runs += 1
        test = run.result(victim)
        attempt = from_child(mode, test)
        shown = between[0] + (f" and {len(between) - 1} more" if len(between) > 1 else "")
        self.result.attempts.append(Attempt(
            attempt.mode, attempt.outcome, attempt.duration_s,
            f"{len(between)} test(s) between the polluter and this test ({shown}): "
            f"cleaner search" + (f": {attempt.message}" if attempt.message else "")))
        return test.outcome == "passed"

    def _out_of_budget(self) -> bool:
        out = (self.result.runs >= self.budget_runs
               or time.perf_counter() - self.start >= self.budget_s)
        self.result.exhausted = self.result.exhausted or out
        return out


def related_tests(polluter_left: Sequence[LedgerEntry],
                  leaks: Mapping[str, Sequence[Leak]]) -> list[str]:
    """Tests whose recorded changes touch a key the polluter left changed."""
    keys = {f"{entry.kind}:{entry.key}" for entry in polluter_left}
    return [nodeid for nodeid, found in leaks.items()
            if any(leak.key in keys for leak in found)]


def advice(cleaner: str, polluter: str, victim: str, polluter_left: Sequence[LedgerEntry],
           cleaner_leaks: Sequence[Leak]) -> tuple[list[str], list[Suggestion]]:
    """Evidence lines and the suggestion: what the cleaner resets, and where to do it."""
    reset = {leak.key: leak for leak in cleaner_leaks}
    touched = [entry for entry in polluter_left if f"{entry.kind}:{entry.key}" in reset]
    line = f"cleaner {cleaner}: run between {polluter} and this test, it makes it pass"
    if touched:
        entry = touched[0]
        what = reset[f"{entry.kind}:{entry.key}"].detail
        lines = [f"{line}; it sets {what}, which {polluter} left as "
                 f"{entry.describe()}"]
        return lines, [Suggestion(
            f"{cleaner} resets what {polluter} leaves behind ({what}): give {victim} the "
            f"same reset in a fixture of its own (e.g. monkeypatch), or make {polluter} "
            f"restore {entry.key} after itself; then neither order matters.",
            f"reset: {what}")]
    return [line], [Suggestion(
        f"{cleaner} puts back some state {polluter} leaves changed, but no recorded change "
        f"names it (state outside os.environ, cwd, sys.path and watched globals): what "
        f"{cleaner} sets up, {victim} needs too; move it into a shared fixture, or add the "
        f"object to --poolchaos-watch to see it.")]
