"""The diagnostic phase, run once after the session.

``refine`` reruns each diagnosed failure (inline and/or isolated), tallies a verdict, searches
the polluter of tests that fail in the suite but pass alone, re-classifies order-dependent
tests and appends suggestions quoting measured values. It never touches outcomes or the exit
status: it only replaces ``TestRecord.diagnosis``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pytest

from ..classify.pollution import failure_words
from ..guard import guarded
from ..model import (
    STABLE_ALONE,
    Attempt,
    Category,
    Diagnosis,
    LedgerEntry,
    RerunFacts,
    Suggestion,
    Verdict,
)
from .bisect import PolluterSearch, Search, named_in_failure
from .measures import fmt
from .measures import suggestions as measured
from .progress import DiagnosticProgress
from .reruns import (
    RAISE_FACTOR,
    batched,
    can_bound_inline,
    from_child,
    inline,
    inline_limit,
    isolated,
)
from .runner import Runner
from .verdict import Tally, suspect_order, tally, verdict

if TYPE_CHECKING:
    from ..model import SessionResult, TestRecord
    from ..settings import Settings
    from .cleaners import Cleaners
    from .noisy import Noisy

_RESOURCE_KINDS = ("process", "server", "socket", "listener", "pool")
_LEFT_RUNNING = (*_RESOURCE_KINDS, "thread")
_STARTUP_S = 2.0  # what starting one pytest subprocess with the plugin costs, about
# A cleaner is advice, not a verdict, and its group runs take most of the suite: all cleaner
# searches together get this share of the session's own duration (at least CLEANER_MIN_S).
CLEANER_SHARE = 0.25
CLEANER_MIN_S = 10.0
_SLACK_S = 30.0
_FAST_PATH_TRIES = 3  # rounds of suspects checked together (as in bisect.py's fast path)
_QUICK_TRIES = 1  # pair runs per victim before any victim's bisection starts
_UNITS_MIN = 3  # victims before their best suspects are checked together (two runs)


@dataclass
class _Context:
    config: pytest.Config
    settings: Settings
    result: SessionResult
    runner: Runner
    items: dict[str, pytest.Item]
    affected: int
    progress: DiagnosticProgress
    #: perf_counter() time the confirming run must end by; None: only the search budgets
    deadline: float | None = None
    #: mode of a batch attempt: "confirm" for the confirming run, "isolated" for --rerun rounds
    batch_mode: str = "isolated"
    #: polluter -> (the victim its cleaner search ran for, what it found)
    cleaned: dict[str, tuple[str, Cleaners]] = field(default_factory=dict)
    #: seconds every cleaner search together may still take (see CLEANER_SHARE)
    cleaner_left: float = float("inf")

    def left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.perf_counter()


def refine(session: pytest.Session, settings: Settings, result: SessionResult) -> str | None:
    """Rerun failed tests and search polluters; update result.records' diagnoses in place.

    Returns one line saying what ran and what it cost (None when nothing ran)."""
    victims = [r for r in result.records.values()
               if r.outcome in ("failed", "error") and r.diagnosis is not None]
    if not victims:
        return None
    skipped = _why_not(session, settings, result, victims)
    if skipped is not None:
        for record in victims:
            name_suspect(record)
        return skipped or None
    start = time.perf_counter()
    config = session.config
    rounds = settings.rerun or 1
    confirm = settings.rerun <= 0
    with DiagnosticProgress(config, rounds * (1 + len(victims)) + len(victims)) as progress:
        context = _Context(config, settings, result, Runner(config, settings, result.environ,
                                                                result.inherited),
                           {item.nodeid: item for item in session.items},
                           leaked_resources(result), progress,
                           start + settings.confirm_seconds if confirm else None,
                           "confirm" if confirm else "isolated")
        context.cleaner_left = max(CLEANER_MIN_S,
                                   CLEANER_SHARE * max(0.0, result.stop - result.start))
        attempts: dict[str, list[Attempt]] = {record.nodeid: [] for record in victims}
        for number in range(rounds):
            _round(context, victims, attempts, number, rounds)
        _second_look(context, victims, attempts)
        searchable = [r for r in victims if _searchable(context, tally(attempts[r.nodeid]))]
        hints = {r.nodeid: suspects(context, r) for r in searchable}
        begun = _ledger_pairs(context, searchable, hints)
        found = {nodeid: search for nodeid, search in begun.items() if search.polluter}
        # Every victim's best suspect gets its pair run before any bisection starts: one run
        # each, and most often the right one, where a bisection takes log2(N) runs.
        for record in sorted((r for r in searchable if r.nodeid not in found),
                             key=lambda r: len(candidates_before(result, r))):
            so_far = begun.get(record.nodeid)
            tried = so_far.tried if so_far is not None else []
            if set(hints[record.nodeid]) - set(tried) and context.left() > 1.0:
                begun[record.nodeid] = search = _search(
                    context, record, hints[record.nodeid], quick=len(tried) + _QUICK_TRIES,
                    begun=so_far)
                if search.polluter:
                    found[record.nodeid] = search
        # Cheapest searches first, so a time budget that runs out leaves the fewest open: the
        # victims a pair run confirmed already, then those with the fewest earlier tests.
        ranked = sorted(victims, key=lambda r: (r.nodeid not in found,
                                                len(candidates_before(result, r))))
        for record in ranked:
            _refine_one(context, record, attempts[record.nodeid], begun.get(record.nodeid),
                        hints.get(record.nodeid, ()))
            name_suspect(record)
    return _cost_line(context, victims, confirm, time.perf_counter() - start)


def _why_not(session: pytest.Session, settings: Settings, result: SessionResult,
             victims: list[TestRecord]) -> str | None:
    """Why no rerun runs at all ("" when off), or None when they run."""
    if settings.rerun > 0:
        return None
    if settings.confirm != "auto":
        return ""
    if result.exitstatus == pytest.ExitCode.INTERRUPTED or session.shouldstop:
        return "poolchaos: no confirming run: the session was interrupted"
    if all(r.outcome in ("failed", "error", "skipped") for r in result.records.values()):
        # Nothing passed, so no test's state can have made another fail: the run says it all.
        return "poolchaos: no confirming run: every test failed"
    expected = sum(r.duration_s for r in victims) + _STARTUP_S
    if expected > settings.confirm_seconds:
        return (f"poolchaos: no confirming run: the {len(victims)} failure(s) took "
                f"{expected:.0f} s, more than --poolchaos-confirm-seconds="
                f"{settings.confirm_seconds:g}")
    return None


def _round(context: _Context, victims: list[TestRecord], attempts: dict[str, list[Attempt]],
           number: int, rounds: int) -> None:
    """One rerun of every failure: inline where the mode asks, the rest in one batch."""
    settings = context.settings
    batch: list[TestRecord] = []
    for record in victims:
        item = context.items.get(record.nodeid)
        if settings.rerun > 0 and settings.rerun_mode in ("inline", "both") and \
                item is not None and not _is_timeout(record) and can_bound_inline():
            context.progress.show(record.nodeid, f"inline rerun {number + 1}/{rounds}")
            attempt = _inline(context, item, record)
            if attempt is not None:
                attempts[record.nodeid].append(attempt)
            context.progress.advance()
            if settings.rerun_mode == "inline":
                continue
        batch.append(record)
    if batch:
        _batch(context, batch, attempts, f"round {number + 1}/{rounds}")


@guarded(None)
def _inline(context: _Context, item: pytest.Item, record: TestRecord) -> Attempt | None:
    if context.left() <= 1.0:
        return None
    try:
        return inline(item, min(inline_limit(item, record.duration_s), context.left()))
    except pytest.exit.Exception:
        return None


def _batch(context: _Context, batch: list[TestRecord], attempts: dict[str, list[Attempt]],
           what: str) -> None:
    """All of ``batch`` in one fresh pytest subprocess, in their original order; a test the
    batch did not finish (a hang, a crash) runs alone, since its verdict is still open.

    A parametrized case that failed there after another case of the same test passed did
    not run without neighbours: the same code ran to its end just before it, leaving what an
    earlier case left in the suite's run (a module one of them imports, a slot one claims).
    Those run again, together, without it. (Another test that passed before a failure is no
    such sign: counting that failure out would make a test flaky on its own look like one
    that only fails after others.)"""
    if context.left() <= 1.0:
        return
    context.progress.show(f"{len(batch)} failure(s)", f"confirming run ({what}) of")
    limits = {r.nodeid: _limit(r) for r in batch}
    raised = {nodeid: limit * RAISE_FACTOR for nodeid, limit in limits.items() if limit}
    budget = sum(raised.get(r.nodeid, 0.0) + max(r.duration_s, 1.0) * 3 for r in batch)
    run = context.runner.run([r.nodeid for r in batch],
                             timeout=min(budget + _SLACK_S, context.left()),
                             raise_limit=raised or None)
    context.progress.advance()
    passed: dict[str, str] = {}  # test (without parameters) -> its first case that passed
    after: list[TestRecord] = []
    for record in batch:
        test = run.tests.get(record.nodeid)
        if test is None:
            if context.left() > 1.0:
                context.progress.show(record.nodeid, "isolated rerun of")
                attempts[record.nodeid].append(isolated(
                    context.runner, record.nodeid, record.duration_s, limits[record.nodeid],
                    context.affected, cap=context.left()))
            continue
        attempt = batched(context.batch_mode, test, limits[record.nodeid],
                          raised.get(record.nodeid), len(batch), context.affected)
        function = record.nodeid.partition("[")[0]
        sibling = passed.get(function)
        if sibling is not None and test.outcome in ("failed", "error"):
            attempt = replace(attempt, mode="pair", message=(
                f"after {sibling}, which passed in the same run: {attempt.message}")[:500])
            after.append(record)
        elif test.outcome == "passed" and function != record.nodeid:
            passed.setdefault(function, record.nodeid)
        attempts[record.nodeid].append(attempt)
    if after:
        _batch(context, after, attempts, what)


def _second_look(context: _Context, victims: list[TestRecord],
                 attempts: dict[str, list[Attempt]]) -> None:
    """Tests that passed without their neighbours but only once: one more batch, so a random
    flake is not taken for order dependence (that needs two passes without them)."""
    again = [r for r in victims
             if suspect_order(counts := tally(attempts[r.nodeid]))
             and counts.isolated_passes < STABLE_ALONE]
    if again:
        _batch(context, again, attempts, "second look")


def _searchable(context: _Context, counts: Tally) -> bool:
    return context.settings.bisect and suspect_order(counts) and \
        counts.isolated_passes >= STABLE_ALONE and context.left() > 1.0


@guarded({})
def _ledger_pairs(context: _Context, victims: list[TestRecord],
                  hints: dict[str, list[str]]) -> dict[str, Search]:
    """The victims' suspects checked together, in rounds of two runs: each round takes every
    open victim's best suspect not tried yet (see ``_suspects_round``), while at least
    ``_UNITS_MIN`` victims have one, for at most ``_FAST_PATH_TRIES`` rounds. Returns each
    victim's search so far (confirmed, or to go on with, its tried suspects recorded)."""
    begun: dict[str, Search] = {}
    for _ in range(_FAST_PATH_TRIES):
        turn: dict[str, str] = {}
        for record in victims:
            so_far = begun.get(record.nodeid)
            if so_far is not None and so_far.polluter:
                continue
            tried = so_far.tried if so_far is not None else []
            untried = [nodeid for nodeid in hints.get(record.nodeid, ()) if nodeid not in tried]
            if untried:
                turn[record.nodeid] = untried[0]
        if not _suspects_round(context, [r for r in victims if r.nodeid in turn], turn, begun):
            break
    return begun


