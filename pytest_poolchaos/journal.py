"""The session journal: an append-only file per run, so a run that died can still be reported.

pytest-timeout's thread method ends the whole process with ``os._exit(1)``: no hook runs and no
report is written. What survives is what was already on disk, so every event is one
``os.write`` of one JSON line to a file opened with ``O_APPEND`` (no Python buffer to flush; the
workers of one run append to the same file and a line never interleaves with another).

One write per test: a test's start. Its result is written only when there is something to
say (it did not pass, or it left something behind); a started test followed by another start,
or by the end of its process, passed. A test started and never followed by anything is the
one that was running when its process died.

Where: ``--poolchaos-journal=auto`` keeps one file per run under pytest's cache directory and
prunes old ones (only finished runs, only its own files); an explicit path is one file that
runs append to and tell apart by run id, never moved or truncated.

Events (``event`` key): ``run-start``/``run-end`` by the process that reports,
``session-start``/``session-end`` by each process that runs tests, ``test-start``,
``test-result``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .sanitize import scrub

if TYPE_CHECKING:
    from .model import TimeoutInfo

__all__ = ["KEEP_RUNS", "JournalPlan", "JournalWriter", "Run", "dead_run", "latest_file", "plan",
           "read_runs", "recent_files"]

#: json.dumps(text) for a str, in C: ASCII only, as ensure_ascii writes it
_quoted = json.encoder.encode_basestring_ascii
# Bound at import: a test that patches time.time and leaks the patch must not stop the journal.
_now = time.time

KEEP_RUNS = 10  # files kept by ``auto``
RUN_PREFIX = "run-"


class JournalWriter:
    """Appends events for one process of one run."""

    def __init__(self, path: Path, run: str, worker: str | None) -> None:
        self.path = path
        self.run = run
        self.worker = worker
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        self._head = f'{{"run": {json.dumps(run)}, "worker": {json.dumps(worker)}, '

    def write(self, event: str, **fields: Any) -> None:
        if self._fd is None:
            return
        body = json.dumps(scrub({"event": event, "time": time.time(), **fields}), default=str,
                          ensure_ascii=True)
        os.write(self._fd, (self._head + body[1:] + "\n").encode("ascii"))

    def test_start(self, nodeid: str, timeout: TimeoutInfo | None) -> None:
        # The hot path of every test: built by hand, one small write; the node id is quoted
        # by json's own C quoting (what json.dumps of a string ends in, without its layers).
        if self._fd is None:
            return
        limit = "" if timeout is None else f', "timeout": {json.dumps(limit_json(timeout))}'
        os.write(self._fd, (f'{self._head}"event": "test-start", "time": {_now()!r}, '
                            f'"nodeid": {_quoted(nodeid)}{limit}}}\n').encode("ascii"))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def limit_json(limit: TimeoutInfo | None) -> dict[str, Any] | None:
    """A pytest-timeout limit as journal events carry it."""
    if limit is None or not limit.seconds:
        return None
    return {"seconds": limit.seconds, "method": limit.method, "source": limit.source}


def new_run_id() -> str:
    return os.urandom(16).hex()


def run_file(directory: Path, run: str) -> Path:
    """The file of one run under ``auto``: sortable by start, named for its run."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime())
    return directory / f"{RUN_PREFIX}{stamp}-{run[:12]}.jsonl"


def prune(directory: Path, keep: int = KEEP_RUNS) -> None:
    """Remove this plugin's oldest finished run files beyond ``keep``; never a live run's.

    Reads only each file's first and last lines: a run's file is as long as its run.
    """
    files = sorted(directory.glob(f"{RUN_PREFIX}*.jsonl"))
    for old in files[: max(0, len(files) - keep)]:
        events = _tail_events(old, _TAIL)[0]
        head = next(read_events(old, limit=1), None) or {}
        run = Run(str(head.get("run")))
        run.add(head)
        if run.alive() and not any(e.get("event") == "run-end" for e in events):
            continue
        old.unlink(missing_ok=True)


def latest_file(path: Path, besides: Path | None = None) -> Path | None:
    """``path`` itself, or the newest run file in the directory ``path`` (except ``besides``)."""
    if not path.is_dir():
        return path if path.exists() else None
    files = [p for p in sorted(path.glob(f"{RUN_PREFIX}*.jsonl")) if p != besides]
    return files[-1] if files else None


# -- reading --------------------------------------------------------------------------------


