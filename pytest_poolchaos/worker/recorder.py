"""ScopeRecorder: the role of every process that runs tests (a serial run or an xdist worker).

One step per test: the pool scope opens before setup; each phase's report labels what starts
in the next phase and, for the first failure, gathers Evidence from the live exception; the
scope closes after teardown; the teardown report carries a ``TestPayload`` (leaks, the timeout,
and for a failure its Evidence and Diagnosis) to whoever reports. A passing test that left
nothing behind carries nothing. Nothing here prints or writes report files.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from .. import clock, guard, journal, roles, sanitize, timeouts
from ..model import PAYLOAD_ATTR, SUMMARY_KEY, TestPayload, WorkerSummary
from ..outcome import fold
from ..settings import Settings
from . import surroundings
from .exit_guard import ExitGuard
from .failure_moment import FailureMoment
from .scope import PoolScope, ScopeResult
from .scope.spawn import LINGER_S, SETTLE_S

if TYPE_CHECKING:
    from ..model import Diagnosis, Evidence, TimeoutInfo, Worker
    from .evidence import ComparisonSlot
    from .scope.spawn import SpawnLog

__all__ = ["LeakError", "ScopeRecorder"]

class _Phase:
    """Stands in for the spawn log of a test whose scope did not open."""

    __slots__ = ("phase",)
    phase: str


#: shared by every such test: its phase is written, never read
_NO_LOG = _Phase()


class _Running:
    """What the recorder knows about the test in progress."""

    __slots__ = ("began", "call_s", "closed", "duration_s", "evidence", "item", "limit", "log",
                 "outcome")

    def __init__(self, item: pytest.Item, limit: TimeoutInfo | None) -> None:
        self.item = item
        self.limit = limit  # the pytest-timeout limit in effect, read once
        self.began = clock.monotonic()  # about when pytest-timeout's timer started
        #: the test's spawn log: its phase labels what starts from then on
        self.log: SpawnLog | _Phase = _NO_LOG
        self.outcome = "passed"
        self.call_s = 0.0
        self.duration_s = 0.0
        self.evidence: Evidence | None = None
        self.closed: ScopeResult | None = None


class _AfterTimer:
    """Finishes a cleanup that had to wait for pytest-timeout's timer to be off."""

    def __init__(self, scope: PoolScope) -> None:
        self.scope = scope

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        # tryfirst: outside pytest-timeout's wrapper, so its timer is off when cleanup waits.
        try:
            return (yield)
        finally:
            if self.scope.pending is not None:
                with guard.contained("recorder: cleanup"):
                    self.scope.finish_cleanup()

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        # pytest-timeout's signal method prints its stack dump through the terminal writer to
        # the real stdout: buffered (no PYTHONUNBUFFERED), it reached the captured output,
        # where the evidence reads it, only if something flushed it first. trylast: inside
        # the capture plugin's wrapper, so this runs before it reads the output.
        try:
            return (yield)
        finally:
            try:
                item.config.get_terminal_writer().flush()
            except Exception as error:
                guard.record("recorder: flush the timeout's dump", error)


class LeakError(AssertionError):
    """Raised at teardown with --poolchaos-leaks=fail when a test left resources behind."""


