"""The diagnostic phase, run once after the session.

``refine`` reruns each diagnosed failure (inline and/or isolated), tallies a verdict, searches
the polluter of tests that fail in the suite but pass alone, re-classifies order-dependent
tests and appends suggestions quoting measured values. It never touches outcomes or the exit
status: it only replaces ``TestRecord.diagnosis``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pytest

from ..classify.pollution import failure_words
from ..guard import guarded
from ..model import Attempt, Category, Diagnosis, RerunFacts, Suggestion, Verdict
from .bisect import PolluterSearch, Search
from .measures import suggestions as measured
from .progress import DiagnosticProgress
from .reruns import inline, isolated
from .runner import Runner
from .verdict import Tally, suspect_order, tally, verdict

if TYPE_CHECKING:
    from ..model import SessionResult, TestRecord
    from ..settings import Settings
    from .noisy import Noisy

_RESOURCE_KINDS = ("process", "server", "socket", "listener", "pool")
_LEFT_RUNNING = (*_RESOURCE_KINDS, "thread")


@dataclass
class _Context:
    config: pytest.Config
    settings: Settings
    result: SessionResult
    runner: Runner
    items: dict[str, pytest.Item]
    affected: int
    progress: DiagnosticProgress


def refine(session: pytest.Session, settings: Settings, result: SessionResult) -> None:
    """Rerun failed tests and search polluters; update result.records' diagnoses in place."""
    if settings.rerun <= 0:
        return
    victims = [r for r in result.records.values()
               if r.outcome in ("failed", "error") and r.diagnosis is not None]
    if not victims:
        return
    config = session.config
    items = {item.nodeid: item for item in session.items}
    runner = Runner(config, settings, result.environ)
    runs = settings.rerun * (2 if settings.rerun_mode == "both" else 1) + (
        settings.rerun if settings.rerun_chaos else 0)
    with DiagnosticProgress(config, runs * len(victims)) as progress:
        context = _Context(config, settings, result, runner, items, leaked_resources(result),
                           progress)
        for record in victims:
            _refine_one(context, record)


@guarded(None)
def _refine_one(context: _Context, record: TestRecord) -> None:
    assert record.diagnosis is not None
    attempts = list(_reruns(context, record))
    counts = tally(attempts)
    noisy = _noisy(context, record, counts)
    if noisy is not None and noisy.load_sensitive:
        # It fails alone under noise: load is the cause, no earlier test is (and passing
        # every quiet rerun alone must not read as order-dependent).
        search: Search | None = Search(reproduced=False)
    else:
        search = _search(context, record) if context.settings.bisect and suspect_order(
            counts) else None
    record.diagnosis = _conclude(context, record, counts, attempts, search)
    if search is not None and record.diagnosis.polluter:
        record.diagnosis = _with_cleaners(context, record, record.diagnosis, search)
    if noisy is not None:
        from .noisy import apply

        record.diagnosis = apply(noisy, record.diagnosis, record.evidence)


def _reruns(context: _Context, record: TestRecord) -> Iterator[Attempt]:
    settings, timeout = context.settings, _is_timeout(record)
    item = context.items.get(record.nodeid)
    # pytest-timeout arms its timer around the whole protocol hook, which inline reruns do not
    # go through: a test that timed out could hang this process, so it reruns isolated only.
    if settings.rerun_mode in ("inline", "both") and item is not None and not timeout:
        for number in range(settings.rerun):
            context.progress.show(record.nodeid, f"inline rerun {number + 1}/{settings.rerun}")
            try:
                yield inline(item)
            except pytest.exit.Exception:
                break
            finally:
                context.progress.advance()
    if settings.rerun_mode in ("isolated", "both") or item is None or timeout:
        limit = record.evidence.timeout.seconds if timeout and record.evidence and \
            record.evidence.timeout else None
        for number in range(settings.rerun):
            context.progress.show(record.nodeid, f"isolated rerun {number + 1}/{settings.rerun}")
            yield isolated(context.runner, record.nodeid, record.duration_s, limit,
                           context.affected)
            context.progress.advance()


def _noisy(context: _Context, record: TestRecord, counts: Tally) -> Noisy | None:
    """Chaos reruns, unless every quiet rerun failed already (noise adds nothing then)."""
    settings = context.settings
    if not settings.rerun_chaos or (counts.runs and not counts.passes):
        return None
    from ..chaos.spec import parse
    from .noisy import rerun_under_noise

    spec = settings.chaos or parse("heavy")
    assert spec is not None
    limit = record.evidence.timeout.seconds if _is_timeout(record) and record.evidence and \
        record.evidence.timeout else None

    def step(what: str) -> None:
        context.progress.show(record.nodeid, what)

    return rerun_under_noise(context.runner, spec, record.nodeid, settings.rerun,
                             record.duration_s, limit, counts, step)


def _search(context: _Context, record: TestRecord) -> Search | None:
    candidates = candidates_before(context.result, record)
    if not candidates:
        return Search(reproduced=False)
    context.progress.show(record.nodeid, "searching the polluter of")
    durations = {nodeid: r.duration_s for nodeid, r in context.result.records.items()}
    finder = PolluterSearch(context.runner, context.settings.bisect_budget,
                            context.settings.bisect_seconds, durations)
    evidence = record.evidence
    text = "\n".join(filter(None, [failure_words(evidence) if evidence else "",
                                    record.longrepr]))
    return finder.find(record.nodeid, candidates, evidence.pollution if evidence else (), text)


