"""Find the earlier test whose leftover state makes a victim fail.

Ledger fast path first: earlier tests whose recorded leftovers (env keys, watched values...) are
named in the failure text are tried most recent first, one ``[candidate, victim]`` run each.
Otherwise bisect the tests that ran before the victim in the same process, in their original
order (so module and class fixtures still set up as they did). Both are bounded by a run budget
and a time budget; when one runs out the narrowest range found is reported.

A run reproduces the failure only when the victim fails the way it failed in the session (the
same exception class): two earlier tests may each break it, each its own way, and the one
named must be the one that broke it there.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..classify.pollution import mentioned_in
from ..model import Attempt, LedgerEntry
from ..outcome import FAILED, failure_kind
from .reruns import from_child
from .runner import Runner

_FAST_PATH_TRIES = 3
_SLACK_S = 30.0


@dataclass
class Search:
    """Outcome of one polluter search."""

    method: str = "bisect"  # ledger | bisect | exhausted
    polluter: str | None = None
    #: True when some subset of earlier tests made the victim fail in a subprocess, False when
    #: the search finished and nothing did, None when it ran out of budget first.
    reproduced: bool | None = None
    narrowest: list[str] = field(default_factory=list)
    left_behind: list[LedgerEntry] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    runs: int = 0
    seconds: float = 0.0
    #: earlier tests the fast path already ran as ``[test, victim]`` pairs
    tried: list[str] = field(default_factory=list)
    #: no earlier test made it fail, the run's test modules collected with it did (their
    #: import, which runs before any test, changes what it uses)
    collected: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "runs": self.runs,
                               "seconds": round(self.seconds, 3)}
        if self.method == "exhausted":
            out["narrowest"] = list(self.narrowest)
        return out


class PolluterSearch:
    def __init__(self, runner: Runner, budget_runs: int, budget_s: float,
                 durations: dict[str, float], search: Search | None = None,
                 crash: str = "") -> None:
        """``search``: one a quick ``find`` began, to go on with (its runs count).
        ``crash``: the victim's crash message in the session, which a run must reproduce."""
        self.runner = runner
        self.budget_runs = budget_runs
        self.budget_s = budget_s
        self.durations = durations
        self.search = search if search is not None else Search()
        self.kind = failure_kind(crash)
        self.start = 0.0

    def find(self, victim: str, candidates: Sequence[str], ledger: Sequence[LedgerEntry],
             failure_text: str, hints: Sequence[str] = (), quick: int | None = None,
             modules: Sequence[str] = ()) -> Search:
        """``hints``: earlier tests to try one pair run each before anything else, best first
        (the failure text's ledger matches follow them). ``quick``: try only that many of them
        and stop there, leaving bisection to a later ``find`` on the same search.
        ``modules``: the run's test files, in its order: when no earlier test makes the victim
        fail, one more run collects them all and runs the victim only."""
        self.start = time.perf_counter()
        spent = self.search.seconds
        try:
            earlier = set(candidates)
            order = [n for n in dict.fromkeys([*hints, *named_in_failure(candidates, ledger,
                                                                          failure_text)])
                     if n in earlier]
            if self._fast_path(victim, order, ledger, _FAST_PATH_TRIES if quick is None
                               else quick) or quick is not None:
                return self.search
            self._module_first(victim, list(candidates), ledger)
            if self.search.reproduced is False and len(modules) > 1 and \
                    not self._out_of_budget():
                self._collected_with(victim, list(modules))
        finally:
            self.search.seconds = spent + time.perf_counter() - self.start
        return self.search

    # -- ledger fast path --------------------------------------------------------------------

    def _fast_path(self, victim: str, order: Sequence[str], ledger: Sequence[LedgerEntry],
                   tries: int) -> bool:
        for nodeid in order:
            if len(self.search.tried) >= tries or self._out_of_budget():
                return False
            if nodeid in self.search.tried:
                continue
            self.search.tried.append(nodeid)
            if self._fails([nodeid, victim], "pair"):
                self._found(nodeid, "ledger", ledger)
                return True
        return False

    # -- bisection ----------------------------------------------------------------------------

    def _module_first(self, victim: str, candidates: list[str],
                      ledger: Sequence[LedgerEntry]) -> None:
        """Most polluters share the victim's module: one run of that module's earlier tests
        either narrows the search to them or rules them out, before bisecting the rest."""
        module = _module(victim)
        local = [c for c in candidates if _module(c) == module]
        if not local or len(local) == len(candidates) or self._out_of_budget():
            return self._bisect(victim, candidates, ledger)
        failed = self._fails([*local, victim], "bisect")
        if failed is None:
            return self._exhausted(candidates)
        if failed:
            self.search.reproduced = True
            return self._bisect(victim, local, ledger, confirmed=True)
        return self._bisect(victim, [c for c in candidates if _module(c) != module], ledger)

    def _bisect(self, victim: str, candidates: list[str],
                ledger: Sequence[LedgerEntry], confirmed: bool = False) -> None:
        while len(candidates) > 1:
            if self._out_of_budget():
                return self._exhausted(candidates)
            half = candidates[: len(candidates) // 2]
            failed = self._fails([*half, victim], "bisect")
            if failed is None:
                return self._exhausted(candidates)
            if failed:
                candidates, confirmed = half, True
                self.search.reproduced = True
            else:
                candidates, confirmed = candidates[len(candidates) // 2:], False
        if not candidates:
            self.search.reproduced = False
            return None
        if not confirmed:
            if self._out_of_budget():
                return self._exhausted(candidates)
            failed = self._fails([candidates[0], victim], "pair")
            if failed is None:
                return self._exhausted(candidates)
            if not failed:
                self.search.reproduced = False  # passes after every single earlier test
                return None
        self._found(candidates[0], "bisect", ledger)
        return None

    def _collected_with(self, victim: str, modules: list[str]) -> None:
        """Imports run at collection, before any test: a module that replaces a registered
        name or a default when imported makes a test fail in the whole run and nowhere else."""
        if self._fails(modules, "bisect", victim):
            self.search.reproduced = self.search.collected = True

    # -- helpers ------------------------------------------------------------------------------

    def _fails(self, nodeids: list[str], mode: str, only: str | None = None) -> bool | None:
        """Whether the last of ``nodeids`` failed after the others (with ``only``: whether
        that test failed with all that ``nodeids`` collect, the only one run); None when the
        run never got to its end (killed at the time limit, or the subprocess died)."""
        victim = only or nodeids[-1]
        expected = sum(self.durations.get(nodeid, 0.0) for nodeid in {*nodeids, victim})
        left = self.budget_s - (time.perf_counter() - self.start)
        limit = min(max(left, 1.0), expected * 3 + _SLACK_S)
        run = (self.runner.run(nodeids, timeout=limit, light=True, only=[victim]) if only
               else self.runner.run(nodeids, timeout=limit, light=True))
        self.search.runs += 1
        test = run.result(victim)
        attempt = from_child(mode, test)
        what = (f"with the run's {len(nodeids)} test modules collected, no earlier test run"
                if only else f"after {len(nodeids) - 1} earlier test(s) from {nodeids[0]}")
        kind = failure_kind(test.message) if test.outcome in FAILED else None
        # Failing some other way is not this failure reproduced: what broke it here is
        # another leftover, not the one that broke it in the session.
        other = kind if self.kind and kind and kind != self.kind else None
        self.search.attempts.append(Attempt(
            attempt.mode, attempt.outcome, attempt.duration_s,
            what + (f": {attempt.message}" if attempt.message else "")
            + (f" ({other}, not the {self.kind} of the run: not counted)" if other else "")))
        if victim not in run.tests:
            return None
        return test.outcome in FAILED and other is None

    def _found(self, nodeid: str, method: str, ledger: Sequence[LedgerEntry]) -> None:
        self.search.method = method
        self.search.polluter = nodeid
        self.search.reproduced = True
        self.search.left_behind = [entry for entry in ledger if entry.nodeid == nodeid]

    def _exhausted(self, candidates: list[str]) -> None:
        self.search.method = "exhausted"
        self.search.narrowest = list(candidates)

    def _out_of_budget(self) -> bool:
        return (self.search.runs >= self.budget_runs
                or time.perf_counter() - self.start >= self.budget_s)


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def named_in_failure(candidates: Sequence[str], ledger: Sequence[LedgerEntry],
                     text: str) -> list[str]:
    """Earlier tests whose leftover key or value appears in the failure text, latest first.

    The words are those the config-pollution rules match, so the fast path tries exactly the
    entries the diagnosis named.
    """
    order = {nodeid: index for index, nodeid in enumerate(candidates)}
    hits = {entry.nodeid for entry in ledger
            if entry.nodeid in order and mentioned_in(entry, text) is not None}
    return sorted(hits, key=lambda nodeid: order[nodeid], reverse=True)
