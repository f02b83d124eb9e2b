"""The ``poolchaos`` section of pytest's terminal summary.

A green run costs one line and no rich import. Otherwise ``render`` draws the section with
rich into a string (a pure function of the result and the view, so it is tested without a
pytest run) and the terminal reporter writes it, so capture, pytester and ``--color`` apply.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import pytest

from .. import guard
from ..history.stats import history_phrase
from . import summary
from .summary import safe, shorten

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
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
EVIDENCE_SHOWN = 3  # default verbosity; -v shows every line
ALONGSIDE_SHOWN = 3
ROWS_SHOWN = 20  # leak and near-timeout tables; -v shows every row
INDENT = 4
ATTEMPT_CHARS = 160
_TRAILING = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$")
RERUN_TIP = "tip: --poolchaos-rerun=3 reruns failures to tell flaky from deterministic"


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
    for part in _parts(result, view):
        console.print(part)
    # rich pads every line to the full width; logs and diffs are better without it.
    return "".join(_TRAILING.sub(r"\1", line) + "\n" for line in out.getvalue().splitlines())


def _parts(result: SessionResult, view: View) -> Iterator[RenderableType]:
    yield _text(f"poolchaos: {summary.counts_phrase(result)}", "bold")
    if view.quiet:
        yield from _quiet_lines(result, view)
        return
    for number, (record, diagnosis) in enumerate(summary.failures(result), 1):
        yield from _block(number, record, diagnosis, result, view)
    yield from _leaks(result, view)
    yield from _near_timeouts(result, view)
    yield from _slower(result, view)
    if any(d.reruns <= 0 for _, d in summary.failures(result)):
        yield _text("")
        yield _text(RERUN_TIP, "dim")
    yield from _listing("threads that hang interpreter exit", result.hanging, "yellow", result)
    yield from _listing("plugin problems (bugs in poolchaos, not in your tests)",
                        result.problems, "red", result)


def _quiet_lines(result: SessionResult, view: View) -> Iterator[RenderableType]:
    for record, diagnosis in summary.failures(result):
        head = f"{record.nodeid} {diagnosis.category.value} {diagnosis.confidence:.2f}"
        room = view.width - len(head) - 7
        fix = summary.first_suggestion(diagnosis, room) if room >= 12 else ""
        line = _text(head + (f"  fix: {safe(fix, result)}" if fix else ""))
        line.stylize(STYLE[diagnosis.category.value], len(record.nodeid) + 1,
                     len(record.nodeid) + 1 + len(diagnosis.category.value))
        yield line
    for problem in result.problems:
        yield _text(f"plugin problem: {safe(problem, result)}", "red")


def _block(number: int, record: TestRecord, diagnosis: Diagnosis, result: SessionResult,
           view: View) -> Iterator[RenderableType]:
    from rich.padding import Padding

    yield _text("")
    yield _text(f"{number}. {record.nodeid}", "bold")
    yield Padding(_block_body(record, diagnosis, result, view), (0, 0, 0, INDENT))


def _block_body(record: TestRecord, diagnosis: Diagnosis, result: SessionResult,
                view: View) -> RenderableType:
    from rich.console import Group

    category = diagnosis.category.value
    head = _text("")
    head.append(category, f"bold {STYLE[category]}")
    head.append(f"  confidence {diagnosis.confidence:.2f}  {summary.verdict_phrase(diagnosis)}")
    parts: list[RenderableType] = [head]
    if (history := history_phrase(record.history)) is not None:
        parts.append(_text(f"history: {history}"))
    if (polluter := summary.polluter_phrase(diagnosis)) is not None:
        parts.append(_text(f"polluter: {safe(polluter, result)}", "bold"))
    evidence = diagnosis.reasons if view.verbose else diagnosis.reasons[:EVIDENCE_SHOWN]
    parts += _numbered("evidence", [(safe(e, result), "") for e in evidence], result)
    if hidden := len(diagnosis.reasons) - len(evidence):
        parts.append(_text(f"    (+{hidden} more with -v)", "dim"))
    fixes = [(s.text, s.detail) for s in diagnosis.suggestions]
    parts += _numbered("suggestions", fixes, result)
    parts += _alongside(record, result, view)
    if view.verbose:
        parts += _verbose_parts(record, diagnosis, result, view)
    return Group(*parts)


def _numbered(title: str, items: list[tuple[str, str]], result: SessionResult,
              style: str = "") -> list[RenderableType]:
    from rich.table import Table

    if not items:
        return []
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(overflow="fold")
    for number, (text, detail) in enumerate(items, 1):
        body = _text("")
        body.append(safe(text, result), style)
        if detail:
            body.append("\n" + safe(detail, result), "cyan")
        grid.add_row(f"{number}.", body)
    from rich.padding import Padding

    return [_text(title, "underline"), Padding(grid, (0, 0, 0, 2))]


def _alongside(record: TestRecord, result: SessionResult, view: View) -> list[RenderableType]:
    others = result.alongside.get(record.nodeid, [])
    shown = others if view.verbose else others[:ALONGSIDE_SHOWN]
    if not shown:
        return []
    lines = [f"  {nodeid} on {worker or '?'}, {overlap:.2f} s overlap"
             for nodeid, worker, overlap in shown]
    if len(others) > len(shown):
        lines.append(f"  (+{len(others) - len(shown)} more with -v)")
    return [_text("ran alongside (other workers)", "underline"), _text("\n".join(lines))]


def _verbose_parts(record: TestRecord, diagnosis: Diagnosis, result: SessionResult,
                   view: View) -> list[RenderableType]:
    parts: list[RenderableType] = []
    if diagnosis.attempts:
        parts += [_text("reruns", "underline"), _attempts(diagnosis, result)]
    if diagnosis.rules:
        fired = ", ".join(f"{rule.id} ({rule.score:.2f})" for rule in diagnosis.rules)
        parts.append(_text(f"rules: {fired}", "dim"))
    if timeline := _timeline(result, record.nodeid, view.width - INDENT):
        parts += [_text("timeline", "underline"), _text(timeline)]
    return parts


def _attempts(diagnosis: Diagnosis, result: SessionResult) -> RenderableType:
    from rich.padding import Padding
    from rich.table import Table

    grid = Table.grid(padding=(0, 1))
    for justify in ("left", "left", "right"):
        grid.add_column(justify=justify, no_wrap=True)
    grid.add_column(overflow="fold")
    for attempt in diagnosis.attempts:
        # The first line names the failure; the whole message is in the JSON report.
        first = attempt.message.strip().splitlines()[0] if attempt.message.strip() else ""
        body = _text(shorten(safe(first, result), ATTEMPT_CHARS))
        if attempt.values:
            body.append("\n" + " ".join(f"{k}={_number(v)}" for k, v in attempt.values.items()),
                        "dim")
        grid.add_row(attempt.mode, attempt.outcome, f"{attempt.duration_s:.2f} s", body)
    return Padding(grid, (0, 0, 0, 2))


def _number(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


@guard.guarded("")
def _timeline(result: SessionResult, nodeid: str, width: int) -> str:
    try:
        from .timeline import render_timeline
    except ImportError:  # an older or trimmed install: the rest of the block still stands
        return ""
    return render_timeline(result, nodeid, width)


def _leaks(result: SessionResult, view: View) -> Iterator[RenderableType]:
    from rich.padding import Padding
    from rich.table import Table

    rows = summary.leak_rows(result)
    if not rows:
        return
    shown = rows if view.verbose else rows[:ROWS_SHOWN]
    # Grouped under each test rather than a three-column table: test ids and details are
    # both long, and a table folds them mid-word at 80 columns.
    yield _text("")
    yield _text("leaks (left behind after teardown)", "bold")
    by_test: dict[str, list[tuple[str, str]]] = {}
    for nodeid, kind, detail in shown:
        by_test.setdefault(nodeid, []).append((kind, detail))
    for nodeid, leaks in by_test.items():
        yield Padding(_text(nodeid, "bold"), (0, 0, 0, 2))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, min_width=7)
        grid.add_column(overflow="fold")
        for kind, detail in leaks:
            grid.add_row(kind, detail)
        yield Padding(grid, (0, 0, 0, 4))
    if len(rows) > len(shown):
        yield _text(f"  … {len(rows) - len(shown)} more (-v shows all)", "dim")


def _near_timeouts(result: SessionResult, view: View) -> Iterator[RenderableType]:
    rows = [(nodeid, f"{duration:.2f} s", f"{limit:g} s", f"{duration / limit:.0%}")
            for nodeid, duration, limit in summary.near_timeout_rows(result) if limit]
    if rows:
        yield _text("")
        yield _table("near-timeouts (passed, but used most of their timeout)",
                     ("test", "duration", "limit", "share"), rows, view)


def _slower(result: SessionResult, view: View) -> Iterator[RenderableType]:
    rows = [(nodeid, f"{duration:.2f} s", f"{p50:.2f} s", f"{p95:.2f} s")
            for nodeid, duration, p50, p95 in summary.slower_rows(result)]
    if rows:
        yield _text("")
        yield _table("slower than their history (often the first sign of a coming timeout)",
                     ("test", "this run", "p50", "p95"), rows, view)


def _table(title: str, header: tuple[str, ...], rows: Sequence[tuple[str, ...]],
           view: View) -> RenderableType:
    from rich import box
    from rich.console import Group
    from rich.table import Table

    shown = rows if view.verbose else rows[:ROWS_SHOWN]
    # Box characters are for terminals; CI logs get plain aligned columns.
    table: Table = Table(box=box.SIMPLE_HEAD if view.color else None, show_edge=False,
                         header_style="bold", pad_edge=False, expand=False)
    for name in header:
        table.add_column(name, overflow="fold")
    for row in shown:
        table.add_row(*row)
    parts: list[RenderableType] = [_text(title, "bold"), table]
    if len(rows) > len(shown):
        parts.append(_text(f"(+{len(rows) - len(shown)} more rows with -v or in the JSON)",
                           "dim"))
    return Group(*parts)


def _listing(title: str, lines: list[str], style: str,
             result: SessionResult) -> Iterator[RenderableType]:
    if lines:
        yield _text("")
        yield _text(f"{title}:", f"bold {style}")
        for line in lines:
            yield _text(f"  {safe(line, result)}")


def _text(text: str, style: str = "") -> Text:
    from rich.text import Text

    return Text(text, style=style, overflow="fold")

