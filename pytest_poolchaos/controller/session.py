"""ChaosController: the role of the process that reports (a serial run or the xdist controller).

It folds pytest's reports, local or replayed from workers, into one TestRecord per test, writes
the run's start and end into the journal, and at the session's end hands the finished
SessionResult to the diagnostic reruns and the reporters. It never looks at a test's live
objects: under xdist it could not.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import pytest

from .. import guard, inherited, journal, roles, timeouts
from ..model import PAYLOAD_ATTR, SessionResult, TestPayload, TestRecord, WorkerSummary
from ..outcome import crash_message, fold
from ..sanitize import redact_args, redact_text, redact_texts, safe_text
from ..settings import Settings

if TYPE_CHECKING:
    from typing import Protocol

    class LocalWorker(Protocol):
        """The recorder of a serial run, which reports to this process directly."""

        def summary(self) -> WorkerSummary: ...


__all__ = ["ChaosController"]

# Bound at import: a test that patches time.time and leaks the patch must not stop the books.
_now = time.time

_OUTCOME = 1  # index of the outcome in a report row
#: set in the environment of the pytest subprocesses of diagnostic reruns (diagnose.child.OUT)
DIAGNOSTIC_CHILD = "POOLCHAOS_DIAGNOSE_OUT"


class ChaosController:
    def __init__(self, config: pytest.Config, settings: Settings,
                 local: LocalWorker | None) -> None:
        self.config = config
        self.settings = settings
        self.local = local
        self.session = SessionResult(
            records={},
            args=redact_args([str(arg) for arg in config.invocation_params.args]),
            workers=_worker_count(config),
            start=_now(),
            environ=dict(os.environ),
        )
        self.session.inherited = inherited.read()
        self.journal: journal.JournalWriter | None = None
        #: nodeid -> (location, outcome, when, duration, start, stop, worker, crash message,
        #: payload) from the reports so far; records are made from it once, at the end
        self._seen: dict[str, tuple[Any, ...]] = {}
        self.plan: journal.JournalPlan | None = None
        self.notice: list[str] = []
        #: nodeid -> failed attempts a retry plugin (pytest-rerunfailures, flaky) reran
        self._retried: dict[str, int] = {}

    # -- the session ------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._open_journal()

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = guard.call_guarded("controller: header",
                                   lambda: [safe_text(line) for line in self.notice])
        return lines or []

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        # Workers append to this run's journal under this run's id.
        with guard.contained("controller: configure worker"):
            if self.plan is not None:
                node.workerinput[journal.WORKERINPUT_KEY] = self.plan.to_wire()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # Before the terminal reporter's summary and junitxml's file: the diagnosis is final
        # and the report files exist when they are written.
        result = self._finish(int(exitstatus)) or self.session
        self._refine(session, result)
        self._remember(result)
        self._junit(result)
        self._write(result)
        if self.journal is not None:
            with guard.contained("journal"):
                self.journal.write("run-end", exitstatus=int(exitstatus))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.journal is not None:
            guard.call_guarded("controller: journal", self.journal.close)

    # -- steps ----------------------------------------------------------------------------

    @guard.guarded(None)
    def _open_journal(self) -> None:
        self.plan = journal.plan(self.config, self.settings.journal)
        if self.plan is None:
            return
        self.notice, noticed = _dead_run_notice(self.plan)
        self.journal = journal.JournalWriter(self.plan.path, self.plan.run, None)
        self.journal.write("run-start", pid=os.getpid(), noticed=noticed,
                           args=redact_texts(self.session.args),
                           timeout=journal.limit_json(timeouts.session_limit(self.config)))
        if self.plan.directory is not None:
            journal.prune(self.plan.directory)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Every report of every test passes here (the hook is its own body: a call less on
        # each). What it says is kept as a tuple of plain values (the garbage collector stops
        # tracking those; thousands of live record objects would make every collection of
        # the run slower) and becomes a TestRecord at the end.
        try:
            extra = report.__dict__
            nodeid = report.nodeid
            row = self._seen.get(nodeid)
            if extra.get("outcome") == "passed" and PAYLOAD_ATTR not in extra and \
                    "wasxfail" not in extra:
                # The common report, a passing phase with nothing attached: it starts the
                # row, or adds its time to it.
                self._seen[nodeid] = (
                    (report.location, "passed", report.when, report.duration,
                     extra.get("start") or None, extra.get("stop") or None,
                     extra.get("worker_id"), "", None) if row is None else
                    (row[0], row[1], row[2], row[3] + report.duration, row[4],
                     extra.get("stop") or row[5], row[6], row[7], row[8]))
                return
            # pytest-rerunfailures marks a failed attempt it retries with outcome "rerun"
            if str(report.outcome) == "rerun":
                self._retried[nodeid] = self._retried.get(nodeid, 0) + 1
            outcome = fold(row[_OUTCOME] if row else "passed", report)
            if row is None:
                row = (report.location, outcome, report.when, report.duration,
                       extra.get("start") or None, extra.get("stop") or None,
                       extra.get("worker_id"), "", None)
            else:
                changed = outcome != row[_OUTCOME]
                row = (row[0], outcome, report.when if changed else row[2],
                       row[3] + report.duration, row[4], extra.get("stop") or row[5], row[6],
                       row[7], row[8])
            if report.failed and not row[7]:
                row = (*row[:7], crash_message(report), row[8])
            wire = extra.get(PAYLOAD_ATTR)
            if wire:
                row = (*row[:8], wire)
            self._seen[nodeid] = row
        except Exception as error:
            guard.record("controller: report", error)

    def _records(self) -> None:
        records = self.session.records
        for nodeid, row in self._seen.items():
            if nodeid in records:  # made already (a hunt's own records)
                continue
            location, outcome, when, duration, start, stop, worker, longrepr, wire = row
            record = records[nodeid] = TestRecord(
                nodeid, location, outcome, when, duration, worker, start, stop,
                longrepr=longrepr)
            if wire:
                record.take(TestPayload.from_wire(wire))
                if nodeid in self._retried:
                    _retried(record, TestPayload.from_wire(wire), self._retried[nodeid])
        self._seen.clear()

    @guard.guarded(None)
    def _refine(self, session: pytest.Session, result: SessionResult) -> None:
        # Reruns and the polluter search refine verdicts; they never change outcomes.
        if not result.diagnosed:
            return  # a green run does not even import them
        from ..diagnose import refine

        line = refine(session, self.settings, result) if any(
            r.outcome in ("failed", "error") for r in result.diagnosed) else None
        retried = [r.nodeid for r in result.diagnosed if r.outcome == "passed"]
        if retried:
            shown = ", ".join(retried[:3]) + (" ..." if len(retried) > 3 else "")
            line = "\n".join(filter(None, [line, f"poolchaos: {len(retried)} test(s) passed "
                                              f"only on retry, flaky: {shown}"]))
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if line and reporter is not None:
            # Right under pytest's progress, before its summary: the reruns happened there.
            if getattr(getattr(reporter, "_tw", None), "width_of_current_line", 0):
                reporter.write("\n")
            for text in line.splitlines():
                reporter.write_line(redact_text(text))

    @guard.guarded(None)
    def _remember(self, result: SessionResult) -> None:
        # After the reruns (their verdicts are recorded), before the reports (they show it).
        # A diagnostic rerun is no run of the suite: it must not count in the history.
        if self.settings.history is not None and not os.environ.get(DIAGNOSTIC_CHILD):
            from ..history.session import remember

            remember(self.config, self.settings.history, result)

    @guard.guarded(None)
    def _junit(self, result: SessionResult) -> None:
        # Reruns and history may have changed verdicts since teardown attached the properties.
        if result.diagnosed and getattr(self.config.option, "xmlpath", None):
            from ..report.junit import refresh

            refresh(self.config, result)

    @guard.guarded(None)
    def _write(self, result: SessionResult) -> None:
        if os.environ.get(DIAGNOSTIC_CHILD):
            return  # a diagnostic rerun: its parent reads the child plugin's lines, no report
        from ..report import write_files

        result.problems = list(dict.fromkeys([*result.problems, *guard.PROBLEMS]))
        write_files(result, self.settings)

    @guard.guarded(None)
    def _finish(self, exitstatus: int) -> SessionResult:
        # The reporters still draw what the session holds when closing the books failed.
        return self.finish(exitstatus)

    def finish(self, exitstatus: int) -> SessionResult:
        """Close the session's books; called once from pytest_sessionfinish."""
        self._records()
        self.session.stop = _now()
        self.session.exitstatus = exitstatus
        if self.local is not None:
            self.session.hanging.extend(self.local.summary().hanging)
        self.session.problems = list(dict.fromkeys([*self.session.problems, *guard.PROBLEMS]))
        self.session.randomly_seed = _randomly_seed(self.config)
        if self.session.diagnosed:
            self.session.alongside = _alongside(self.session.records)
        return self.session


