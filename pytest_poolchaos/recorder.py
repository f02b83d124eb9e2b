"""ScopeRecorder: the role played by every process that runs tests (serial run or xdist worker).

It opens a pool scope around each test, gathers Evidence when a phase fails, classifies after
teardown (when the test's own leaks are known) and attaches one JSON-safe payload to the
teardown report. Nothing here prints or writes files: that is the controller's job.
"""

from __future__ import annotations

import time
from collections.abc import Generator
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

    # -- lifetime ---------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.scope.install()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.scope.uninstall()

    # -- one test ---------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        # Opened here, outside pytest's capture and logging wrappers, so their handlers and
        # PYTEST_CURRENT_TEST are not in the snapshot.
        self._open(item)
        try:
            return (yield)
        finally:
            self._after_setup(item)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        self._before_teardown(item)
        try:
            result = yield
        finally:
            closed = self._close(item)
        if closed is not None and closed.fail_message:
            raise LeakError(closed.fail_message)
        return result

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        self._observe(item, call, report)
        return report

    def pytest_assertrepr_compare(self, op: str, left: object, right: object) -> None:
        self.comparisons.record(op, left, right)

    # -- steps (each guarded: a plugin bug never changes a test's outcome) ------------------

    @guarded(None)
    def _open(self, item: pytest.Item) -> None:
        item.stash[STATE] = TestState(start=time.time())
        self.comparisons.clear()
        self.scope.open(item)

    @guarded(None)
    def _after_setup(self, item: pytest.Item) -> None:
        self.scope.after_setup(item)

    @guarded(None)
    def _before_teardown(self, item: pytest.Item) -> None:
        self.scope.before_teardown(item)

    @guarded(None)
    def _close(self, item: pytest.Item) -> ScopeResult | None:
        return self.scope.close(item)

    @guarded(None)
    def _observe(self, item: pytest.Item, call: pytest.CallInfo[None],
                 report: pytest.TestReport) -> None:
        state = item.stash.get(STATE, None)
        if state is None:
            return
        state.durations[report.when] = report.duration
        if report.failed and state.evidence is None and not hasattr(report, "wasxfail"):
            state.evidence = evidence_mod.from_call(
                item, call, report, self.comparisons, self.scope, worker=self.worker
            )
            state.evidence = surroundings.enrich(state.evidence, report) or state.evidence
        if report.when == "teardown":
            setattr(report, PAYLOAD, self._payload(item, state))

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
