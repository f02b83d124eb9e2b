"""An append-only journal of the session, so a run that died without a report can be reported.

pytest-timeout's thread method ends the whole process with ``os._exit(1)``: no hook runs, no
report is written. What survives is what was already on disk, so every event is one
``os.write`` of one JSON line to a file opened with ``O_APPEND`` (no Python buffer to flush;
workers of one run append to the same file and a line never interleaves with another).

Events (``event`` key):

* ``run-start`` / ``run-end``: written by the process that reports (serial run or xdist
  controller); a run without ``run-end`` died;
* ``session-start`` / ``session-end``: one per process that runs tests, with the configured
  pytest-timeout method, because it decides whether a death means a timeout;
* ``test-start`` / ``test-result``: per test, with the effective timeout and the diagnosis.

Reading is tolerant: a torn last line (the kill came mid-write) is skipped.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import timeouts
from .guard import guarded
from .model import Category, Diagnosis, Suggestion
from .settings import Settings

__all__ = ["Journal", "Run", "read_runs", "unfinished_diagnosis"]

RUN_KEY = "poolchaos_run"  # workerinput key: the controller's run id, shared with its workers


class Journal:
    """Plugin object writing the journal; registered in every process when a path is set."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        assert settings.journal is not None
        self.config = config
        self.path = settings.journal
        workerinput = getattr(config, "workerinput", None)
        self.worker: str | None = workerinput.get("workerid") if workerinput else None
        self.run: str = (workerinput or {}).get(RUN_KEY) or uuid.uuid4().hex
        self.reports = workerinput is None  # serial run or xdist controller
        self.runs_tests = not _is_xdist_controller(config)
        self.notice: list[str] = []
        self.fd: int | None = None
        self._open()

    # -- writing --------------------------------------------------------------------------

    @guarded(None)
    def _open(self) -> None:
        if self.reports:
            self.notice = _previous_notice(self.path)
            _rotate(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if self.reports:
            self.write("run-start", pid=os.getpid(), args=_args(self.config),
                       timeout=session_timeout(self.config))

    def write(self, event: str, **fields: Any) -> None:
        if self.fd is None:
            return
        line = {"event": event, "run": self.run, "worker": self.worker, "time": time.time(),
                **fields}
        os.write(self.fd, (json.dumps(line, default=str) + "\n").encode())

    # -- hooks ----------------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[RUN_KEY] = self.run

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.runs_tests:
            self._event("session-start", pid=os.getpid(), timeout=session_timeout(self.config))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.runs_tests:
            self._event("session-end", exitstatus=int(exitstatus))
        if self.reports:
            self._event("run-end", exitstatus=int(exitstatus))

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return self.notice

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    # -- steps ----------------------------------------------------------------------------

    @guarded(None)
    def _event(self, event: str, **fields: Any) -> None:
        self.write(event, **fields)

    # -- per test: called by the recorder, which already runs for every test -----------

    @guarded(None)
    def test_start(self, item: pytest.Item) -> None:
        info = timeouts.effective(item)
        timeout = ({"seconds": info.seconds, "method": info.method, "source": info.source,
                    "func_only": info.func_only} if info is not None and info.seconds else None)
        self.write("test-start", nodeid=item.nodeid, pid=os.getpid(), timeout=timeout)

    @guarded(None)
    def test_result(self, report: pytest.TestReport, payload: dict[str, Any]) -> None:
        self.write("test-result", nodeid=report.nodeid, outcome=payload.get("outcome"),
                   when=payload.get("when"), start=payload.get("start"),
                   diagnosis=payload.get("diagnosis"))


def _is_xdist_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and getattr(config.option, "dist", "no") != "no"


def _args(config: pytest.Config) -> list[str]:
    return [str(arg) for arg in config.invocation_params.args]


def session_timeout(config: pytest.Config) -> dict[str, Any] | None:
    """pytest-timeout's configured method and limit for the session (markers may differ)."""
    if not config.pluginmanager.hasplugin("timeout"):
        return None
    method = config.getoption("timeout_method", None) or _ini(config, "timeout_method")
    seconds = (config.getoption("timeout", None) or os.environ.get("PYTEST_TIMEOUT")
               or _ini(config, "timeout"))
    return {"method": str(method or "signal"), "seconds": _float(seconds)}


def _ini(config: pytest.Config, name: str) -> Any:
    try:
        return config.getini(name)
    except ValueError:
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _rotate(path: Path) -> None:
    # One run per file keeps reading cheap; the previous run stays readable next to it.
    if path.exists():
        os.replace(path, path.with_name(path.name + ".prev"))


# -- reading --------------------------------------------------------------------------------


@dataclass
class Run:
    """One run rebuilt from the journal."""

    run: str
    start: dict[str, Any] | None = None
    end: dict[str, Any] | None = None
    sessions: dict[str | None, dict[str, Any]] = field(default_factory=dict)
    started: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_time: float = 0.0

    @property
    def finished(self) -> bool:
        return self.end is not None

    def unfinished_tests(self) -> list[dict[str, Any]]:
        """Tests that started and never reported: the ones running when a process died."""
        return [event for nodeid, event in self.started.items() if nodeid not in self.results]

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        self.last_time = max(self.last_time, float(event.get("time") or 0.0))
        if kind == "run-start":
            self.start = event
        elif kind == "run-end":
            self.end = event
        elif kind == "session-start":
            self.sessions[event.get("worker")] = event
        elif kind == "test-start":
            self.started[str(event.get("nodeid"))] = event
        elif kind == "test-result":
            self.results[str(event.get("nodeid"))] = event


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:  # a line torn by the kill
            continue
        if isinstance(event, dict):
            yield event


def read_runs(path: Path) -> list[Run]:
    """The runs in the journal, in the order they started."""
    return _group(read_events(path))


def _group(events: Iterable[dict[str, Any]]) -> list[Run]:
    runs: dict[str, Run] = {}
    for event in events:
        key = str(event.get("run"))
        runs.setdefault(key, Run(key)).add(event)
    return list(runs.values())


def timeout_of(run: Run, event: dict[str, Any]) -> dict[str, Any] | None:
    """The pytest-timeout limit that applied to a started test, else the session's."""
    timeout = event.get("timeout")
    if isinstance(timeout, dict) and timeout.get("seconds"):
        return timeout
    session = run.sessions.get(event.get("worker")) or run.start or {}
    found = session.get("timeout")
    return found if isinstance(found, dict) and found.get("seconds") else None


def unfinished_diagnosis(run: Run, event: dict[str, Any], *, how: str) -> Diagnosis:
    """Why the process running ``event``'s test died: a thread-method timeout, or a crash.

    ``how`` names the death ("the process ended", "worker 'gw0' exited with code 1", ...).
    """
    timeout = timeout_of(run, event)
    began = float(event.get("time") or 0.0)
    if timeout is not None and timeout.get("method") == "thread":
        return thread_kill(timeout, how)
    ran = max(0.0, run.last_time - began) if began else 0.0
    return Diagnosis(
        category=Category.LIFECYCLE,
        confidence=0.6,
        evidence=tuple(line for line in (
            f"{how} while this test was running (it had started, no result was recorded)",
            f"last journal entry {ran:.1f} s after the test started" if ran else "") if line),
        suggestions=(Suggestion("Run this test alone (pytest -p poolchaos NODEID) to see "
                                "whether it ends the process itself (os._exit, a crash in a C "
                                "extension, an out-of-memory kill) or another test left "
                                "something behind that does."),),
        rules=("journal.process_died",),
    )


def thread_kill(timeout: dict[str, Any], how: str) -> Diagnosis:
    """pytest-timeout's thread method ended the process (os._exit(1)) during ``nodeid``."""
    seconds = timeout.get("seconds")
    limit = f"{float(seconds):g} s" if seconds else "its limit"
    source = timeout.get("source") or "the pytest-timeout configuration"
    return Diagnosis(
        category=Category.TIMEOUT,
        confidence=0.85,
        evidence=(f"{how} while this test was running, with pytest-timeout's thread method "
                  f"active: on expiry it dumps the stacks and calls os._exit(1)",
                  f"the {limit} limit comes from {source} (method thread)"),
        suggestions=(
            Suggestion(f"The test did not finish within {limit}: give every wait in it a "
                       f"timeout well below that (event.wait(timeout=...), "
                       f"future.result(timeout=...)) so it fails with a report instead of "
                       f"killing the process."),
            Suggestion("Use --timeout-method=signal where available: the test then fails "
                       "normally and the rest of the session still runs."),
        ),
        rules=("journal.thread_timeout",),
    )


def previous_unfinished(path: Path) -> tuple[Run, dict[str, Any] | None] | None:
    """The journal's last run when it has no end record, with the test it died in."""
    runs = read_runs(path)
    if not runs or runs[-1].finished or runs[-1].start is None:
        return None
    run = runs[-1]
    pending = sorted(run.unfinished_tests(), key=lambda event: float(event.get("time") or 0))
    return run, (pending[-1] if pending else None)


def _previous_notice(path: Path) -> list[str]:
    found = previous_unfinished(path)
    if found is None:
        return []
    run, event = found
    head = "poolchaos: the previous run did not finish (no report was written)"
    if event is None:
        return [f"{head}; it died between tests"]
    diagnosis = unfinished_diagnosis(run, event, how="the process ended")
    prev = path.with_name(path.name + ".prev")
    return [f"{head}: {diagnosis.category.value} in {event.get('nodeid')}",
            f"  {diagnosis.evidence[0]}",
            f"  details: poolchaos report --journal {prev}"]
