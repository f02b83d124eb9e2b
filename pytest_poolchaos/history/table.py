"""``poolchaos history``: the flakiest tests across the recorded runs, and the slowing ones.

``listing`` reads the store into plain data (what ``--json`` prints); ``render`` draws that
data as rich tables. Flakiest first: most flips per run, then most failures, then the most
recent failure.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterable, Iterator, Mapping
from itertools import groupby
from pathlib import Path
from typing import IO, Any

from .stats import FAILED, Past, baseline, flips, percentile, slower, state
from .store import HistoryStore, Row

__all__ = ["listing", "render"]


def listing(store: HistoryStore, top: int = 20, since: str | None = None) -> dict[str, Any]:
    runs = store.runs(since)
    tests = [_test(list(group)) for _, group in groupby(store.rows(since), key=lambda r: r.key)]
    failing = sorted((t for t in tests if t["failures"]),
                     key=lambda t: (t["flip_rate"], t["fail_rate"], t["last_failed"] or ""),
                     reverse=True)
    slowing = sorted((t for t in tests if t.get("slower")),
                     key=lambda t: t["last_s"] / max(t["p50_s"], 1e-9), reverse=True)
    slowest = sorted((t for t in tests if t["p95_s"] is not None),
                     key=lambda t: t["p95_s"], reverse=True)
    return {
        "db": str(store.path),
        "since": since,
        "runs": len(runs),
        "first_run": runs[0]["created"] if runs else None,
        "last_run": runs[-1]["created"] if runs else None,
        "commits": len({run["commit_sha"] for run in runs if run["commit_sha"]}),
        "tests": len(tests),
        "flakiest": failing[:top],
        "slower": slowing[:top],
        "slowest": slowest[:top],
    }


def _test(rows: list[Row]) -> dict[str, Any]:
    """One test's rows, oldest first, summed up."""
    outcomes = [row.outcome for row in rows]
    failed = [row for row in rows if row.outcome in FAILED]
    changes = flips(outcomes)
    categories: dict[str, int] = {}
    for row in failed:
        if row.category:
            categories[row.category] = categories.get(row.category, 0) + 1
    passing = [row.duration_s for row in rows if state(row.outcome)]
    out: dict[str, Any] = {
        "nodeid": rows[-1].nodeid,
        "runs": len(rows),
        "failures": len(failed),
        "fail_rate": round(len(failed) / len(rows), 3),
        "flips": changes,
        "flip_rate": round(changes / (len(rows) - 1), 3) if len(rows) > 1 else 0.0,
        "categories": categories,
        "first_failed": failed[0].created if failed else None,
        "last_failed": failed[-1].created if failed else None,
        "p50_s": round(percentile(passing, 0.5), 6) if passing else None,
        "p95_s": round(percentile(passing, 0.95), 6) if passing else None,
        "last_s": round(rows[-1].duration_s, 6),
    }
    earlier = baseline([Past(r.created, r.outcome, r.duration_s) for r in rows[:-1]])
    if earlier is not None and state(rows[-1].outcome) is not None:
        out["slower"] = slower(rows[-1].duration_s, earlier[0], earlier[1])
    return out


def render(data: Mapping[str, Any], out: IO[str], width: int | None = None,
           durations: bool = False) -> None:
    from rich.console import Console

    buffer = io.StringIO()
    color = out.isatty()
    console = Console(file=buffer, width=width or shutil.get_terminal_size().columns,
                      force_terminal=color, no_color=not color, highlight=False, emoji=False)
    _draw(data, console, durations)
    # rich pads every line to the full width; logs and diffs are better without it
    out.writelines(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def _draw(data: Mapping[str, Any], console: Any, durations: bool) -> None:
    console.print(_headline(data), markup=False)
    if not data["runs"]:
        return
    console.print()
    if data["flakiest"]:
        _section(console, "flakiest tests", _FLAKY, list(_flaky_rows(data["flakiest"])))
    else:
        console.print(f"no test failed in these {data['runs']} runs", markup=False)
    if data["slower"]:
        console.print()
        _section(console, "slower than their own baseline (latest run against the runs "
                 "before it)", _SLOW, list(_slow_rows(data["slower"])))
    if durations and data["slowest"]:
        console.print()
        _section(console, "slowest tests (passing runs)", _SLOW,
                 list(_slow_rows(data["slowest"])))


def _section(console: Any, title: str, header: tuple[str, ...],
             rows: list[tuple[str, ...]]) -> None:
    # A node id is never folded (it is what a reader copies into the next command): a table
    # when every id fits on its row, otherwise each test on its own line with its figures
    # under it.
    widths = [max(len(text) for text in column) for column in zip(header, *rows, strict=True)]
    if sum(widths) + 3 * len(widths) <= console.width:  # the columns and their padding
        console.print(_table(title, header, rows))
        return
    console.print(title, style="bold", markup=False)
    for row in rows:
        console.print(f"  {row[0]}", markup=False, no_wrap=True, overflow="ignore",
                      crop=False)
        figures = ", ".join(value if name in _LEFT else f"{name} {value}"
                            for name, value in zip(header[1:], row[1:], strict=True))
        console.print(f"    {figures}", markup=False)


def _headline(data: Mapping[str, Any]) -> str:
    where = Path(str(data["db"]))
    if not data["runs"]:
        since = f" since {data['since']}" if data.get("since") else ""
        return f"history: no runs recorded{since} in {where}"
    commits = f", {data['commits']} commits" if data["commits"] else ""
    return (f"history: {data['runs']} runs from {_day(data['first_run'])} to "
            f"{_day(data['last_run'])}{commits}, {data['tests']} tests\nfile: {where}")


_FLAKY = ("test", "flip rate", "failed", "categories", "last failed")
_SLOW = ("test", "latest", "p50", "p95", "runs")
_LEFT = ("test", "categories")


def _flaky_rows(tests: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, ...]]:
    for t in tests:
        categories = ", ".join(f"{name} {n}" for name, n in sorted(
            t["categories"].items(), key=lambda item: -item[1])) or "-"
        yield (t["nodeid"], f"{t['flip_rate']:.2f}",
               f"{t['failures']}/{t['runs']} ({t['fail_rate']:.0%})", categories,
               _day(t["last_failed"]))


def _slow_rows(tests: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, ...]]:
    for t in tests:
        yield (t["nodeid"], _secs(t["last_s"]), _secs(t["p50_s"]), _secs(t["p95_s"]),
               str(t["runs"]))


def _table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                  header_style="bold", pad_edge=False)
    for name in header:
        if name == "test":
            longest = max((len(row[0]) for row in rows), default=4)
            table.add_column(name, no_wrap=True, min_width=longest)
        else:
            table.add_column(name, no_wrap=name != "categories",
                             justify="left" if name in _LEFT else "right")
    for row in rows:
        table.add_row(*row)
    return table


def _day(stamp: str | None) -> str:
    return stamp[:10] if stamp else "-"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
