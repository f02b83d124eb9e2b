"""The controller's side of the history, at session end: earlier runs out, this run in.

For the tests the report talks about (failures, and tests slow enough to be compared with
their own baseline) the earlier runs are read back into ``TestRecord.history``; a failure that
has come and gone before is called flaky even without reruns. Then this run is added in one
transaction. Anything wrong with the file is one line in the terminal, never a failed run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest

from ..settings import cache_folder
from .keys import key_of
from .stats import SLOW_MARGIN_S, flaky_line, summarize
from .store import (
    QUICK_S,
    CorruptHistory,
    HistoryError,
    HistoryStore,
    Result,
    RunInfo,
    move_aside,
)
from .vcs import branch_and_commit

if TYPE_CHECKING:
    from pathlib import Path

    from ..model import SessionResult, TestRecord

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
    run = RunInfo(id=_run_id(config), created=iso(result.stop or result.start), commit=commit,
                  branch=branch)
    try:
        _remember(path, run, result, say=lambda line: _say(config, line))
    except CorruptHistory as error:  # found broken past the first page: start anew, once
        aside = move_aside(path)
        _say(config, f"history file {path} was unreadable ({error}); moved it to {aside.name} "
                     f"and started a new one")
        _remember(path, run, result, say=lambda line: _say(config, line))


def _remember(path: Path, run: RunInfo, result: SessionResult, say: _Say) -> None:
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
            wanted = {record.nodeid: record for record in result.records.values()
                      if record.diagnosis is not None or record.duration_s >= SLOW_MARGIN_S}
            if wanted:
                keyed = {key_of(nodeid): nodeid for nodeid in wanted}
                for key, (past, first, last) in store.past(keyed).items():
                    _apply(wanted[keyed[key]], summarize(past, first, last,
                                                         wanted[keyed[key]].duration_s))
            # One pass, the common case inline: most tests of most runs pass quicker than
            # QUICK_S with nothing else to say about them.
            quick: list[str] = []
            results: list[Result] = []
            for record in result.records.values():
                if record.outcome == "passed" and record.duration_s < QUICK_S \
                        and record.diagnosis is None:
                    quick.append(record.nodeid)
                else:
                    results.append(_result(record))
            store.record(run, results, quick)
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


def _result(record: TestRecord) -> Result:
    diagnosis = record.diagnosis
    return Result(
        nodeid=record.nodeid,
        outcome=record.outcome,
        duration_s=max(0.0, record.duration_s),
        category=diagnosis.category.value if diagnosis else None,
        verdict=diagnosis.verdict.value if diagnosis else None,
        worker=record.worker,
    )


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def _run_id(config: pytest.Config) -> str:
    # The journal's id when there is one, so a run's journal and history name it alike.
    journal = config.pluginmanager.get_plugin("poolchaos-journal")
    return str(getattr(journal, "run", "") or uuid.uuid4().hex)


def _say(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"poolchaos: {line}")