class Run:
    """One run rebuilt from the journal."""

    def __init__(self, run: str) -> None:
        self.run = run
        self.start: dict[str, Any] | None = None
        self.end: dict[str, Any] | None = None
        self.sessions: dict[str | None, dict[str, Any]] = {}
        self.ended: set[str | None] = set()
        self.started: dict[str, dict[str, Any]] = {}
        self.results: dict[str, dict[str, Any]] = {}
        #: per worker, the test started last and not yet followed by anything
        self.running: dict[str | None, str] = {}
        #: per nodeid: when the next event of its worker came (the end of a passing test)
        self.finished_at: dict[str, float] = {}
        self.last_time = 0.0

    def __repr__(self) -> str:
        return f"Run({self.run!r}, finished={self.finished}, tests={len(self.started)})"

    @property
    def finished(self) -> bool:
        return self.end is not None

    def alive(self) -> bool:
        """The process that reports this run still exists (another run going on right now)."""
        pid = (self.start or {}).get("pid")
        if not isinstance(pid, int) or pid <= 0:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:  # exists, owned by someone else
            return True
        return True

    def unfinished_tests(self) -> list[dict[str, Any]]:
        """Tests started and never followed by anything: running when a process died."""
        return [self.started[nodeid] for nodeid in self.running.values()
                if nodeid in self.started and nodeid not in self.results]

    def outcome(self, nodeid: str) -> str:
        result = self.results.get(nodeid)
        return str(result.get("outcome") or "passed") if result else "passed"

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        now = _number(event.get("time"))
        self.last_time = max(self.last_time, now)
        worker = event.get("worker")
        previous = self.running.pop(worker, None) if kind != "test-result" else None
        if previous is not None:
            self.finished_at.setdefault(previous, now)
        if kind == "run-start":
            self.start = event
        elif kind == "run-end":
            self.end = event
        elif kind == "session-start":
            self.sessions[worker] = event
        elif kind == "session-end":
            self.ended.add(worker)
        elif kind == "test-start":
            nodeid = str(event.get("nodeid"))
            self.started[nodeid] = event
            self.running[worker] = nodeid
        elif kind == "test-result":
            self.results[str(event.get("nodeid"))] = event


_TAIL = 64 * 1024  # bytes read from a journal's end before reading more of it
#: lines holding ``only`` parsed at most, from the end: the start and end lines of the runs
#: ``auto`` keeps, twice over
_NEWEST = 4 * KEEP_RUNS


def read_events(path: Path, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The events of a journal file, or only its first ``limit`` lines."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines() if limit is None else [
                line for _, line in zip(range(limit), handle, strict=False)]
    except OSError:
        return
    yield from _parsed(lines)


