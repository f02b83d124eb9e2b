"""A Markdown summary for CI job pages (``$GITHUB_STEP_SUMMARY``): ``--poolchaos-markdown``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..history.stats import history_phrase
from . import summary

if TYPE_CHECKING:
    from ..model import SessionResult

__all__ = ["build", "cell", "write"]

SUGGESTION_CHARS = 160  # a table cell, not the whole advice: the terminal and JSON have it


def build(result: SessionResult) -> str:
    """The whole document; pure, so it is tested without a pytest run."""
    clean = summary.clean_line(result)
    if clean is not None:
        return f"## poolchaos\n\n{clean}\n"
    parts = ["## poolchaos", summary.counts_phrase(result)]
    parts += _failures(result)
    parts += _section("Leaks", ("Test", "Kind", "Detail"),
                      [(f"`{t}`", k, d) for t, k, d in summary.leak_rows(result)])
    parts += _section("Near-timeouts", ("Test", "Duration", "Limit"),
                      [(f"`{t}`", f"{d:.2f} s", f"{limit:g} s")
                       for t, d, limit in summary.near_timeout_rows(result)])
    parts += _bullets(summary.hanging_title(result).capitalize(), result.hanging, result)
    parts += _bullets("Plugin problems (bugs in poolchaos, not in your tests)",
                      result.problems, result)
    return "\n\n".join(parts) + "\n"


def _failures(result: SessionResult) -> list[str]:
    rows = []
    for record, diagnosis in summary.failures(result):
        fix = summary.safe(summary.first_suggestion(diagnosis, SUGGESTION_CHARS), result)
        verdict = summary.short_verdict(diagnosis)
        if diagnosis.polluter:
            verdict += f", polluter `{diagnosis.polluter}`"
        if history := history_phrase(record.history):
            verdict += f"; {history}"
        rows.append((f"`{record.nodeid}`", diagnosis.category.value,
                     f"{diagnosis.confidence:.2f}", verdict, fix))
    return _section("Failures", ("Test", "Category", "Confidence", "Verdict", "First suggestion"),
                    rows)


def _section(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    if not rows:
        return []
    lines = [_row(header), _row(["---"] * len(header)), *(_row(row) for row in rows)]
    return [f"### {title}", "\n".join(lines)]


def _row(values: Iterable[str]) -> str:
    return "| " + " | ".join(cell(value) for value in values) + " |"


def cell(text: str) -> str:
    """A table cell: one line, pipes escaped (even inside code spans GitHub splits on them)."""
    return " ".join(text.split()).replace("|", "\\|")


def _bullets(title: str, lines: list[str], result: SessionResult) -> list[str]:
    if not lines:
        return []
    items = "\n".join(f"- {cell(summary.safe(line, result))}" for line in lines)
    return [f"### {title}", items]


def write(path: Path, text: str) -> None:
    """Write atomically, or append to GitHub's job summary (earlier steps wrote there too)."""
    from .files import append_text, is_step_summary, write_text

    (append_text if is_step_summary(path) else write_text)(path, text)