def _suspects_round(context: _Context, victims: list[TestRecord], turn: dict[str, str],
                    begun: dict[str, Search]) -> bool:
    """Each victim's suspect ``turn[victim]`` checked for all victims in two runs.

    Victims sharing a suspect form a unit. Run A has each unit's suspect, then its victims;
    run B the same units with the suspect after its victims, so each victim runs after the
    same other units as in A but not after its own suspect. A victim that fails in A and
    passes in B failed because of its suspect: confirmed. For the others the suspect counts
    as tried. False when the round did not run: fewer than ``_UNITS_MIN`` victims (a pair
    run each costs no more) or no time left."""
    units: dict[str, list[TestRecord]] = {}
    for record in victims:
        units.setdefault(turn[record.nodeid], []).append(record)
    blamed = {r.nodeid for group in units.values() for r in group}
    units = {s: group for s, group in units.items() if s not in blamed}
    if sum(map(len, units.values())) < _UNITS_MIN or context.left() <= 1.0:
        return False
    ordered = sorted(units.items(), key=lambda unit: _position(context, unit[1][0]))
    first = [n for s, group in ordered for n in (s, *(r.nodeid for r in group))]
    second = [n for s, group in ordered for n in (*(r.nodeid for r in group), s)]
    expected = sum(context.result.records[n].duration_s for n in first)
    context.progress.show(f"{len(blamed)} victim(s)", "confirming the suspects of")
    after = context.runner.run(first, timeout=min(expected * 3 + _SLACK_S, context.left()),
                               light=True)
    # A victim the run never reached (killed, or the process ended in a suspect) did not
    # fail after its suspect: no answer, and the suspect counts as tried.
    failed = {r.nodeid for group in units.values() for r in group
              if r.nodeid in after.tests
              and after.result(r.nodeid).outcome in ("failed", "error")}
    without = context.runner.run(second, timeout=min(expected * 3 + _SLACK_S,
                                                     max(context.left(), 1.0)),
                                 light=True) if failed and context.left() > 1.0 else None
    for suspect, group in ordered:
        for record in group:
            test = after.result(record.nodeid)
            attempt = from_child("pair", test)
            others = len(first) - len(group) - 1
            attempt = replace(attempt, message=f"after {suspect}, in one run with {others} "
                              "other suspect(s) and victim(s)"
                              + (f": {attempt.message}" if attempt.message else ""))
            search = Search(attempts=[attempt], runs=1, seconds=after.seconds, tried=[suspect])
            if record.nodeid in failed and without is not None:
                control = without.result(record.nodeid)
                search.attempts.append(replace(from_child("pair", control), message=(
                    f"the same run with {suspect} after it: {control.outcome}")))
                search = replace(search, runs=2, seconds=after.seconds + without.seconds)
                if control.outcome == "passed":
                    ledger = record.evidence.pollution if record.evidence else ()
                    search = replace(search, method="ledger", polluter=suspect,
                                     reproduced=True,
                                     left_behind=[e for e in ledger if e.nodeid == suspect])
                # Failing without its suspect too: some other test of the run breaks it.
            begun[record.nodeid] = _then(begun.get(record.nodeid), search)
    return True


