"""Plain phrases and rows shared by the terminal, Markdown and annotation reporters.

Pure functions of a SessionResult: no rich, no pytest, so the one-line case and the Markdown
file cost nothing beyond string formatting, and every wording lives in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..sanitize import printable, redact_text

if TYPE_CHECKING:
    from ..model import Diagnosis, SessionResult, TestRecord

__all__ = [
    "clean_line",
    "counts_phrase",
    "failures",
    "first_suggestion",
    "leak_rows",
    "near_timeout_rows",
    "plural",
    "polluter_phrase",
    "safe",
    "shorten",
    "slower_rows",
    "verdict_phrase",
]


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def safe(text: str, result: SessionResult) -> str:
    """Texts are redacted where they are made; this is the second lock on the door."""
    return printable(redact_text(text, result.environ))


def failures(result: SessionResult) -> list[tuple[TestRecord, Diagnosis]]:
    """Diagnosed failures in the order the tests ran."""
    return [(r, r.diagnosis) for r in result.records.values() if r.diagnosis is not None]


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
        parts.append(f"{plural(len(result.hanging), 'thread')} hanging exit")
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
    if " " in cut[limit // 2:]:
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