class ScopeRecorder:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.scope = PoolScope(config, settings)
        self.worker = roles.worker_id(config)
        #: the failed comparison of the running test; made on the first failed assert
        self.comparisons: ComparisonSlot | None = None
        #: the test's workers as they were when its assert failed
        self.moment = FailureMoment(self._workers_now)
        self.exit_guard = ExitGuard(settings.exit_timeout)
        self.journal: journal.JournalWriter | None = None
        self._summary: WorkerSummary | None = None
        self._running: _Running | None = None
        #: some test may run under a pytest-timeout limit (known once collection is done)
        self._limits = True
        self.session: pytest.Session | None = None

    # -- the session ------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session
        self._start()

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._finish()

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._stop()

    def _start(self) -> None:
        # Each step on its own: a fault in one leaves the others working.
        guard.call_guarded("recorder: environ", sanitize.watch_environ)
        guard.call_guarded("recorder: install", self.scope.install)
        guard.call_guarded("recorder: failure moment", self.moment.install)
        guard.call_guarded("recorder: exit guard", self.exit_guard.start)
        guard.call_guarded("recorder: surroundings", surroundings.prime)
        guard.call_guarded("recorder: journal", self._open_journal)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not session.items or self.config.option.collectonly:
            return
        guard.call_guarded("recorder: probes", self.scope.prepare)
        guard.call_guarded("recorder: after-timer", lambda: self._after_timer(session.items))

    def _after_timer(self, items: list[pytest.Item]) -> None:
        # Only a pytest-timeout timer makes cleanup wait for later: the wrapper that does the
        # waiting costs every test a call, so it is there only when some test has a limit,
        # and no test asks for its limit when none has one.
        manager = self.config.pluginmanager
        self._limits = manager.has_plugin("timeout") and (
            timeouts.session_limit(self.config) is not None or any(map(timeouts.marked, items)))
        if self._limits and not manager.has_plugin("poolchaos-after-timer"):
            manager.register(_AfterTimer(self.scope), "poolchaos-after-timer")

    def _open_journal(self) -> None:
        found = journal.plan(self.config, self.settings.journal)
        if found is not None:
            self.journal = journal.JournalWriter(found.path, found.run, self.worker)
            limit = timeouts.session_limit(self.config)
            self.journal.write("session-start", pid=os.getpid(), timeout=journal.limit_json(limit))

    def summary(self) -> WorkerSummary:
        """This process's summary, made once when the session finishes (whichever of this
        recorder and a local controller asks first)."""
        if self._summary is None:
            self._summary = WorkerSummary(list(guard.PROBLEMS), self.exit_guard.hanging_lines())
        return self._summary

    @guard.guarded(None)
    def _finish(self) -> None:
        summary = self.summary()
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[SUMMARY_KEY] = summary.to_wire()
        if self.journal is not None:
            status = self.session.exitstatus if self.session is not None else 0
            self.journal.write("session-end", exitstatus=int(status))

    def _stop(self) -> None:
        with guard.contained("recorder unconfigure"):
            self.scope.finish_cleanup()  # should the last test's still be waiting
            self.scope.uninstall()
            self.moment.uninstall()
            sanitize.unwatch_environ()
        with guard.contained("exit guard"):
            # The status pytest exits with, after every sessionfinish had its say.
            status = self.session.exitstatus if self.session is not None else 0
            self.exit_guard.arm(int(status))
        if self.journal is not None:
            guard.call_guarded("recorder: journal", self.journal.close)

    # -- one test: setup, each phase's report, teardown --------------------------------------
    # This runs for every test of every suite: the state of the running test is kept here (one
    # test runs at a time in a process), and errors are caught inline rather than through
    # decorators, because a passing test must cost next to nothing.

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        try:
            self._open(item)
        except Exception as error:
            guard.record("recorder: open", error)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        # tryfirst makes this the outermost wrapper: it sees the report as pytest logs it
        # (xfail marks included), before xdist serialises it.
        report = yield
        running = self._running
        if running is None or running.item is not item:
            return report
        # A passing setup or call (nearly every report of a run) costs the attribute reads
        # below and no call: the rest of the per-test work is in _not_passed and _ended.
        try:
            if report.outcome != "passed" or "wasxfail" in report.__dict__:
                self._not_passed(running, call, report)
            running.duration_s += report.duration
            when = report.when
            if when == "setup":
                running.log.phase = "call"  # what starts from now on is the call's
            elif when == "call":
                running.call_s = report.duration
                running.log.phase = "teardown"
            else:
                self._ended(running, report)
        except Exception as error:
            guard.record("recorder: report", error)
        return report

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        # trylast: after pytest's own teardown ran every fixture finaliser.
        running = self._running
        if running is None or running.item is not item:
            return
        try:
            running.closed = self._close(running)
        except Exception as error:
            guard.record("recorder: close", error)
            return
        if running.closed is not None and running.closed.fail_message:
            raise LeakError(running.closed.fail_message)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_fixture_setup(self, fixturedef: Any) -> Generator[None, object, object]:
        # Called only for a fixture that runs (pytest's cache answers the rest): what a wider
        # one changes while it sets up is told apart from the test's own changes.
        try:
            before = self.scope.fixture_setup(fixturedef)
        except Exception as error:
            guard.record("recorder: fixture setup", error)
            before = None
        try:
            return (yield)
        finally:
            if before is not None:
                try:
                    self.scope.fixture_done(before)
                except Exception as error:
                    guard.record("recorder: fixture setup", error)

    def pytest_assertrepr_compare(self, op: str, left: object, right: object) -> None:
        # Inside the test's own failing assert: a plugin bug must not become its error.
        with guard.contained("assertion operands"):
            if self.comparisons is None:
                from .evidence import ComparisonSlot

                self.comparisons = ComparisonSlot()
            self.comparisons.record(op, left, right)

    @pytest.hookimpl(wrapper=True, optionalhook=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any
                                 ) -> Generator[None, object, object]:
        try:
            timeouts.remember(item, settings)
        except Exception as error:
            guard.record("pytest-timeout settings", error)
        return (yield)

    # -- steps ----------------------------------------------------------------------------

    def _open(self, item: pytest.Item) -> None:
        limit = timeouts.effective(item) if self._limits else None
        self._running = _Running(item, limit)
        if self.comparisons is not None:
            self.comparisons.clear()
        self.moment.last = None
        log = self.scope.open(item)
        if log is not None:
            self._running.log = log
        if self.journal is not None:
            self.journal.test_start(item.nodeid, limit)

    def _not_passed(self, running: _Running, call: pytest.CallInfo[None],
                    report: pytest.TestReport) -> None:
        """A phase that failed or skipped, or an xfail: the test's outcome, and for its first
        failure the Evidence, gathered while the exception is live."""
        running.outcome = fold(running.outcome, report)
        if report.outcome == "failed" and running.evidence is None and \
                call.excinfo is not None and "wasxfail" not in report.__dict__:
            running.evidence = self._evidence(running.item, call, report)

    def _close(self, running: _Running) -> ScopeResult | None:
        defer, settle = _cleanup_bounds(running)
        return self.scope.close(running.item, defer=defer, settle=settle)

    def _ended(self, running: _Running, report: pytest.TestReport) -> None:
        """The teardown's report: the test is over; a payload goes on the report when there
        is something to carry."""
        self._running = None
        closed = running.closed
        if closed is None:  # a fixture's teardown raised before ours ran
            closed = running.closed = self._close(running)
        if running.evidence is None and (closed is None or not closed.leaks) and (
                running.limit is None or not running.limit.seconds):
            return  # passed (or skipped) and left nothing: there is nothing to carry
        payload = self._payload(running)
        if payload:
            setattr(report, PAYLOAD_ATTR, payload.to_wire())
            self._after(running, payload)

    def _evidence(self, item: pytest.Item, call: pytest.CallInfo[None],
                  report: pytest.TestReport) -> Evidence | None:
        from . import evidence

        gathered = evidence.from_call(item, call, report, self.comparisons, self.scope,
                                      worker=self.worker, moment=self.moment)
        if self.settings.chaos is not None:
            from ..model import Worker

            # The injected noise is concurrency too: the test failed with it running.
            noise = Worker("noise", self.settings.chaos.describe(), "busy")
            gathered = replace(gathered, workers=(*gathered.workers, noise))
        return surroundings.enrich(gathered, report) or gathered

    def _workers_now(self) -> tuple[Worker, ...]:
        from .frames import workers

        return workers(self.scope.started(), self.scope.ended())

    def _payload(self, running: _Running) -> TestPayload:
        closed = running.closed
        leaks = closed.leaks if closed is not None else ()
        limit = running.limit
        evidence, diagnosis = running.evidence, None
        if evidence is not None:
            from .evidence import seen_warnings

            evidence = replace(
                evidence,
                leaks=leaks,
                duration_s=running.duration_s,
                call_duration_s=running.call_s,
                spawned=closed.spawned if closed is not None else evidence.spawned,
                mocked=closed.mocked if closed is not None else evidence.mocked,
                # teardown may have turned more thread/unraisable exceptions into warnings
                warnings=seen_warnings(closed.died_elsewhere if closed is not None
                                       else frozenset()) or evidence.warnings,
            )
            diagnosis = self.diagnose(evidence)
        return TestPayload(leaks, limit.seconds if limit else None, evidence, diagnosis)

    def _after(self, running: _Running, payload: TestPayload) -> None:
        nodeid = running.item.nodeid
        if self.journal is not None and (running.outcome != "passed" or payload.leaks):
            self.journal.write("test-result", nodeid=nodeid, outcome=running.outcome,
                               diagnosis=payload.diagnosis.to_json() if payload.diagnosis
                               else None)
        if any(leak.kind in ("thread", "pool") for leak in payload.leaks):
            self.exit_guard.attribute(nodeid)

    def diagnose(self, evidence: Evidence) -> Diagnosis:
        from ..classify import classify

        diagnosis = classify(self.config, evidence, self.settings)
        with guard.contained("pytest_poolchaos_diagnosis"):
            self.config.hook.pytest_poolchaos_diagnosis(nodeid=evidence.nodeid,
                                                        diagnosis=diagnosis)
        return diagnosis


def _cleanup_bounds(running: _Running) -> tuple[bool, float]:
    """(defer, settle) for closing the test's scope.

    pytest-timeout's timer still runs during teardown (it spans the whole test unless
    ``func_only``): cleanup must not wait inside it, so it is deferred, and what the test
    started may take only what leaves most of the remaining time untouched to end on its
    own. With no timer running, nothing is deferred and the full linger applies.
    """
    limit = running.limit
    if limit is None or not limit.seconds or limit.func_only:
        return False, LINGER_S
    left = float(limit.seconds) - (clock.monotonic() - running.began)
    return True, max(SETTLE_S, min(LINGER_S, (left - 0.5) / 2))
