"""A run's report rebuilt from its journal, for a run that died before it could write one.

Used by ``poolchaos report`` and by the next run's header. The test that was running when its
process died gets Evidence that says so (``CrashFacts``, the timeout in effect) and goes
through the same rules as every other failure.
"""

from __future__ import annotations

from typing import Any

from .classify.offline import diagnose
from .journal import Run, timeout_of
from .model import CrashFacts, Diagnosis, Evidence, SessionResult, TestRecord, TimeoutInfo

__all__ = ["KILLED_STATUS", "build_result", "crash_evidence", "unfinished_record"]

KILLED_STATUS = 1  # what os._exit(1) from pytest-timeout leaves; any death is a failed run


def build_result(run: Run) -> SessionResult:
    """The run as the controller would have reported it, plus the tests that never ended."""
    start = run.start or {}
    args = start.get("args")
    result = SessionResult(records={},
                           args=[str(a) for a in args] if isinstance(args, list) else [],
                           workers=len({worker for worker in run.sessions if worker}),
                           start=_number(start.get("time")))
    dead = {str(event.get("nodeid")) for event in run.unfinished_tests()}
    for nodeid, event in run.started.items():
        if nodeid not in dead:
            result.records[nodeid] = _finished(run, nodeid, event)
    for event in run.unfinished_tests():
        record = unfinished_record(run, event)
        result.records[record.nodeid] = record
    result.stop = _number(run.end.get("time")) if run.end else run.last_time
    result.exitstatus = _status(run.end.get("exitstatus")) if run.end else KILLED_STATUS
    return result


def _finished(run: Run, nodeid: str, started: dict[str, Any]) -> TestRecord:
    result = run.results.get(nodeid) or {}
    diagnosis = result.get("diagnosis")
    begin = _number(started.get("time"))
    end = run.finished_at.get(nodeid) or _number(result.get("time")) or begin
    return TestRecord(
        nodeid=nodeid,
        outcome=run.outcome(nodeid),
        duration_s=max(0.0, end - begin),
        worker=started.get("worker"),
        start=begin or None,
        stop=end or None,
        timeout_s=_limit(run, started),
        diagnosis=_diagnosis(diagnosis),
    )


def _limit(run: Run, started: dict[str, Any]) -> float | None:
    limit = timeout_of(run, started)
    return limit.seconds if limit is not None else None


def _diagnosis(data: Any) -> Diagnosis | None:
    if not isinstance(data, dict):
        return None
    try:
        return Diagnosis.from_json(data)
    except (KeyError, TypeError, ValueError):  # a journal from another version, or damaged
        return None


def unfinished_record(run: Run, event: dict[str, Any]) -> TestRecord:
    """The test that was running when its process died, diagnosed."""
    worker = event.get("worker")
    how = f"worker '{worker}' ended" if worker else "the pytest process ended"
    began = _number(event.get("time"))
    # When the process died is not written anywhere: only that it had started this test.
    evidence = crash_evidence(str(event.get("nodeid")), how, None, timeout_of(run, event),
                              worker, exit_code=None)
    return TestRecord(
        nodeid=evidence.nodeid,
        outcome="failed",
        worker=worker,
        start=began or None,
        timeout_s=evidence.timeout.seconds if evidence.timeout else None,
        duration_s=max(0.0, run.last_time - began) if began else 0.0,
        evidence=evidence,
        diagnosis=diagnose(evidence),
        longrepr="the process died while this test was running",
    )


def crash_evidence(nodeid: str, how: str, ran_s: float | None, timeout: TimeoutInfo | None,
                   worker: str | None, exit_code: int | None) -> Evidence:
    """Evidence for a test whose process died under it."""
    return Evidence(nodeid=nodeid, when="call", message=how, timeout=timeout,
                    duration_s=ran_s or 0.0, worker=worker,
                    crash=CrashFacts(how, exit_code, ran_s, worker))


def _status(value: Any) -> int:
    # A journal edited by hand or by another version: a status that is no number is unknown.
    return value if isinstance(value, int) and not isinstance(value, bool) else KILLED_STATUS


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