def _then(before: Search | None, search: Search) -> Search:
    """``search`` after the rounds of ``before``: their runs, time and tries add up."""
    if before is None:
        return search
    return replace(search, attempts=[*before.attempts, *search.attempts],
                   runs=before.runs + search.runs, seconds=before.seconds + search.seconds,
                   tried=[*before.tried, *search.tried])


def _position(context: _Context, record: TestRecord) -> int:
    return list(context.result.records).index(record.nodeid)


@guarded(None)
def _refine_one(context: _Context, record: TestRecord, attempts: list[Attempt],
                begun: Search | None = None, hints: Sequence[str] = ()) -> None:
    """``begun``: the victim's search so far (a pair run of its best suspect), finished or
    to go on with."""
    assert record.diagnosis is not None
    counts = tally(attempts)
    noisy = _noisy(context, record, counts)
    if noisy is not None and noisy.load_sensitive:
        # It fails alone under noise: load is the cause, no earlier test is (and passing
        # every quiet rerun alone must not read as order-dependent).
        search: Search | None = Search(reproduced=False)
    elif begun is not None and begun.polluter:
        search = begun
    elif _searchable(context, counts):
        search = _search(context, record, hints, begun=begun)
    elif begun is not None:
        # The budget ran out after the pair run(s): the range is still every earlier test.
        search = replace(begun, method="exhausted",
                         narrowest=candidates_before(context.result, record))
    else:
        search = None
    record.diagnosis = _conclude(context, record, counts, attempts, search)
    if search is not None and record.diagnosis.polluter and context.deadline is None:
        # Not in the confirming run: a cleaner is advice, not a verdict, and the default
        # run's cost must stay small.
        record.diagnosis = _with_cleaners(context, record, record.diagnosis, search)
    if noisy is not None:
        from .noisy import apply

        record.diagnosis = apply(noisy, record.diagnosis, record.evidence)