def _tail_events(path: Path, size: int, only: str = ""
                 ) -> tuple[list[dict[str, Any]], bool]:
    """The events in the last ``size`` bytes of ``path``, and whether that was all of it;
    with ``only``, just the lines holding that text are parsed."""
    try:
        with open(path, "rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            start = max(0, end - size)
            handle.seek(start)
            data = handle.read()
    except OSError:
        return [], True
    if start:
        data = data[data.find(b"\n") + 1:] if b"\n" in data else b""  # a line begun before
    # Looked for in the bytes: a long run's journal is mostly lines nobody asked for here;
    # and of those, only the newest are parsed (a journal that many short runs append to
    # holds a hundred runs in its tail).
    chunks = _lines_holding(data, only.encode("utf-8"))[-_NEWEST:] if only \
        else data.split(b"\n")
    lines = [chunk.decode("utf-8", "replace") for chunk in chunks]
    return list(_parsed(lines)), start == 0


def _lines_holding(data: bytes, needle: bytes) -> list[bytes]:
    found: list[bytes] = []
    at = data.find(needle)
    while at != -1:
        begin = data.rfind(b"\n", 0, at) + 1
        end = data.find(b"\n", at)
        end = len(data) if end == -1 else end
        found.append(data[begin:end])
        at = data.find(needle, end)
    return found


def _parsed(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:  # a line torn by the kill
            continue
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            yield _typed(event)


def _typed(event: dict[str, Any]) -> dict[str, Any]:
    # Keys and names are text, whatever an edited or foreign journal holds: they index dicts.
    for key in ("run", "worker", "nodeid"):
        value = event.get(key)
        if value is not None and not isinstance(value, str):
            event[key] = json.dumps(value)
    return event


def read_runs(path: Path) -> list[Run]:
    """The runs in the journal file, in the order they started."""
    return _group(read_events(path))


def _group(events: Iterable[dict[str, Any]]) -> list[Run]:
    runs: dict[str, Run] = {}
    for event in events:
        key = str(event.get("run"))
        runs.setdefault(key, Run(key)).add(event)
    return list(runs.values())


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def timeout_of(run: Run, event: dict[str, Any]) -> TimeoutInfo | None:
    """The pytest-timeout limit of a started test: its own, else its process's session's."""
    own = event.get("timeout")
    session = run.sessions.get(event.get("worker")) or run.start or {}
    found = own if isinstance(own, dict) and own.get("seconds") else session.get("timeout")
    if not isinstance(found, dict) or not _number(found.get("seconds")):
        return None
    from .model import TimeoutInfo

    return TimeoutInfo(_number(found.get("seconds")), str(found.get("method") or "signal"),
                       found.get("source"))


def dead_run(paths: Iterable[Path], besides: str
             ) -> tuple[Path, Run, dict[str, Any] | None] | None:
    """The newest run in the journal files ``paths`` that died and was not named yet.

    Runs may overlap (two CI jobs in one checkout): a run still going on is alive, not dead,
    and a run that died while a later one went on is still found after that one finished.
    Each run's start records the dead run it named (``noticed``), so a death is told once.
    Reads each file from its end, only as far back as the newest other run's start: a
    journal that runs append to grows with every run.
    """
    paths = list(paths)
    if not _maybe_dead(paths, besides):
        return None  # the common case: every earlier run ended (or is going on)
    runs: list[tuple[float, Path, Run]] = []
    noticed: set[str] = set()
    for path in paths:
        for run in _group(_recent_events(path, besides)):
            if run.run == besides or run.start is None:
                continue
            noticed.add(str(run.start.get("noticed")))
            runs.append((_number(run.start.get("time")), path, run))
    for _, path, run in sorted(runs, key=lambda found: found[0], reverse=True):
        if run.run in noticed or run.finished or run.alive():
            continue
        pending = sorted(run.unfinished_tests(), key=lambda event: _number(event.get("time")))
        return path, run, (pending[-1] if pending else None)
    return None


#: what the lines that start and end a run hold, as ``write`` spells it (a node id holding
#: the same text is escaped in its line): whether any run died needs no other line
_RUN_LINES = '"event": "run-'


def _maybe_dead(paths: list[Path], besides: str) -> bool:
    """Can a recent run of ``paths`` be a dead one not named yet? Told from the runs' start
    and end lines only: a test's line, one per test of a long run, is parsed when it can."""
    runs = [run for path in paths for run in _group(_recent_events(path, besides, _RUN_LINES))
            if run.run != besides and run.start is not None]
    noticed = {str(run.start.get("noticed")) for run in runs if run.start is not None}
    return any(run.run not in noticed and not run.finished and not run.alive() for run in runs)


def _recent_events(path: Path, besides: str, only: str = "") -> list[dict[str, Any]]:
    size = _TAIL
    while True:
        events, whole = _tail_events(path, size, only)
        if whole or any(e.get("event") == "run-start" and e.get("run") != besides
                        for e in events):
            return events
        size *= 8


def recent_files(directory: Path, besides: Path | None = None) -> list[Path]:
    """The run files of the ``auto`` directory, newest first (except ``besides``)."""
    files = [p for p in sorted(directory.glob(f"{RUN_PREFIX}*.jsonl")) if p != besides]
    return files[::-1][:KEEP_RUNS]


# -- where this run writes ------------------------------------------------------------------

WORKERINPUT_KEY = "poolchaos_journal"


class JournalPlan:
    """The file this run appends to, its run id, and the ``auto`` directory it lives in."""

    __slots__ = ("directory", "path", "run")

    def __init__(self, path: Path, run: str, directory: Path | None = None) -> None:
        self.path = path
        self.run = run
        self.directory = directory

    def to_wire(self) -> dict[str, str]:
        return {"path": str(self.path), "run": self.run}


def plan(config: pytest.Config, setting: str) -> JournalPlan | None:
    """Resolve ``--poolchaos-journal`` once per process, at session start.

    Not earlier: pytest's cache directory (where ``auto`` writes) exists only once the cache
    plugin is configured, after this plugin's own configure. Workers take the controller's.
    """
    stash = config.stash
    if _PLAN in stash:
        return stash[_PLAN]
    found = _plan(config, setting)
    stash[_PLAN] = found
    return found


def run_of(config: pytest.Config) -> str | None:
    """This run's id when its journal was planned (the history names the run alike)."""
    found = config.stash.get(_PLAN, None)
    return found.run if found is not None else None


def _plan(config: pytest.Config, setting: str) -> JournalPlan | None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        given = workerinput.get(WORKERINPUT_KEY)
        return JournalPlan(Path(given["path"]), given["run"]) if given else None
    run = new_run_id()
    if setting == "off":
        return None
    if setting == "auto":
        cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
        if cache is None:
            return None
        directory = Path(cache.mkdir("poolchaos")) / "journal"
        directory.mkdir(exist_ok=True)
        return JournalPlan(run_file(directory, run), run, directory)
    path = Path(setting)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalPlan(path, run)


_PLAN = pytest.StashKey["JournalPlan | None"]()
