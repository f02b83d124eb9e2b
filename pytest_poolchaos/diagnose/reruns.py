"""Diagnostic reruns: inline (this process, after the session) and isolated (a subprocess each).

Inline reruns call the run protocol without logging, so they produce no reports: the terminal,
junitxml and the controller never see them and the original outcome stands. pytest-timeout arms
its timer around the protocol hook, which they do not go through, so each carries its own
alarm (the test's pytest-timeout limit, or ``INLINE_BUDGET_S`` scaled by its duration): a test
that failed holding a lock would otherwise wait on it forever. Isolated reruns run
the test alone; for a timeout they raise the limit, so the duration the work needs is measured.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

from ..model import PAYLOAD_ATTR, Attempt, Evidence, TestPayload
from ..outcome import crash_message, fold
from ..roles import INLINE_RERUN
from .runner import ChildTest, Runner

RAISE_FACTOR = 3.0  # timeout reruns get this many times the original limit
_SLACK_S = 30.0  # on top of a subprocess's expected duration before it is killed
INLINE_BUDGET_S = 10.0  # an inline rerun without a pytest-timeout limit gets at least this
_INLINE_FACTOR = 10.0  # ... or this many times the test's own duration


class InlineTimeout(Exception):
    """Raised into an inline rerun that ran past its bound."""


def can_bound_inline() -> bool:
    """Inline reruns are bounded with SIGALRM: only on the main thread of a POSIX process."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def inline_limit(item: pytest.Item, duration_s: float) -> float:
    """pytest-timeout's limit for ``item`` where one is set, the plugin's own budget where not."""
    from ..timeouts import effective

    info = effective(item)
    if info is not None and info.seconds:
        return float(info.seconds)
    return max(INLINE_BUDGET_S, duration_s * _INLINE_FACTOR)


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise InlineTimeout(f"inline rerun stopped after {seconds:g} s (diagnostic bound)")

    previous = signal.signal(signal.SIGALRM, fire)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay:
            signal.setitimer(signal.ITIMER_REAL, old_delay, old_interval)


def inline(item: pytest.Item, limit: float) -> Attempt:
    """Run ``item`` once more in this process, silently, for at most ``limit`` seconds."""
    start = time.perf_counter()
    # What this run leaves behind the plugin started: the scope stops it, whatever the leak
    # mode (a process that ignores SIGTERM would otherwise hold the interpreter's exit).
    item.stash[INLINE_RERUN] = True
    try:
        with _alarm(limit):
            reports = runtestprotocol(item, nextitem=None, log=False)
    except InlineTimeout as error:  # fired between phases, outside the test's own code
        return Attempt("inline", "failed", round(time.perf_counter() - start, 6), str(error),
                       {"duration": time.perf_counter() - start, "timed_out": True})
    finally:
        del item.stash[INLINE_RERUN]
    duration = time.perf_counter() - start
    outcome, message = _outcome(reports)
    evidence = _evidence(reports)
    return Attempt("inline", outcome, round(duration, 6), message,
                   values(evidence, duration, None, None))


def isolated(runner: Runner, nodeid: str, expected_s: float, limit: float | None,
             affected: int, cap: float = float("inf")) -> Attempt:
    """Run ``nodeid`` alone in a fresh pytest subprocess (limit raised for timeouts)."""
    raised = limit * RAISE_FACTOR if limit else None
    budget = (raised or 0.0) + max(expected_s, 1.0) * 3 + _SLACK_S
    run = runner.run([nodeid], timeout=min(budget, cap), raise_limit=raised)
    return _attempt("isolated", run.result(nodeid), limit, raised, affected)


def batched(mode: str, test: ChildTest, limit: float | None, raised: float | None, size: int,
            affected: int) -> Attempt:
    """One test's result from a run of all failures together, without their neighbours."""
    attempt = _attempt(mode, test, limit, raised, affected)
    if size > 1:
        note = f"run with the {size - 1} other failure(s), without the rest of the suite"
        attempt = replace(attempt, message=f"{attempt.message} ({note})"[:500]
                          if attempt.message else note)
    return attempt


def _attempt(mode: str, test: ChildTest, limit: float | None, raised: float | None,
             affected: int) -> Attempt:
    message = test.message
    if affected:
        note = f"possibly affected by {affected} leaked resources from the main run"
        message = f"{message} ({note})" if message else note
    return Attempt(mode, _schema_outcome(test.outcome), round(test.duration_s, 6),
                   message[:500], values(test.evidence, test.duration_s, limit, raised))


def from_child(mode: str, test: ChildTest) -> Attempt:
    return Attempt(mode, _schema_outcome(test.outcome), round(test.duration_s, 6),
                   test.message[:500])


def values(evidence: Evidence | None, duration: float, limit: float | None,
           raised: float | None) -> dict[str, Any]:
    """The numbers measured suggestions are made of."""
    out: dict[str, Any] = {"duration": duration}
    if raised is not None and limit is not None:
        out.update(limit=limit, raised=raised, over_limit=duration > limit)
    comparison = evidence.comparison if evidence is not None else None
    if comparison is not None:
        out.update(op=comparison.op, left=comparison.left_value, right=comparison.right_value)
    if evidence is not None and evidence.timeout is not None and evidence.timeout.fired:
        out["timed_out"] = True
    return out


def _outcome(reports: list[pytest.TestReport]) -> tuple[str, str]:
    outcome, message = "passed", ""
    for report in reports:
        folded = fold(outcome, report)
        if folded != outcome and report.failed:
            message = crash_message(report)[:500]
        outcome = folded
    return outcome, message


def _evidence(reports: list[pytest.TestReport]) -> Evidence | None:
    for report in reports:
        wire = getattr(report, PAYLOAD_ATTR, None)
        if wire:
            return TestPayload.from_wire(wire).evidence
    return None


def _schema_outcome(outcome: str) -> str:
    if outcome in ("xfailed", "xpassed"):
        return "skipped" if outcome == "xfailed" else "passed"
    return outcome if outcome in ("passed", "failed", "error", "skipped") else "failed"
