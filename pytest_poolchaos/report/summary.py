"""Plain phrases and rows shared by the terminal, Markdown and annotation reporters.

Pure functions of a SessionResult: no rich, no pytest, so the one-line case and the Markdown
file cost nothing beyond string formatting, and every wording lives in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..sanitize import printable, redact_text, visible

if TYPE_CHECKING:
    from ..model import Diagnosis, SessionResult, TestRecord

__all__ = [
    "clean_line",
    "counts_phrase",
    "failures",
    "first_suggestion",
    "leak_rows",
    "near_timeout_rows",
    "next_step",
    "plural",
    "polluter_phrase",
    "rerun_cost",
    "safe",
    "shorten",
    "slower_rows",
    "verdict_phrase",
]


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {many or word + 's'}"


def _hanging_processes(result: SessionResult) -> int:
    """How many of the lines about what would hang exit name a process (the exit guard
    writes 'thread ...' or 'process ...')."""
    return sum(1 for line in result.hanging if line.startswith("process "))


def hanging_title(result: SessionResult) -> str:
    """The heading over what would hang interpreter exit."""
    if _hanging_processes(result):
        return "threads and processes that hang interpreter exit"
    return "threads that hang interpreter exit"


def safe(text: str, result: SessionResult, styled: bool = False) -> str:
    """Texts are redacted where they are made; this is the second lock on the door. Control
    characters a test's output carried are shown as escapes, except in ``styled`` text: the
    terminal report, whose styling is escape sequences and whose pieces were made visible
    one by one."""
    shown = printable(redact_text(text, result.environ))
    return shown if styled else visible(shown)


def failures(result: SessionResult) -> list[tuple[TestRecord, Diagnosis]]:
    """Diagnosed failures in the order the tests ran (a test that passed on retry is none:
    its flaky verdict is in the JSON report and a line of its own)."""
    return [(r, r.diagnosis) for r in result.records.values()
            if r.diagnosis is not None and r.outcome in ("failed", "error")]


def leak_count(result: SessionResult) -> tuple[int, int]:
    """(leaks, tests that leaked)."""
    leaky = [r for r in result.records.values() if r.leaks]
    return sum(len(r.leaks) for r in leaky), len(leaky)


def clean_line(result: SessionResult) -> str | None:
    """The whole report when there is nothing to say, else None."""
    if result.problems or result.hanging or any(
            r.diagnosis is not None or r.leaks or r.near_timeout for r in result.records.values()):
        return None
    if slower_rows(result):
        return None
    return f"poolchaos: {plural(len(result.records), 'test')}, no failures, no leaks"


def category_counts(result: SessionResult) -> list[tuple[str, int]]:
    """Non-zero counts per category, in the Category enum's order."""
    from ..model import Category

    counts = result.by_category()
    return [(c.value, counts[c.value]) for c in Category if counts.get(c.value)]


def counts_phrase(result: SessionResult) -> str:
    """``12 tests, 2 failures (1 timeout, 1 expectation), 3 leaks in 2 tests, ...``."""
    parts = [plural(len(result.records), "test")]
    diagnosed = failures(result)
    if diagnosed:
        per = ", ".join(f"{n} {name}" for name, n in category_counts(result))
        parts.append(f"{plural(len(diagnosed), 'failure')} ({per})")
    else:
        parts.append("no failures")
    leaks, leaky = leak_count(result)
    parts.append(f"{plural(leaks, 'leak')} in {plural(leaky, 'test')}" if leaks else "no leaks")
    if near := len(near_timeout_rows(result)):
        parts.append(plural(near, "near-timeout"))
    if slow := len(slower_rows(result)):
        parts.append(f"{slow} slower than their history")
    if result.hanging:
        processes = _hanging_processes(result)
        threads = len(result.hanging) - processes
        held = [plural(threads, "thread")] if threads else []
        held += [plural(processes, "process", "processes")] if processes else []
        parts.append(f"{' and '.join(held)} hanging exit")
    if result.problems:
        parts.append(plural(len(result.problems), "plugin problem"))
    return ", ".join(parts)