def _with_cleaners(context: _Context, record: TestRecord, diagnosis: Diagnosis,
                   search: Search) -> Diagnosis:
    """Look for a cleaner of an order-dependent test on what is left of the budgets."""
    from .cleaners import CleanerSearch, advice, related_tests

    polluter = diagnosis.polluter
    assert polluter is not None
    records = context.result.records
    runs_left = context.settings.bisect_budget - search.runs
    seconds_left = context.settings.bisect_seconds - search.seconds
    if runs_left <= 0 or seconds_left <= 0:
        return diagnosis.evolve(reasons=(*diagnosis.reasons,
                                          "no budget left to search for a cleaner"))
    candidates = [nodeid for nodeid in records if nodeid not in (polluter, record.nodeid)]
    related = related_tests(search.left_behind,
                            {nodeid: records[nodeid].leaks for nodeid in candidates})
    context.progress.show(record.nodeid, "searching a cleaner for")
    durations = {nodeid: r.duration_s for nodeid, r in records.items()}
    found = CleanerSearch(context.runner, runs_left, seconds_left, durations).find(
        polluter, record.nodeid, candidates, related)
    lines: list[str] = []
    advised: list[Suggestion] = []
    for cleaner in found.found:
        more_lines, more_advice = advice(cleaner, polluter, record.nodeid, search.left_behind,
                                         records[cleaner].leaks)
        lines += more_lines
        advised += more_advice
    if not found.found:
        why = "ran out of budget" if found.exhausted else "found none"
        lines.append(f"cleaner search {why} in {found.runs} run(s), {found.seconds:.1f} s")
    return diagnosis.evolve(cleaners=tuple(found.found),
                            reasons=tuple(dict.fromkeys([*diagnosis.reasons, *lines])),
                            suggestions=(*diagnosis.suggestions, *advised),
                            attempts=(*diagnosis.attempts, *found.attempts))


def candidates_before(result: SessionResult, victim: TestRecord) -> list[str]:
    """Tests that ran before ``victim`` in the same process, in their order."""
    out: list[str] = []
    for record in result.records.values():
        if record.nodeid == victim.nodeid:
            break
        if record.worker == victim.worker:
            out.append(record.nodeid)
    return out


def _conclude(context: _Context, record: TestRecord, counts: Tally, attempts: list[Attempt],
              search: Search | None) -> Diagnosis:
    assert record.diagnosis is not None
    confirmed = None if search is None else search.reproduced
    found = verdict(counts, confirmed)
    diagnosis = record.diagnosis
    polluter = search.polluter if search is not None and found is Verdict.ORDER_DEPENDENT \
        else None
    if record.evidence is not None:
        # What the reruns proved is one more fact: the rules decide again with it.
        from ..classify import classify

        record.evidence = replace(record.evidence, reruns=RerunFacts(found, polluter))
        diagnosis = classify(context.config, record.evidence, context.settings)
    lines = [*diagnosis.reasons, _rerun_line(counts), *_search_lines(search, found),
             *_resources_left(context.result, polluter)]
    advice = [*diagnosis.suggestions,
              *measured(diagnosis.category, record.evidence, attempts)]
    return diagnosis.evolve(
        verdict=found, pass_rate=counts.pass_rate, reruns=counts.runs, polluter=polluter,
        polluter_search=search.to_json() if search is not None and search.runs else None,
        attempts=tuple(attempts + (search.attempts if search is not None else [])),
        reasons=tuple(dict.fromkeys(lines)), suggestions=tuple(advice))


def _rerun_line(counts: Tally) -> str:
    parts = []
    if counts.inline_runs:
        parts.append(f"{counts.inline_passes}/{counts.inline_runs} in this process")
    if counts.isolated_runs:
        parts.append(f"{counts.isolated_passes}/{counts.isolated_runs} alone")
    return f"reran {counts.runs} time(s): passed {', '.join(parts) or 'never'}"


def _search_lines(search: Search | None, found: Verdict) -> list[str]:
    if search is None or not search.runs:
        return []
    cost = f"{search.runs} run(s), {search.seconds:.1f} s"
    if search.polluter:
        lines = [f"polluter {search.polluter} found by {search.method} in {cost}"]
        lines += [f"{entry.nodeid} left {entry.describe()}"
                  for entry in search.left_behind[:3]]
        return lines
    if search.method == "exhausted":
        shown = ", ".join(search.narrowest[:5]) + (" ..." if len(search.narrowest) > 5 else "")
        return [f"polluter search ran out of budget after {cost}; narrowest range "
                f"({len(search.narrowest)} test(s)): {shown}"]
    if found is Verdict.FLAKY:
        return [f"no earlier test reproduces the failure ({cost}): it fails at random"]
    return []


def _resources_left(result: SessionResult, polluter: str | None) -> list[str]:
    """The polluter's own leaks: a pool, server or process it never stopped is often what
    the victim collided with, and the ledger only holds global settings."""
    record = result.records.get(polluter) if polluter else None
    leaks = [leak for leak in record.leaks if leak.kind in _LEFT_RUNNING] if record else []
    return [f"{polluter} also left running: {leak.detail}" for leak in leaks[:3]]


def _is_timeout(record: TestRecord) -> bool:
    timeout = record.evidence.timeout if record.evidence is not None else None
    fired = timeout is not None and timeout.fired
    return fired or (record.diagnosis is not None
                     and record.diagnosis.category is Category.TIMEOUT)


def leaked_resources(result: SessionResult) -> int:
    """Resources the main run left alive that could disturb isolated reruns."""
    count = sum(1 for record in result.records.values() for leak in record.leaks
                if leak.kind in _RESOURCE_KINDS)
    return count