def _limit(record: TestRecord) -> float | None:
    if not _is_timeout(record) or record.evidence is None or record.evidence.timeout is None:
        return None
    return record.evidence.timeout.seconds


def name_suspect(record: TestRecord) -> None:
    """A config-pollution diagnosis whose evidence names an earlier test names it as polluter.

    Only when no rerun showed the test failing alone or at random: a test flaky on its own
    never gets a polluter."""
    diagnosis, evidence = record.diagnosis, record.evidence
    if diagnosis is None or evidence is None or not diagnosis.reasons or diagnosis.polluter or \
            diagnosis.polluter_search or diagnosis.category is not Category.CONFIG_POLLUTION or \
            diagnosis.verdict in (Verdict.FLAKY, Verdict.DETERMINISTIC):
        return
    # The winning rule's first line names the earlier test it blames; later lines may only
    # list other outstanding changes.
    for entry in evidence.pollution:
        if entry.nodeid != record.nodeid and entry.nodeid in diagnosis.reasons[0]:
            record.diagnosis = diagnosis.evolve(
                polluter=entry.nodeid,
                polluter_search={"method": "suspect", "runs": 0, "seconds": 0.0})
            return


def _cost_line(context: _Context, victims: list[TestRecord], confirm: bool,
               seconds: float) -> str:
    verdicts = [r.diagnosis.verdict for r in victims if r.diagnosis is not None]
    counted = {v: verdicts.count(v) for v in Verdict if verdicts.count(v)}
    told = ", ".join(f"{n} {v.value}" for v, n in counted.items())
    what = ("confirming run" if confirm
            else f"{context.settings.rerun} rerun round(s) ({context.settings.rerun_mode})")
    return (f"poolchaos: {what} of {len(victims)} failure(s): {context.runner.runs} pytest "
            f"subprocess run(s), {seconds:.1f} s; {told or 'no verdict'}")


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


