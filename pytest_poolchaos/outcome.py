"""How pytest's per-phase reports fold into one outcome, counted the way pytest's summary counts.

Imports nothing of the package, so diagnostic subprocesses load it for next to nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FAILED", "crash_message", "failure_kind", "fold"]

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


def failure_kind(message: str) -> str | None:
    """The exception class a crash message names: ``OSError`` of "OSError: could not get
    source code", ``RemoteError`` of "execnet.gateway_base.RemoteError: ...",
    ``AssertionError`` of a rewritten "assert 5 >= 10"; None when it names no class (a
    crashed worker's "node down", a collection error's location)."""
    line = message.lstrip().split("\n", 1)[0]
    if line == "assert" or line.startswith("assert "):
        return "AssertionError"  # pytest drops the class name of its own rewritten asserts
    name = line.split(":", 1)[0].strip()
    if not name or not all(part.isidentifier() for part in name.split(".")):
        return None
    last = name.rsplit(".", 1)[-1]
    return last if last[:1].isupper() else None
