"""Diagnostic reruns: inline (this process, after the session) and isolated (a subprocess each).

Inline reruns call the run protocol without logging, so they produce no reports: the terminal,
junitxml and the controller never see them and the original outcome stands. Isolated reruns run
the test alone; for a timeout they raise the limit, so the duration the work needs is measured.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

from ..model import PAYLOAD_ATTR, Attempt, Evidence, TestPayload
from ..outcome import crash_message, fold
from .runner import ChildTest, Runner

RAISE_FACTOR = 3.0  # timeout reruns get this many times the original limit
_SLACK_S = 30.0  # on top of a subprocess's expected duration before it is killed


def inline(item: pytest.Item) -> Attempt:
    """Run ``item`` once more in this process, silently."""
    start = time.perf_counter()
    reports = runtestprotocol(item, nextitem=None, log=False)
    duration = time.perf_counter() - start
    outcome, message = _outcome(reports)
    evidence = _evidence(reports)
    return Attempt("inline", outcome, round(duration, 6), message,
                   values(evidence, duration, None, None))


def isolated(runner: Runner, nodeid: str, expected_s: float, limit: float | None,
             affected: int) -> Attempt:
    """Run ``nodeid`` alone in a fresh pytest subprocess (limit raised for timeouts)."""
    raised = limit * RAISE_FACTOR if limit else None
    budget = (raised or 0.0) + max(expected_s, 1.0) * 3 + _SLACK_S
    run = runner.run([nodeid], timeout=budget, raise_limit=raised)
    test = run.result(nodeid)
    message = test.message
    if affected:
        note = f"possibly affected by {affected} leaked resources from the main run"
        message = f"{message} ({note})" if message else note
    return Attempt("isolated", _schema_outcome(test.outcome), round(test.duration_s, 6),
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