@guard.guarded(None)
def _retried(record: TestRecord, payload: TestPayload, failed: int) -> None:
    """Every failed attempt of a retried test is evidence: one that passed on retry is flaky
    (its failed attempt's diagnosis stands, with that verdict); one that still fails keeps
    the diagnosis of its last attempt and says how many attempts failed."""
    diagnosis = record.diagnosis or payload.diagnosis
    if diagnosis is None:
        return
    from ..model import Verdict

    attempts = failed + 1
    if record.outcome in ("failed", "error"):
        line = f"failed all {attempts} attempts under the retry plugin (reruns={failed})"
        record.diagnosis = diagnosis.evolve(reasons=(*diagnosis.reasons, line))
        return
    if record.outcome != "passed":
        return
    line = (f"passed on retry: failed {failed} of {attempts} attempts under the retry plugin "
            f"(pytest reports it passed)")
    record.diagnosis = diagnosis.evolve(verdict=Verdict.FLAKY, reruns=attempts,
                                        pass_rate=round(1 / attempts, 3),
                                        reasons=(line, *diagnosis.reasons))


@guard.guarded(([], None))
def _dead_run_notice(plan: journal.JournalPlan) -> tuple[list[str], str | None]:
    """A header naming the test an earlier run died in, when it died without a report, and
    that run's id (this run's start records it, so the next run does not say it again)."""
    paths = [plan.path] if plan.directory is None else journal.recent_files(plan.directory,
                                                                           besides=plan.path)
    found = journal.dead_run(paths, plan.run)
    if found is None:
        return [], None
    previous, run, event = found
    head = "poolchaos: the previous run did not finish (no report was written)"
    if event is None:
        return [f"{head}; it died between tests"], run.run
    from ..postmortem import unfinished_record

    record = unfinished_record(run, event)
    assert record.diagnosis is not None
    return [f"{head}: {record.diagnosis.category.value} in {record.nodeid}",
            f"  {record.diagnosis.reasons[0]}",
            f"  details: poolchaos report --journal {previous} --run {run.run[:12]}"], run.run


@guard.guarded({})
def _alongside(records: dict[str, TestRecord]) -> dict[str, list[tuple[str, str | None, float]]]:
    from ..report.timeline import alongside

    return alongside(records)


def _worker_count(config: pytest.Config) -> int:
    if roles.runs_tests(config):
        return 0
    return int(getattr(config.option, "numprocesses", 0) or 0)


def _randomly_seed(config: pytest.Config) -> int | None:
    seed = getattr(config.option, "randomly_seed", None)
    return seed if isinstance(seed, int) else None