def _search_inputs(context: _Context, record: TestRecord) -> tuple[
        list[str], Sequence[LedgerEntry], str]:
    evidence = record.evidence
    text = "\n".join(filter(None, [failure_words(evidence) if evidence else "",
                                    record.longrepr]))
    return (candidates_before(context.result, record),
            evidence.pollution if evidence else (), text)


def _search(context: _Context, record: TestRecord, hints: Sequence[str] = (),
            quick: int | None = None, begun: Search | None = None) -> Search:
    candidates, ledger, text = _search_inputs(context, record)
    if not candidates:
        return Search(reproduced=False)
    context.progress.show(record.nodeid, "searching the polluter of")
    durations = {nodeid: r.duration_s for nodeid, r in context.result.records.items()}
    finder = PolluterSearch(context.runner, context.settings.bisect_budget,
                            min(context.settings.bisect_seconds, context.left()), durations,
                            begun, crash=record.longrepr)
    modules = list(dict.fromkeys(nodeid.split("::", 1)[0]
                                 for nodeid in context.result.records))
    return finder.find(record.nodeid, candidates, ledger, text, hints, quick, modules)


def suspects(context: _Context, record: TestRecord) -> list[str]:
    """Earlier tests worth a pair run before any bisection, best first: those whose leftovers
    the failure text names (latest first: the last change of a key is the one that held),
    the one the diagnosis blames, then the victim's own module's tests that left a change in
    the ledger or a resource running, latest first. Only tests that ran before the victim
    in its process."""
    candidates, ledger, text = _search_inputs(context, record)
    if not candidates:
        return []
    order = {nodeid: index for index, nodeid in enumerate(candidates)}
    records = context.result.records
    leakers = [nodeid for nodeid in candidates
               if any(leak.kind in _RESOURCE_KINDS for leak in records[nodeid].leaks)]
    known = sorted({entry.nodeid for entry in ledger if entry.nodeid in order} | set(leakers),
                   key=order.__getitem__, reverse=True)
    # The winning rule's first line names the test it blames; later lines may only list
    # other outstanding changes.
    reasons = record.diagnosis.reasons if record.diagnosis is not None else ()
    blamed = [nodeid for nodeid in known if reasons and nodeid in reasons[0]]
    module = record.nodeid.split("::", 1)[0]
    local = [nodeid for nodeid in known if nodeid.split("::", 1)[0] == module]
    return list(dict.fromkeys([*named_in_failure(candidates, ledger, text), *blamed, *local]))


