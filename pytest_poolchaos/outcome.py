"""How pytest's per-phase reports fold into one outcome, counted the way pytest's summary counts.

Imports nothing of the package, so diagnostic subprocesses load it for next to nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FAILED", "crash_message", "fold"]

FAILED = ("failed", "error")
_MESSAGE_LIMIT = 2000


def fold(outcome: str, report: Any) -> str:
    """The test's outcome after one more phase report, starting from ``"passed"``.

    The first non-passing phase decides: a failed setup or teardown is an error, a failed call
    a failure (a crashed xdist worker's report has ``when="???"`` and counts as failed);
    xfail and xpass come from the phase that carried ``wasxfail``.
    """
    phase = report.outcome
    if "wasxfail" in report.__dict__:
        return "xfailed" if phase == "skipped" else "xpassed"
    if phase == "passed":
        return outcome
    if phase == "failed" and outcome not in FAILED:
        return "error" if report.when in ("setup", "teardown") else "failed"
    if phase == "skipped" and outcome == "passed":
        return "skipped"
    return outcome


def crash_message(report: Any) -> str:
    """The one message pytest shows for a failed report."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(report.longrepr or "")[:_MESSAGE_LIMIT]
