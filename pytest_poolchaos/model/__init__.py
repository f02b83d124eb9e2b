"""Plain value types shared by every part of the plugin, and the only place that knows their
wire shape.

Everything here turns into builtins through ``to_json``/``to_wire`` and back through
``from_json``/``from_wire``: those dicts are what travels inside pytest reports under
pytest-xdist, what diagnostic subprocesses hand back, and what the JSON report is built from.
Every role (worker, controller, classify, diagnose, report) depends on the model and on nothing
of each other's.

* ``session``: the per-test payload, the per-test record, the session's result and a worker's
  summary, which every run needs from its first test;
* ``timeout``: the pytest-timeout limit of a test, loaded by the first test that has one;
* ``values``: what a diagnosis is made of (evidence, findings, diagnoses), loaded on first use,
  so a green run never pays for defining them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .session import NEAR_TIMEOUT, SessionResult, TestPayload, TestRecord, WorkerSummary

if TYPE_CHECKING:
    from .timeout import TimeoutInfo
    from .values import (
        STABLE_ALONE,
        Attempt,
        Category,
        Comparison,
        CrashFacts,
        Diagnosis,
        Evidence,
        ExceptionRecord,
        Finding,
        FrameFact,
        Leak,
        LedgerEntry,
        RerunFacts,
        Rule,
        RuleScore,
        Suggestion,
        Verdict,
        Worker,
        describe_change,
    )

__all__ = [
    "NEAR_TIMEOUT",
    "PAYLOAD_ATTR",
    "STABLE_ALONE",
    "SUMMARY_KEY",
    "Attempt",
    "Category",
    "Comparison",
    "CrashFacts",
    "Diagnosis",
    "Evidence",
    "ExceptionRecord",
    "Finding",
    "FrameFact",
    "Leak",
    "LedgerEntry",
    "RerunFacts",
    "Rule",
    "RuleScore",
    "SessionResult",
    "Suggestion",
    "TestPayload",
    "TestRecord",
    "TimeoutInfo",
    "Verdict",
    "Worker",
    "WorkerSummary",
    "describe_change",
]

#: Attribute of a teardown ``TestReport`` carrying a ``TestPayload`` as builtins; pytest-xdist
#: serialises extra report attributes, so it reaches the controller unchanged.
PAYLOAD_ATTR = "poolchaos"
#: Key of a worker's ``WorkerSummary`` in pytest-xdist's ``workeroutput``.
SUMMARY_KEY = "poolchaos"


def __getattr__(name: str) -> Any:
    if name == "TimeoutInfo":
        from .timeout import TimeoutInfo

        return TimeoutInfo
    if name in __all__:
        from . import values

        return getattr(values, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
