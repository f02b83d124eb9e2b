"""The controller's side of the history, at session end: earlier runs out, this run in.

For the tests the report talks about (failures, and tests slow enough to be compared with
their own baseline) the earlier runs are read back into ``TestRecord.history``; a failure that
has come and gone before is called flaky even without reruns. Then this run is added in one
transaction. A run with no such test reads nothing: it is parked in the pending file, without
loading SQLite. Anything wrong with the file is one line in the terminal, never a failed run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from typing import TYPE_CHECKING

import pytest

from ..journal import run_of
from ..settings import cache_folder
from . import QUICK_S, SLOW_MARGIN_S, pending
from .vcs import branch_and_commit

if TYPE_CHECKING:
    from pathlib import Path

    from ..model import SessionResult, TestRecord
    from .store import RunInfo

#: a result as the pending file and ``store.Result`` take it: node id, outcome, duration,
#: category, verdict, worker
_Row = tuple[str, str, float, "str | None", "str | None", "str | None"]

__all__ = ["iso", "remember"]

_Say = Callable[[str], None]


def remember(config: pytest.Config, path: Path, result: SessionResult) -> None:
    """Read this run's tests' history into ``result``, then add this run to the store."""
    if not result.records:  # --collect-only, a collection error: no run to remember
        return
    cache = getattr(config, "cache", None)
    if cache is not None and path.parent == cache_folder(config):
        cache.mkdir("poolchaos")  # with the cache's own .gitignore and README
    branch, commit = branch_and_commit(config.rootpath)
    run = {"id": _run_id(config), "created": iso(result.stop or result.start),
           "commit": commit, "branch": branch}
    say = partial(_say, config)
    wanted = {record.nodeid: record for record in result.records.values()
              if record.diagnosis is not None or record.duration_s >= SLOW_MARGIN_S}
    quick, results = _split(result)
    if wanted:
        _store(path, run, wanted, quick, results, say)
    else:
        _park(path, {**run, "quick": quick, "results": results}, say)


def _store(path: Path, run: dict[str, str | None], wanted: dict[str, TestRecord],
           quick: list[str], results: list[_Row], say: _Say) -> None:
    from .store import CorruptHistory, RunInfo, move_aside

    info = RunInfo(**run)  # type: ignore[arg-type]
    try:
        _remember(path, info, wanted, quick, results, say)
    except CorruptHistory as error:  # found broken past the first page: start anew, once
        aside = move_aside(path)
        say(f"history file {path} was unreadable ({error}); moved it to {aside.name} and "
            f"started a new one")
        _remember(path, info, wanted, quick, results, say)


def _split(result: SessionResult) -> tuple[list[str], list[_Row]]:
    """The node ids of quick passes, and a row for every other result."""
    # One pass, the common case inline: most tests of most runs pass quicker than QUICK_S
    # with nothing else to say about them.
    quick: list[str] = []
    results: list[_Row] = []
    for record in result.records.values():
        if record.outcome == "passed" and record.duration_s < QUICK_S \
                and record.diagnosis is None:
            quick.append(record.nodeid)
        else:
            results.append(_result(record))
    return quick, results


def _park(path: Path, run: dict[str, object], say: _Say) -> None:
    """A run that reads nothing waits in the pending file; one that makes the file too big
    folds it into the store now."""
    try:
        size = pending.append(path, run)
    except OSError as error:
        say(f"history not recorded: cannot write {pending.path_of(path)} "
            f"({error.strerror or error})")
        return
    if size >= pending.FOLD_BYTES:
        from .store import HistoryError, HistoryStore

        try:
            store, note = HistoryStore.open(path)
        except HistoryError as error:
            say(f"history not folded: {error}")
            return
        store.close()
        if note:
            say(note)


def _remember(path: Path, run: RunInfo, wanted: dict[str, TestRecord], quick: list[str],
              results: list[_Row], say: _Say) -> None:
    from .keys import key_of
    from .stats import summarize
    from .store import CorruptHistory, HistoryError, HistoryStore, Result

    try:
        store, note = HistoryStore.open(path)
    except CorruptHistory:
        raise
    except HistoryError as error:
        say(f"history not recorded: {error}")
        return
    if note:
        say(note)
    with store:
        try:
            keyed = {key_of(nodeid): nodeid for nodeid in wanted}
            for key, (past, first, last) in store.past(keyed).items():
                _apply(wanted[keyed[key]], summarize(past, first, last,
                                                     wanted[keyed[key]].duration_s))
            store.record(run, [Result(*row) for row in results], quick)
        except CorruptHistory:
            raise
        except HistoryError as error:
            say(f"history not recorded: {error}")


def _apply(record: TestRecord, history: dict[str, object]) -> None:
    record.history = history
    diagnosis = record.diagnosis
    if diagnosis is None or not history.get("recovered"):
        return
    from ..model import Category, Suggestion, Verdict  # loaded only when something failed
    from .stats import flaky_line

    if diagnosis.verdict is not Verdict.UNKNOWN:
        return
    suggestions = diagnosis.suggestions
    if diagnosis.category is Category.UNCLASSIFIED:
        # "an ordinary bug that fails the same way alone" is what its own history disproves
        suggestions = (Suggestion(
            f"It failed {history.get('failures')} of the last {history.get('runs')} recorded "
            f"runs and passed in between, yet this run showed no timing, pollution or mock "
            f"signal: look for randomness, ordering or shared state in the code it calls; "
            f"--poolchaos-rerun=5 measures how often it fails here and what varies."),)
    record.diagnosis = diagnosis.evolve(verdict=Verdict.FLAKY, suggestions=suggestions,
                                        reasons=(*diagnosis.reasons, flaky_line(history)))


def _result(record: TestRecord) -> _Row:
    diagnosis = record.diagnosis
    return (record.nodeid, record.outcome, max(0.0, record.duration_s),
            diagnosis.category.value if diagnosis else None,
            diagnosis.verdict.value if diagnosis else None, record.worker)


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def _run_id(config: pytest.Config) -> str:
    # The journal's id when there is one, so a run's journal and history name it alike.
    return run_of(config) or uuid.uuid4().hex


def _say(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"poolchaos: {line}")