def _with_cleaners(context: _Context, record: TestRecord, diagnosis: Diagnosis,
                   search: Search) -> Diagnosis:
    """Look for a cleaner of an order-dependent test on what is left of the budgets."""
    from .cleaners import CleanerSearch, advice, related_tests

    polluter = diagnosis.polluter
    assert polluter is not None
    records = context.result.records
    runs_left = context.settings.bisect_budget - search.runs
    seconds_left = min(context.settings.bisect_seconds - search.seconds, context.left(),
                       context.cleaner_left)
    if runs_left <= 0 or seconds_left <= 0:
        return diagnosis.evolve(reasons=(*diagnosis.reasons,
                                          "no budget left to search for a cleaner"))
    # The tests that ran between the polluter and the victim in the suite did not clean it
    # (it failed after them): only the others can.
    between = set(candidates_before(context.result, record)) - set(
        candidates_before(context.result, records[polluter])) if polluter in records else set()
    candidates = [nodeid for nodeid in records
                  if nodeid not in (polluter, record.nodeid) and nodeid not in between]
    related = related_tests(search.left_behind,
                            {nodeid: records[nodeid].leaks for nodeid in candidates})
    lines: list[str] = []
    if polluter in context.cleaned:
        # Victims of one polluter share what resets it: one search per polluter.
        first, found = context.cleaned[polluter]
        lines.append(f"cleaner search ran once for {polluter}'s victims (with {first})")
        found = replace(found, attempts=[])
    else:
        context.progress.show(record.nodeid, "searching a cleaner for")
        durations = {nodeid: r.duration_s for nodeid, r in records.items()}
        found = CleanerSearch(context.runner, runs_left, seconds_left, durations).find(
            polluter, record.nodeid, candidates, related)
        context.cleaner_left -= found.seconds
        context.cleaned[polluter] = (record.nodeid, found)
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

        record.evidence = replace(record.evidence, reruns=RerunFacts(
            found, polluter, counts.isolated_runs, counts.isolated_passes,
            collected=search is not None and search.collected))
        diagnosis = classify(context.config, record.evidence, context.settings)
    lines = [*diagnosis.reasons, _rerun_line(counts, attempts),
             *_search_lines(search, found),
             *_resources_left(context.result, polluter)]
    advice = [*diagnosis.suggestions,
              *measured(diagnosis.category, record.evidence, attempts)]
    return diagnosis.evolve(
        verdict=found, pass_rate=counts.pass_rate, reruns=counts.runs, polluter=polluter,
        polluter_search=search.to_json() if search is not None and search.runs else None,
        attempts=tuple(attempts + (search.attempts if search is not None else [])),
        reasons=tuple(dict.fromkeys(lines)), suggestions=tuple(advice))


def _rerun_line(counts: Tally, attempts: Sequence[Attempt] = ()) -> str:
    parts = []
    if counts.inline_runs:
        parts.append(f"{counts.inline_passes}/{counts.inline_runs} in this process")
    if counts.isolated_runs:
        parts.append(f"{counts.isolated_passes}/{counts.isolated_runs} alone")
    # A rerun of a timeout runs with its limit raised: one that finished, but later than the
    # limit, did not pass under it, and says so rather than reading as a plain failure.
    late = [a.duration_s for a in attempts
            if a.outcome == "passed" and a.values.get("over_limit")]
    over = f" ({len(late)} finished only with the limit raised, in up to {fmt(max(late))} s)" \
        if late else ""
    return f"reran {counts.runs} time(s): passed {', '.join(parts) or 'never'}{over}"


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
    if search.collected:
        return [f"no earlier test reproduces the failure, the run's test modules collected "
                f"with it do, none of their tests run ({cost}): importing one of them changes "
                f"what it uses (a name registered twice, a default or a patch made at import)"]
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