def verdict_phrase(diagnosis: Diagnosis) -> str:
    if diagnosis.reruns <= 0:
        if diagnosis.verdict.value == "flaky":  # told by the history store
            return "flaky by its history (not rerun)"
        return "verdict unknown (not rerun)"
    text = f"{diagnosis.verdict.value}"
    if diagnosis.pass_rate is not None:
        passed = round(diagnosis.pass_rate * diagnosis.reruns)
        text += f", passed {passed} of {plural(diagnosis.reruns, 'rerun')}"
    else:
        text += f" after {plural(diagnosis.reruns, 'rerun')}"
    return text


def short_verdict(diagnosis: Diagnosis) -> str:
    if diagnosis.verdict.value == "unknown" or diagnosis.reruns <= 0:
        return diagnosis.verdict.value
    rate = "" if diagnosis.pass_rate is None else f" ({diagnosis.pass_rate:.0%} passed)"
    return f"{diagnosis.verdict.value}{rate}"


def polluter_phrase(diagnosis: Diagnosis) -> str | None:
    search: Mapping[str, Any] = diagnosis.polluter_search or {}
    cost = _search_cost(search)
    if diagnosis.polluter:
        return f"{diagnosis.polluter}" + (f" (found by {cost})" if cost else "")
    narrowest = list(search.get("narrowest") or ())
    if narrowest:
        shown = ", ".join(narrowest[:3]) + (" ..." if len(narrowest) > 3 else "")
        return f"not found, budget ran out after {cost}; narrowest: {shown}"
    return None


def _search_cost(search: Mapping[str, Any]) -> str:
    if not search:
        return ""
    method = search.get("method", "search")
    runs, seconds = search.get("runs", 0), search.get("seconds", 0.0)
    return f"{method}, {plural(int(runs), 'run')}, {float(seconds):.1f} s"


def first_suggestion(diagnosis: Diagnosis, limit: int | None = None) -> str:
    text = diagnosis.suggestions[0].text if diagnosis.suggestions else ""
    return shorten(text, limit) if limit else text


