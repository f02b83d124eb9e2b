"""pytest-xdist on the controller: what it learns only from its workers.

``XdistCoordinator`` counts the workers, gathers each worker's summary (internal problems,
threads hanging its exit) and turns a crashed worker into Evidence for the test it was running,
diagnosed by the same rules as every other failure. Registered only when xdist distributes.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from .. import guard, journal, timeouts
from ..classify import classify
from ..model import PAYLOAD_ATTR, SUMMARY_KEY, TestPayload, TimeoutInfo, WorkerSummary
from ..postmortem import crash_evidence
from ..settings import Settings
from .session import ChaosController

__all__ = ["XdistCoordinator", "describe_exit"]

_CRASHED = re.compile(r"worker '(?P<worker>[^']+)' crashed while running")
_EXIT_WAIT = 2.0  # seconds to reap a crashed worker for its exit code


class XdistCoordinator:
    def __init__(self, config: pytest.Config, settings: Settings,
                 controller: ChaosController) -> None:
        self.config = config
        self.settings = settings
        self.controller = controller
        self.up: set[str] = set()
        self.peak = 0
        self.started: dict[str, float] = {}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodeready(self, node: Any) -> None:
        with guard.contained("xdist worker ready"):
            self.up.add(_worker_id(node))
            self.peak = max(self.peak, len(self.up))
            # replacements of crashed workers do not add up
            self.controller.session.workers = self.peak

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        with guard.contained("xdist worker down"):
            worker = _worker_id(node)
            self.up.discard(worker)
            output = getattr(node, "workeroutput", None) or {}  # None for a crashed worker
            summary = WorkerSummary.from_wire(output.get(SUMMARY_KEY))
            for problem in summary.problems:
                text = f"[{worker}] {problem}"
                if text not in guard.PROBLEMS:
                    guard.PROBLEMS.append(text)
            self.controller.session.hanging.extend(f"{line} (on {worker})"
                                                   for line in summary.hanging)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        # Replayed from the worker as the test starts; a crash report carries no times.
        # Every test passes here: the error is caught inline, not by a context manager.
        try:
            self.started[nodeid] = time.time()
        except Exception as error:
            guard.record("xdist test start", error)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport,
                               sched: Any) -> None:
        with guard.contained("xdist crashed worker"):
            self._crashed(crashitem, report)

    def _crashed(self, nodeid: str, report: pytest.TestReport) -> None:
        node = getattr(report, "node", None)
        match = _CRASHED.search(str(report.longrepr or ""))
        worker = match.group("worker") if match else _worker_id(node)
        start = self.started.get(nodeid)
        run, started = self._journal_start(nodeid, worker)
        if started is not None:
            start = float(started.get("time") or start or time.time())
        limit = journal.timeout_of(run, started) if run and started else self._timeout()
        code = exit_code(node)
        how = f"worker '{worker}' crashed ({describe_exit(code)})"
        evidence = crash_evidence(nodeid, how, time.time() - start if start else None,
                                  limit, worker, code)
        diagnosis = classify(self.config, evidence, self.settings)
        payload = TestPayload(timeout_s=evidence.timeout.seconds if evidence.timeout else None,
                              evidence=evidence, diagnosis=diagnosis)
        setattr(report, PAYLOAD_ATTR, payload.to_wire())
        report.start = start or 0.0

    def _journal_start(self, nodeid: str, worker: str
                       ) -> tuple[journal.Run | None, dict[str, Any] | None]:
        plan = self.controller.plan
        if plan is None:
            return None, None
        for run in journal.read_runs(Path(plan.path)):
            event = run.started.get(nodeid) if run.run == plan.run else None
            if event is not None and event.get("worker") == worker:
                return run, event
        return None, None

    def _timeout(self) -> TimeoutInfo | None:
        # Without a journal only the session's configuration is known (markers are not).
        return timeouts.session_limit(self.config)


def _worker_id(node: Any) -> str:
    gateway = getattr(node, "gateway", None)
    return str(getattr(gateway, "id", None) or getattr(node, "workerid", "?"))


def exit_code(node: Any) -> int | None:
    """The crashed worker process's exit status (negative: killed by that signal)."""
    popen = getattr(getattr(getattr(node, "gateway", None), "_io", None), "popen", None)
    if popen is None:
        return None
    try:
        code = popen.poll()
        return int(popen.wait(timeout=_EXIT_WAIT) if code is None else code)
    except Exception:  # still running after the wait, or not a Popen at all
        return None


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} ({-code})"
    return f"exit code {code}"
