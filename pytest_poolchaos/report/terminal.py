"""The ``poolchaos`` section of pytest's terminal summary.

A green run costs one line and no rich import. Otherwise ``render`` draws the section with
rich into a string (a pure function of the result and the view, so it is tested without a
pytest run) and the terminal reporter writes it, so capture, pytester and ``--color`` apply.

Lines are broken here, at spaces only, never by rich: a node id, a path or a patch target is
one word and stays whole (longer than the terminal, it gets a line of its own), so it can be
copied out of a CI log. The section is printed from pytest_terminal_summary, so it comes after
FAILURES and before pytest's "short test summary info" and stats line, which stay last.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import pytest

from .. import guard
from ..history.stats import history_phrase
from ..sanitize import visible
from . import summary
from .summary import safe, shorten

if TYPE_CHECKING:
    from rich.text import Text

    from ..model import Diagnosis, SessionResult, TestRecord

__all__ = ["View", "render", "view_of"]

STYLE = {
    "timeout": "yellow",
    "expectation": "magenta",
    "lifecycle": "red",
    "config-pollution": "cyan",
    "mock-gap": "blue",
    "race": "dark_orange",
    "unclassified": "white",
}
#: Failures whose cause may lie in what ran at the same time: their neighbours always matter.
TIMING = ("timeout", "race")
EVIDENCE_SHOWN = 3  # default verbosity; -v shows every line
ALONGSIDE_SHOWN = 3
ROWS_SHOWN = 20  # leak and near-timeout tables; -v shows every row
INDENT = 4
ATTEMPT_CHARS = 160
MIN_ROOM = 24  # narrower than this, text is laid out as if it had this much room
_WORD = re.compile(r"\S+\s*")


class View:
    """How to draw: pytest's verbosity, the terminal's width and whether to use colour."""

    __slots__ = ("color", "verbosity", "width")

    def __init__(self, verbosity: int = 0, width: int = 80, color: bool = False) -> None:
        self.verbosity = verbosity
        self.width = width
        self.color = color

    @property
    def verbose(self) -> bool:
        return self.verbosity > 0

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0


def view_of(config: pytest.Config, terminalreporter: pytest.TerminalReporter) -> View:
    writer = terminalreporter._tw
    # hasmarkup already folds --color, NO_COLOR/FORCE_COLOR and isatty together.
    color = bool(getattr(writer, "hasmarkup", config.getoption("color") == "yes"))
    return View(config.get_verbosity(), max(40, int(writer.fullwidth)), color)


def render(result: SessionResult, view: View) -> str:
    """The section below its ``=== poolchaos ===`` rule, as text (ANSI only when coloured)."""
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, width=view.width, force_terminal=view.color,
                      no_color=not view.color, color_system="standard" if view.color else None,
                      highlight=False, markup=False, emoji=False, legacy_windows=False,
                      force_jupyter=False, force_interactive=False)
    for line in _lines(result, view):
        # soft_wrap: the line is already broken where it may be; rich must not fold it again.
        console.print(line, soft_wrap=True)
    return "".join(line.rstrip(" \t") + "\n" for line in out.getvalue().splitlines())


def _lines(result: SessionResult, view: View) -> Iterator[Text]:
    yield from _wrap(_text(f"poolchaos: {summary.counts_phrase(result)}", "bold"), view.width)
    if view.quiet:
        yield from _quiet_lines(result, view)
    else:
        for number, (record, diagnosis) in enumerate(summary.failures(result), 1):
            yield from _block(number, record, diagnosis, result, view)
        yield from _leaks(result, view)
        yield from _near_timeouts(result, view)
        yield from _slower(result, view)
        yield from _listing(summary.hanging_title(result), result.hanging, "yellow",
                            result, view)
    yield from _listing("plugin problems (bugs in poolchaos, not in your tests)",
                        result.problems, "red", result, view)
    if not view.quiet:
        yield _text("")
    yield from _wrap(_text(safe(summary.next_step(result), result), "bold"), view.width)


# -- laying out ---------------------------------------------------------------------------------


def _wrap(text: Text, width: int, indent: int = 0, hang: int = 0) -> list[Text]:
    """``text`` broken at spaces to fit ``width`` after ``indent`` (continuation lines are
    indented ``hang`` more); a word longer than the room is never cut."""
    lines: list[Text] = []
    for paragraph in text.split("\n", allow_blank=True):
        plain, cuts, start = paragraph.plain, [], 0
        room = max(MIN_ROOM, width - indent - (hang if lines else 0))
        for word in _WORD.finditer(plain):
            if word.start() > start and len(plain[start:word.end()].rstrip()) > room:
                cuts.append(word.start())
                start = word.start()
                room = max(MIN_ROOM, width - indent - hang)
        pieces = paragraph.divide(cuts) if cuts else [paragraph]
        for index, piece in enumerate(pieces):
            piece.rstrip()
            lines.append(_text(" " * (indent + (hang if index or lines else 0))) + piece)
    return lines or [_text("")]


def _numbered(title: str, items: Sequence[tuple[str, str]], result: SessionResult,
              view: View) -> list[Text]:
    if not items:
        return []
    out = [_text(" " * INDENT + title, "underline")]
    for number, (text, detail) in enumerate(items, 1):
        mark = f"{number}. "
        body = _text(" " * (INDENT + 2) + mark) + _text(safe(text, result))
        hang = INDENT + 2 + len(mark)
        out += _wrap(body, view.width, 0, hang)
        if detail:
            out += _wrap(_text(safe(detail, result), "cyan"), view.width, hang, 0)
    return out


# -- the parts ---------------------------------------------------------------------------------


def _quiet_lines(result: SessionResult, view: View) -> Iterator[Text]:
    for record, diagnosis in summary.failures(result):
        category = diagnosis.category.value
        # One line per failure, never broken: the node id stays whole for copying. When it
        # leaves no room for the category, the category goes on an indented line of its own
        # rather than past the terminal's edge, where the terminal would cut it anywhere.
        lead = record.nodeid + " "
        if len(lead) + len(category) + 5 > view.width:
            yield _text(record.nodeid)
            lead = " " * INDENT
        head = f"{lead}{category} {diagnosis.confidence:.2f}"
        room = view.width - len(head) - 7
        fix = summary.first_suggestion(diagnosis, room) if room >= 12 else ""
        fix = fix if len(fix.split()) >= 3 else ""  # "In..." says nothing
        line = _text(head + (f"  fix: {safe(fix, result)}" if fix else ""))
        line.stylize(STYLE.get(category, ""), len(lead), len(lead) + len(category))
        yield line


def _block(number: int, record: TestRecord, diagnosis: Diagnosis, result: SessionResult,
           view: View) -> Iterator[Text]:
    yield _text("")
    yield _text(f"{number}. {record.nodeid}", "bold")
    category = diagnosis.category.value
    head = _text(" " * INDENT)
    head.append(category, f"bold {STYLE.get(category, '')}")
    head.append(f"  confidence {diagnosis.confidence:.2f}  {summary.verdict_phrase(diagnosis)}")
    yield from _wrap(head, view.width, 0, INDENT)
    if (history := history_phrase(record.history)) is not None:
        yield from _wrap(_text(f"history: {history}"), view.width, INDENT)
    if (polluter := summary.polluter_phrase(diagnosis)) is not None:
        yield from _wrap(_text(f"polluter: {safe(polluter, result)}", "bold"), view.width,
                         INDENT)
    evidence = diagnosis.reasons if view.verbose else diagnosis.reasons[:EVIDENCE_SHOWN]
    yield from _numbered("evidence", [(e, "") for e in evidence], result, view)
    if hidden := len(diagnosis.reasons) - len(evidence):
        yield _text(" " * (INDENT + 2) + f"(+{hidden} more with -v)", "dim")
    fixes = [(s.text, s.detail) for s in diagnosis.suggestions]
    yield from _numbered("suggestions", fixes, result, view)
    yield from _alongside(record, diagnosis, result, view)
    if view.verbose:
        yield from _verbose_parts(record, diagnosis, result, view)


def _alongside(record: TestRecord, diagnosis: Diagnosis, result: SessionResult,
               view: View) -> Iterator[Text]:
    """Tests on other workers that overlapped the failure. By default only those that matter:
    all of them for a timing-related failure, else the ones that touched what it touched."""
    others = result.alongside.get(record.nodeid, [])
    if view.verbose:
        shown = list(others)
    elif timing_related(record, diagnosis):
        shown = others[:ALONGSIDE_SHOWN]
    else:
        shared = touched(record, result)
        shown = [o for o in others if o[0] in shared][:ALONGSIDE_SHOWN]
    if not shown:
        return
    yield _text(" " * INDENT + "ran alongside (overlap, other worker, test)", "underline")
    for nodeid, worker, overlap in shown:
        # The node id last: it runs on whole rather than pushing the numbers to a new line.
        yield from _wrap(_text(f"{overlap:.2f} s on {worker or '?'}  {nodeid}"),
                         view.width, INDENT + 2, 2)
    if len(others) > len(shown):
        yield _text(" " * (INDENT + 2) + f"(+{len(others) - len(shown)} more with -v)", "dim")


def timing_related(record: TestRecord, diagnosis: Diagnosis) -> bool:
    """A timeout or race, a flaky failure, or a bound missed by a test that ran something
    concurrently: what ran beside it may be why. A count off in code that started nothing
    is not."""
    category = diagnosis.category.value
    if category in TIMING or diagnosis.verdict.value == "flaky":
        return True
    return category == "expectation" and bool(record.evidence and record.evidence.spawned)


def touched(record: TestRecord, result: SessionResult) -> set[str]:
    """Node ids of tests that left behind something of what this failure met: a global in
    the ledger it saw, a leaked resource of the same key, or its polluter."""
    evidence, diagnosis = record.evidence, record.diagnosis
    names: set[str] = set()
    keys = {leak.key or leak.detail for leak in record.leaks}
    if evidence is not None:
        names.update(entry.nodeid for entry in evidence.pollution)
        keys.update(f"{entry.kind}:{entry.key}" for entry in evidence.pollution)
        keys.update(leak.key or leak.detail for leak in evidence.leaks)
    if diagnosis is not None and diagnosis.polluter:
        names.add(diagnosis.polluter)
    for other in result.records.values():
        if other is not record and any((leak.key or leak.detail) in keys
                                       for leak in other.leaks):
            names.add(other.nodeid)
    return names


def _verbose_parts(record: TestRecord, diagnosis: Diagnosis, result: SessionResult,
                   view: View) -> Iterator[Text]:
    if diagnosis.attempts:
        yield _text(" " * INDENT + "reruns", "underline")
        yield from _attempts(diagnosis, result, view)
    if diagnosis.rules:
        fired = ", ".join(f"{rule.id} ({rule.score:.2f})" for rule in diagnosis.rules)
        yield from _wrap(_text(f"rules: {fired}", "dim"), view.width, INDENT, 2)
    if timeline := _timeline(result, record.nodeid, view.width - INDENT):
        yield _text(" " * INDENT + "timeline", "underline")
        for line in timeline.splitlines():
            yield _text(" " * INDENT + line)


def _attempts(diagnosis: Diagnosis, result: SessionResult, view: View) -> Iterator[Text]:
    rows = [(a.mode, a.outcome, f"{a.duration_s:.2f} s", a) for a in diagnosis.attempts]
    mode_w = max(len(r[0]) for r in rows)
    outcome_w = max(len(r[1]) for r in rows)
    time_w = max(len(r[2]) for r in rows)
    for mode, outcome, duration, attempt in rows:
        # The first line names the failure; the whole message is in the JSON report.
        first = attempt.message.strip().splitlines()[0] if attempt.message.strip() else ""
        prefix = f"{mode:<{mode_w}} {outcome:<{outcome_w}} {duration:>{time_w}} "
        body = _text(" " * (INDENT + 2) + prefix + shorten(safe(first, result), ATTEMPT_CHARS))
        hang = INDENT + 2 + len(prefix)
        yield from _wrap(body, view.width, 0, hang)
        if attempt.values:
            numbers = " ".join(f"{k}={_number(v)}" for k, v in attempt.values.items())
            yield from _wrap(_text(numbers, "dim"), view.width, hang)


def _number(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


@guard.guarded("")
def _timeline(result: SessionResult, nodeid: str, width: int) -> str:
    try:
        from .timeline import render_timeline
    except ImportError:  # an older or trimmed install: the rest of the block still stands
        return ""
    return render_timeline(result, nodeid, width)


#: Leaks that trouble no other test (a regular file's descriptor dies with the process): one
#: summary line by default, listed with -v.
QUIET_KINDS = ("file",)


def _leaks(result: SessionResult, view: View) -> Iterator[Text]:
    rows: list[tuple[str, str, str]] = []
    quiet: list[tuple[str, str, str]] = []
    for row in summary.leak_rows(result):
        (quiet if row[1] in QUIET_KINDS and not view.verbose else rows).append(row)
    if not rows:
        yield from _quiet_leaks(quiet)
        return
    shown = rows if view.verbose else rows[:ROWS_SHOWN]
    # Grouped under each test rather than a table: test ids and details are both long.
    yield _text("")
    yield _text("leaks (left behind after teardown)", "bold")
    by_test: dict[str, list[tuple[str, str]]] = {}
    for nodeid, kind, detail in shown:
        by_test.setdefault(nodeid, []).append((kind, detail))
    kind_w = max(7, *(len(kind) for _, kind, _ in shown))
    for nodeid, leaks in by_test.items():
        yield _text("  " + nodeid, "bold")
        for kind, detail in leaks:
            yield from _wrap(_text(f"    {kind:<{kind_w}}  {detail}"), view.width, 0,
                             4 + kind_w + 2)
    if len(rows) > len(shown):
        yield _text(f"  … {len(rows) - len(shown)} more (-v shows all)", "dim")
    yield from _quiet_leaks(quiet)


def _quiet_leaks(quiet: list[tuple[str, str, str]]) -> Iterator[Text]:
    if quiet:
        tests = len({nodeid for nodeid, _, _ in quiet})
        yield _text("")
        yield _text(f"  {len(quiet)} regular file descriptor(s) left open by {tests} test(s): "
                    f"harmless to other tests, listed with -v and in the JSON report", "dim")


def _near_timeouts(result: SessionResult, view: View) -> Iterator[Text]:
    rows = [(f"{duration:.2f} s", f"{limit:g} s", f"{duration / limit:.0%}", nodeid)
            for nodeid, duration, limit in summary.near_timeout_rows(result) if limit]
    if rows:
        yield _text("")
        yield from _table("near-timeouts (passed, but used most of their timeout)",
                          ("duration", "limit", "share", "test"), rows, view)


def _slower(result: SessionResult, view: View) -> Iterator[Text]:
    rows = [(f"{duration:.2f} s", f"{p50:.2f} s", f"{p95:.2f} s", nodeid)
            for nodeid, duration, p50, p95 in summary.slower_rows(result)]
    if rows:
        yield _text("")
        yield from _table("slower than their history (often the first sign of a coming timeout)",
                          ("this run", "p50", "p95", "test"), rows, view)


def _table(title: str, header: tuple[str, ...], rows: Sequence[tuple[str, ...]],
           view: View) -> Iterator[Text]:
    """Aligned columns with the test last, so a long node id runs on and never wraps."""
    shown = rows if view.verbose else rows[:ROWS_SHOWN]
    widths = [max(len(header[i]), *(len(row[i]) for row in shown))
              for i in range(len(header) - 1)]
    yield from _wrap(_text(title, "bold"), view.width)
    yield _text("  ".join(_cells(header, widths)), "bold")
    for row in shown:
        yield _text("  ".join(_cells(row, widths)))
    if len(rows) > len(shown):
        yield _text(f"(+{len(rows) - len(shown)} more rows with -v or in the JSON)", "dim")


def _cells(row: Sequence[str], widths: Sequence[int]) -> list[str]:
    return [cell.rjust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]


def _listing(title: str, lines: Iterable[str], style: str, result: SessionResult,
             view: View) -> Iterator[Text]:
    lines = list(lines)
    if lines:
        if not view.quiet:
            yield _text("")
        yield _text(f"{title}:", f"bold {style}")
        for line in lines:
            yield from _wrap(_text(safe(line, result)), view.width, 2, 2)


def _text(text: str, style: str = "") -> Text:
    from rich.text import Text

    return Text(visible(text), style=style)