def shorten(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters, cut at a word when possible."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[: max(1, limit - 3)]
    # Never in the middle of a word: a node id or a call stays whole or goes.
    if line[len(cut)] != " " and " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "..."


def leak_rows(result: SessionResult) -> list[tuple[str, str, str]]:
    """(test, kind, detail) for every leak, passing tests included."""
    return [(record.nodeid, leak.kind, safe(leak.detail, result))
            for record in result.records.values() for leak in record.leaks]


def near_timeout_rows(result: SessionResult) -> list[tuple[str, float, float]]:
    """(test, duration, limit) of passing tests that used most of their timeout."""
    return [(r.nodeid, r.duration_s, r.timeout_s or 0.0)
            for r in result.records.values() if r.near_timeout]


def slower_rows(result: SessionResult) -> list[tuple[str, float, float, float]]:
    """(test, duration, p50, p95) of tests that took well past their recorded baseline."""
    return [(r.nodeid, r.duration_s, float(r.history["p50_s"]), float(r.history["p95_s"]))
            for r in result.records.values() if r.history and r.history.get("slower")]


# -- what to do next ---------------------------------------------------------------------------

PROVE_RERUNS = 3  # the rerun count the next-step line proposes
_STARTUP_S = (1.5, 10.0)  # bounds on one pytest subprocess (start-up, collection, exit)


def next_step(result: SessionResult) -> str:
    """The one thing to do next, built from this run: prove open verdicts, else the first fix."""
    diagnosed = failures(result)
    open_ = [(r, d) for r, d in diagnosed if d.reruns <= 0 and d.verdict.value == "unknown"]
    if open_:
        return _prove(result, open_)
    if diagnosed:
        return _first_fix(diagnosed)
    leaky = [r for r in result.records.values() if r.leaks]
    if leaky:
        first = leaky[0]
        return (f"next: make {first.nodeid} {_undo(first)} "
                f"({plural(len(first.leaks), 'leak')}); --poolchaos-leaks=fail would then keep "
                f"new leaks from coming back.")
    near = near_timeout_rows(result)
    if near:
        nodeid, duration, limit = near[0]
        return (f"next: {nodeid} used {duration:.2f} s of its {limit:g} s timeout; find what "
                f"makes it slow before it starts failing.")
    return "next: nothing to fix in this run."


#: leak kinds that are something left running or open; the others are changed state
_RUNNING = frozenset({"thread", "process", "pool", "socket", "fd", "file", "db-connection",
                      "asyncio-task", "server", "listener"})


def _undo(record: TestRecord) -> str:
    """What the leaking test should do: stop what it started, put back what it changed."""
    running = {leak.kind in _RUNNING for leak in record.leaks}
    if running == {True}:
        return "stop what it starts in its teardown"
    if running == {False}:
        return "put back what it changes (monkeypatch, or its teardown)"
    return "stop what it starts and put back what it changes in its teardown"


def _prove(result: SessionResult, open_: list[tuple[TestRecord, Diagnosis]]) -> str:
    runs, seconds = rerun_cost(result, [r for r, _ in open_], PROVE_RERUNS)
    which = "the open verdict" if len(open_) == 1 else f"the {len(open_)} open verdicts"
    return (f"next: --poolchaos-rerun={PROVE_RERUNS} would prove {which} (flaky, "
            f"deterministic or order-dependent) and name polluters: about "
            f"{plural(runs, 'rerun')}, roughly {_seconds(seconds)}.")


def rerun_cost(result: SessionResult, records: list[TestRecord], reruns: int
               ) -> tuple[int, float]:
    """(reruns, seconds) ``--poolchaos-rerun=reruns`` in its default mode (``both``) would
    take: inline reruns in this process, isolated ones in a fresh pytest each; a timeout is
    rerun isolated only, with its limit raised threefold."""
    startup = _startup_s(result)
    order = list(result.records)
    runs, seconds = 0, 0.0
    for record in records:
        diagnosis = record.diagnosis
        if diagnosis is not None and diagnosis.category.value == "timeout":
            limit = record.timeout_s or record.duration_s
            runs += reruns
            seconds += reruns * (startup + 3 * limit)
        else:
            runs += 2 * reruns
            seconds += reruns * (2 * record.duration_s + startup)
        if record.evidence is not None and record.evidence.pollution:
            # Earlier tests' changes were in effect: a polluter search of about log2(n)
            # runs, each a subprocess running the candidates before it and the test.
            before = order[:order.index(record.nodeid)] if record.nodeid in order else []
            steps = max(1, len(before)).bit_length()
            spent = sum(result.records[n].duration_s for n in before) / 2
            runs += steps
            seconds += steps * (startup + spent + record.duration_s)
    return runs, seconds


def _startup_s(result: SessionResult) -> float:
    """What this run spent outside its tests (start-up, collection): one subprocess's cost."""
    if not result.stop:  # still running (a report drawn before the session closed)
        return 1.0
    spent = result.stop - result.start - sum(r.duration_s for r in result.records.values())
    low, high = _STARTUP_S
    return min(high, max(low, spent))


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def _first_fix(diagnosed: list[tuple[TestRecord, Diagnosis]]) -> str:
    polluted = [(r, d) for r, d in diagnosed if d.polluter]
    if polluted:
        polluter = polluted[0][1].polluter
        victims = sum(1 for _, d in diagnosed if d.polluter == polluter)
        return (f"next: fix {polluter} first: it leaves behind what breaks "
                f"{plural(victims, 'later test')}.")
    order = {"deterministic": 0, "order-dependent": 1, "flaky": 2, "unknown": 3}
    number, (record, diagnosis) = min(
        enumerate(diagnosed, 1),
        key=lambda item: (order.get(item[1][1].verdict.value, 3), -item[1][1].confidence))
    fix = first_suggestion(diagnosis, 100)
    return (f"next: start with {number}. {record.nodeid} ({diagnosis.verdict.value} "
            f"{diagnosis.category.value})" + (f": {fix}" if fix else "."))
