"""pytest-xdist: what the controller learns only from its workers.

* ``WorkerOutput`` (on each worker) hands the worker's internal problems to the controller
  through ``config.workeroutput``;
* ``XdistCoordinator`` (on the controller) counts the workers, gathers their problems and
  hanging threads, and turns a crashed worker into a diagnosis for the test it was running.

Every xdist hook is an ``optionalhook``: the objects are registered whether or not xdist is
active, and without xdist those hooks do not exist.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from .. import guard, journal
from ..guard import guarded
from ..model import Category, Diagnosis, Suggestion
from ..worker.exit_guard import HANGING_KEY
from ..worker.recorder import PAYLOAD

__all__ = ["WorkerOutput", "XdistCoordinator", "crash_diagnosis"]

PROBLEMS_KEY = "poolchaos_problems"
_CRASHED = re.compile(r"worker '(?P<worker>[^']+)' crashed while running")
_EXIT_WAIT = 2.0  # seconds to reap a crashed worker for its exit code
_THREAD_KILL_SHARE = 0.8  # a death this far into a thread-method limit is that timer


class WorkerOutput:
    """On an xdist worker: send the worker's internal problems to the controller."""

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[PROBLEMS_KEY] = list(guard.PROBLEMS)


class XdistCoordinator:
    """On the xdist controller (harmless in a serial run: its hooks never fire there)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.up: set[str] = set()
        self.peak = 0
        self.started: dict[str, float] = {}

    def _session(self) -> Any:
        controller = self.config.pluginmanager.get_plugin("poolchaos-controller")
        return None if controller is None else controller.session

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodeready(self, node: Any) -> None:
        self._ready(node)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        self._down(node)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        # Replayed from the worker as the test starts; a crash report carries no times.
        self.started[nodeid] = time.time()

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport,
                               sched: Any) -> None:
        self._crashed(crashitem, report)

    # -- steps ----------------------------------------------------------------------------

    @guarded(None)
    def _ready(self, node: Any) -> None:
        self.up.add(_worker_id(node))
        self.peak = max(self.peak, len(self.up))
        session = self._session()
        if session is not None:
            session.workers = self.peak  # replacements of crashed workers do not add up

    @guarded(None)
    def _down(self, node: Any) -> None:
        worker = _worker_id(node)
        self.up.discard(worker)
        output = getattr(node, "workeroutput", None) or {}  # None for a crashed worker
        for problem in output.get(PROBLEMS_KEY, ()):
            text = f"[{worker}] {problem}"
            if text not in guard.PROBLEMS:
                guard.PROBLEMS.append(text)
        session = self._session()
        if session is not None:
            session.hanging.extend(f"{line} (on {worker})" for line in
                                   output.get(HANGING_KEY, ()))

    @guarded(None)
    def _crashed(self, nodeid: str, report: pytest.TestReport) -> None:
        node = getattr(report, "node", None)
        match = _CRASHED.search(str(report.longrepr or ""))
        worker = match.group("worker") if match else _worker_id(node)
        now = time.time()
        start = self.started.get(nodeid)
        run, started = self._journal_start(nodeid, worker)
        if started is not None:
            start = float(started.get("time") or start or now)
        timeout = self._timeout(run, started)
        code = exit_code(node)
        diagnosis = crash_diagnosis(worker, code, now - start if start else None, timeout)
        setattr(report, PAYLOAD, {
            "worker": worker, "start": start, "stop": now,
            "timeout_s": timeout.get("seconds") if timeout else None,
            "diagnosis": diagnosis.to_json(),
        })

    def _journal_start(self, nodeid: str, worker: str
                       ) -> tuple[journal.Run | None, dict[str, Any] | None]:
        plugin = self.config.pluginmanager.get_plugin("poolchaos-journal")
        if plugin is None:
            return None, None
        for run in journal.read_runs(Path(plugin.path)):
            event = run.started.get(nodeid) if run.run == plugin.run else None
            if event is not None and event.get("worker") == worker:
                return run, event
        return None, None

    def _timeout(self, run: journal.Run | None, started: dict[str, Any] | None
                 ) -> dict[str, Any] | None:
        if run is not None and started is not None:
            return journal.timeout_of(run, started)
        # Without a journal only the session's configuration is known (markers are not).
        configured = journal.session_timeout(self.config)
        return configured if configured and configured.get("seconds") else None


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


def crash_diagnosis(worker: str, code: int | None, ran: float | None,
                    timeout: dict[str, Any] | None) -> Diagnosis:
    """A crashed worker: a pytest-timeout thread-method kill is a timeout, anything else is
    a lifecycle failure."""
    how = f"worker '{worker}' crashed ({describe_exit(code)})"
    if _thread_kill(code, ran, timeout):
        assert timeout is not None
        return journal.thread_kill(timeout, how)
    evidence = [f"{how} while running this test; xdist started a replacement and the run went "
                f"on"]
    if ran is not None:
        evidence.append(f"the test had been running {ran:.2f} s when the worker went down")
    return Diagnosis(
        category=Category.LIFECYCLE,
        confidence=0.9,
        evidence=tuple(evidence),
        suggestions=(_crash_suggestion(code),),
        rules=("xdist.worker_crash",),
    )


def _thread_kill(code: int | None, ran: float | None, timeout: dict[str, Any] | None) -> bool:
    if code != 1 or timeout is None or timeout.get("method") != "thread":
        return False
    seconds = timeout.get("seconds")
    return ran is None or not seconds or ran >= _THREAD_KILL_SHARE * float(seconds)


def _crash_suggestion(code: int | None) -> Suggestion:
    if code == -signal.SIGKILL:
        return Suggestion("SIGKILL comes from outside the test: the out-of-memory killer "
                          "(check `dmesg` and the job's memory limit) or a test/fixture that "
                          "kills its own process group; watch the worker's memory while "
                          "this test runs.")
    if code is not None and code < 0:
        return Suggestion("The worker died from a signal: a crash in a C extension or a "
                          "signal sent to the wrong pid; run the test alone with "
                          "`python -X faulthandler -m pytest -p no:xdist NODEID` to get the "
                          "stack.")
    return Suggestion("Something in the test ended the worker process (os._exit, sys.exit "
                      "in a forked child, a pool initializer calling exit): run it alone "
                      "with `-p no:xdist` and look for os._exit/exit calls in the code it "
                      "runs.")
