"""ChaosController: the role played by the process that reports (serial run or xdist controller).

It turns pytest's reports, local or replayed from workers, into one TestRecord per test and
hands the finished session to the reporters. It never looks at live objects of a test: under
xdist it could not.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from .guard import PROBLEMS, guarded
from .model import Category, Diagnosis, Evidence, Leak
from .recorder import PAYLOAD
from .settings import Settings

NEAR_TIMEOUT = 0.8  # share of the timeout a passing test may use before it is listed


@dataclass
class TestRecord:
    """One test as the reports saw it."""

    nodeid: str
    location: tuple[str, int | None, str] | None = None
    outcome: str = "passed"
    when: str | None = None
    duration_s: float = 0.0
    worker: str | None = None
    start: float | None = None
    stop: float | None = None
    timeout_s: float | None = None
    leaks: tuple[Leak, ...] = ()
    evidence: Evidence | None = None
    diagnosis: Diagnosis | None = None
    longrepr: str = ""

    @property
    def near_timeout(self) -> bool:
        return (self.outcome == "passed" and bool(self.timeout_s)
                and self.duration_s > NEAR_TIMEOUT * (self.timeout_s or 0))


@dataclass
class SessionResult:
    """Everything the reporters need, as plain data."""

    records: dict[str, TestRecord]
    args: list[str]
    workers: int
    start: float
    stop: float = 0.0
    exitstatus: int = 0
    problems: list[str] = field(default_factory=list)
    randomly_seed: int | None = None
    #: per failed nodeid: tests that overlapped it in time on other workers, most overlap
    #: first, as (nodeid, worker, overlap seconds). Filled by the timeline at session end.
    alongside: dict[str, list[tuple[str, str | None, float]]] = field(default_factory=dict)
    #: non-daemon threads still alive at session end (they hang interpreter exit), one line
    #: each naming the thread and the test that started it.
    hanging: list[str] = field(default_factory=list)
    #: os.environ as it was before the first test: diagnostic subprocesses start from it, so
    #: variables the tests left behind do not leak into isolated reruns.
    environ: dict[str, str] = field(default_factory=dict)
    #: the chaos spec the tests ran under (seed included), None when chaos was off
    chaos: str | None = None

    @property
    def diagnosed(self) -> list[TestRecord]:
        return [r for r in self.records.values() if r.diagnosis is not None]

    def by_category(self) -> dict[str, int]:
        counts = {category.value: 0 for category in Category}
        for record in self.diagnosed:
            assert record.diagnosis is not None
            counts[record.diagnosis.category.value] += 1
        return counts


class ChaosController:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.session = SessionResult(
            records={},
            args=[str(arg) for arg in config.invocation_params.args],
            workers=_worker_count(config),
            start=time.time(),
            environ=dict(os.environ),
        )

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._collect(report)

    @guarded(None)
    def _collect(self, report: pytest.TestReport) -> None:
        record = self.session.records.get(report.nodeid)
        if record is None:
            record = self.session.records[report.nodeid] = TestRecord(report.nodeid)
        record.location = tuple(report.location)  # type: ignore[assignment]
        record.duration_s += report.duration
        record.worker = getattr(report, "worker_id", None) or record.worker
        _apply_outcome(record, report)
        payload: dict[str, Any] | None = getattr(report, PAYLOAD, None)
        if payload:
            _apply_payload(record, payload)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # Runs before the terminal reporter's summary, so the files exist when it prints.
        result = self.finish(exitstatus)
        self._refine(session, result)
        self._write(result)

    @guarded(None)
    def _refine(self, session: pytest.Session, result: SessionResult) -> None:
        # Reruns and the polluter search refine verdicts; they never change outcomes.
        if not result.diagnosed:
            return  # a green run does not even import them
        from .diagnose import refine

        refine(session, self.settings, result)

    @guarded(None)
    def _write(self, result: SessionResult) -> None:
        from .report import write_files

        write_files(result, self.settings)

    def finish(self, exitstatus: int) -> SessionResult:
        """Close the session's books; called once from pytest_sessionfinish."""
        self.session.stop = time.time()
        self.session.exitstatus = int(exitstatus)
        self.session.problems = list(PROBLEMS)
        self.session.randomly_seed = _randomly_seed(self.config)
        if self.session.diagnosed:
            self.session.alongside = _alongside(self.session.records)
        return self.session


@guarded({})
def _alongside(records: dict[str, TestRecord]) -> dict[str, list[tuple[str, str | None, float]]]:
    from .timeline import alongside

    return alongside(records)


def _apply_outcome(record: TestRecord, report: pytest.TestReport) -> None:
    # The first non-passing phase decides, as in pytest's own summary: a failed setup or
    # teardown is an error, a failed call a failure; xfail/xpass come from the call phase.
    if hasattr(report, "wasxfail"):
        record.outcome = "xfailed" if report.skipped else "xpassed"
        record.when = report.when
    elif report.failed and record.outcome not in ("failed", "error"):
        # pytest's own rule: only setup/teardown failures are errors (a crashed xdist
        # worker's report has when="???" and counts as failed)
        record.outcome = "error" if report.when in ("setup", "teardown") else "failed"
        record.when = report.when
        record.longrepr = _crash_message(report)
    elif report.skipped and record.outcome == "passed":
        record.outcome = "skipped"
        record.when = report.when


def _apply_payload(record: TestRecord, payload: dict[str, Any]) -> None:
    record.start = payload.get("start")
    record.stop = payload.get("stop")
    record.timeout_s = payload.get("timeout_s")
    record.worker = payload.get("worker") or record.worker
    record.leaks = tuple(Leak(**leak) for leak in payload.get("leaks", ()))
    if payload.get("evidence"):
        record.evidence = Evidence.from_json(payload["evidence"])
    if payload.get("diagnosis") and record.outcome in ("failed", "error"):
        record.diagnosis = Diagnosis.from_json(payload["diagnosis"])


def _crash_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(report.longrepr or "")[:2000]


def _worker_count(config: pytest.Config) -> int:
    if hasattr(config, "workerinput") or getattr(config.option, "dist", "no") == "no":
        return 0
    return int(getattr(config.option, "numprocesses", 0) or 0)


def _randomly_seed(config: pytest.Config) -> int | None:
    seed = getattr(config.option, "randomly_seed", None)
    return seed if isinstance(seed, int) else None
