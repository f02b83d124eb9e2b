"""ScopeRecorder: the role played by every process that runs tests (serial run or xdist worker).

It opens a pool scope around each test, gathers Evidence when a phase fails, classifies after
teardown (when the test's own leaks are known) and attaches one JSON-safe payload to the
teardown report. Nothing here prints or writes files: that is the controller's job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from . import evidence as evidence_mod
from . import surroundings
from .classify import classify
from .guard import guarded
from .model import Diagnosis, Evidence, Leak
from .scope import ScopeManager, ScopeResult
from .settings import Settings

PAYLOAD = "poolchaos"  # attribute name on TestReport; survives xdist serialisation


@dataclass
class TestState:
    """What the recorder knows about the test in progress."""

    start: float
    evidence: Evidence | None = None
    durations: dict[str, float] = field(default_factory=dict)
    outcome: str = "passed"
    when: str | None = None

    def saw(self, report: pytest.TestReport) -> None:
        self.durations[report.when] = report.duration
        if report.failed and self.outcome not in ("failed", "error"):
            self.outcome = "failed" if report.when == "call" else "error"
            self.when = report.when
        elif report.skipped and self.outcome == "passed":
            self.outcome, self.when = "skipped", report.when


STATE = pytest.StashKey[TestState]()


class LeakError(AssertionError):
    """Raised at teardown with --poolchaos-leaks=fail when a test left resources behind."""


class ScopeRecorder:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.scope = ScopeManager(config, settings)
        self.worker: str | None = getattr(config, "workerinput", {}).get("workerid")
        self.comparisons = evidence_mod.ComparisonSlot()
        self._item: pytest.Item | None = None
        self._raised: pytest.CallInfo[None] | None = None
        self.journal: Any = None
        self.exit_guard: Any = None
        # --junitxml: the diagnosis rides on the teardown report's user_properties
        self.junit = bool(getattr(config.option, "xmlpath", None))

    # -- lifetime ---------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.scope.install()
        manager = self.config.pluginmanager
        self.journal = manager.get_plugin("poolchaos-journal")
        self.exit_guard = manager.get_plugin("poolchaos-exit-guard")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.scope.uninstall()

    # -- one test ---------------------------------------------------------------------------
    # Plain hook implementations, not wrappers, and no makereport hook: this runs for every
    # test of every suite, and a passing test must cost next to nothing.

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self._open(item)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        self._after_setup(item)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        # trylast: after pytest's own teardown ran every fixture finaliser.
        closed = self._close(item)
        if closed is not None and closed.fail_message:
            raise LeakError(closed.fail_message)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> None:
        # Only remembers the live exception (the evidence needs it, the report has only
        # text); returning None leaves making the report to pytest.
        if call.excinfo is not None:
            self._raised = call

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # tryfirst: the payload must be on the report before xdist serialises it.
        item = self._item
        if item is not None and item.nodeid == report.nodeid:
            self._observe(item, report)

    def pytest_assertrepr_compare(self, op: str, left: object, right: object) -> None:
        self.comparisons.record(op, left, right)

    # -- steps (each guarded: a plugin bug never changes a test's outcome) ------------------

    @guarded(None)
    def _open(self, item: pytest.Item) -> None:
        self._item = item
        item.stash[STATE] = TestState(start=time.time())
        self.comparisons.clear()
        self.scope.open(item)
        if self.journal is not None:
            self.journal.test_start(item)

    @guarded(None)
    def _after_setup(self, item: pytest.Item) -> None:
        self.scope.after_setup(item)

    @guarded(None)
    def _close(self, item: pytest.Item) -> ScopeResult | None:
        return self.scope.close(item)

    @guarded(None)
    def _evidence(self, item: pytest.Item, call: pytest.CallInfo[None],
                  report: pytest.TestReport) -> None:
        state = item.stash.get(STATE, None)
        if state is None or state.evidence is not None:
            return
        evidence = evidence_mod.from_call(item, call, report, self.comparisons, self.scope,
                                          worker=self.worker)
        state.evidence = surroundings.enrich(evidence, report) or evidence

    @guarded(None)
    def _observe(self, item: pytest.Item, report: pytest.TestReport) -> None:
        state = item.stash.get(STATE, None)
        if state is None:
            return
        state.saw(report)
        raised, self._raised = self._raised, None
        if report.failed and raised is not None and not hasattr(report, "wasxfail"):
            self._evidence(item, raised, report)
        if report.when != "teardown":
            return
        self._item = None
        if self.scope.result(item) is None:  # a fixture's teardown raised before ours ran
            self._close(item)
        payload = self._payload(item, state)
        setattr(report, PAYLOAD, payload)
        if self.junit:
            self._junit(report, payload)
        if self.journal is not None:
            self.journal.test_result(report, payload)
        if self.exit_guard is not None and any(
                leak["kind"] in ("thread", "pool") for leak in payload["leaks"]):
            self.exit_guard.attribute(report.nodeid)

    @guarded(None)
    def _junit(self, report: pytest.TestReport, payload: dict[str, Any]) -> None:
        from .report.junit import properties

        report.user_properties.extend(properties(payload["diagnosis"], payload["leaks"]))

    def _payload(self, item: pytest.Item, state: TestState) -> dict[str, Any]:
        result = self.scope.result(item)
        leaks = result.leaks if result else ()
        diagnosis = None
        evidence = state.evidence
        if evidence is not None:
            evidence = self._finish(item, evidence, state, leaks, result)
            diagnosis = self.diagnose(evidence)
        timeout = evidence_mod.timeout_info(item)
        return {
            "start": state.start,
            "outcome": state.outcome,
            "when": state.when,
            "stop": time.time(),
            "worker": self.worker,
            "leaks": [leak.to_json() for leak in leaks],
            "timeout_s": timeout.seconds if timeout else None,
            "evidence": evidence.to_json() if evidence else None,
            "diagnosis": diagnosis.to_json() if diagnosis else None,
        }

    def _finish(self, item: pytest.Item, evidence: Evidence, state: TestState,
                leaks: tuple[Leak, ...], result: ScopeResult | None) -> Evidence:
        return replace(
            evidence,
            leaks=leaks,
            duration_s=sum(state.durations.values()),
            call_duration_s=state.durations.get("call", 0.0),
            spawned=tuple(result.spawned) if result else evidence.spawned,
            mocked=result.mocked if result else evidence.mocked,
            # teardown may have turned more thread/unraisable exceptions into warnings
            warnings=evidence_mod.seen_warnings() or evidence.warnings,
        )

    def diagnose(self, evidence: Evidence) -> Diagnosis:
        diagnosis = classify(self.config, evidence, self.settings)
        self.config.hook.pytest_poolchaos_diagnosis(nodeid=evidence.nodeid, diagnosis=diagnosis)
        return diagnosis
