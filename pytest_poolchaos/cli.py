"""``poolchaos report --journal PATH [--json OUT]``: the report of a run that left none.

A run killed by pytest-timeout's thread method (``os._exit(1)``), the OOM killer or a CI
timeout never reaches ``pytest_sessionfinish``. Its journal still says which tests finished,
how, and which test was running when the process died; this rebuilds the report from it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from . import journal
from .model import SessionResult, TestRecord
from .postmortem import build_result
from .report import json as json_report

__all__ = ["main"]

#: where ``--poolchaos-journal=auto`` keeps one file per run, relative to the rootdir
DEFAULT_JOURNAL = Path(".pytest_cache", "d", "poolchaos", "journal")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    options = parser.parse_args(argv)
    if options.command != "report":
        parser.print_help()
        return 2
    path = journal.latest_file(Path(options.journal))
    runs = journal.read_runs(path) if path is not None else []
    if path is None or not runs:
        print(f"poolchaos: no journal entries in {options.journal}", file=sys.stderr)
        return 2
    chosen = [run for run in runs if run.run.startswith(options.run or "")]
    if not chosen:
        print(f"poolchaos: no run {options.run!r} in {path}", file=sys.stderr)
        return 2
    run = chosen[-1]
    result = build_result(run)
    render(result, run, path, sys.stdout)
    if options.json:
        json_report.write(Path(options.json), json_report.build(result))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poolchaos", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="rebuild the report of a run from its journal")
    report.add_argument("--journal", default=str(DEFAULT_JOURNAL), metavar="PATH",
                        help="a journal file, or the directory of per-run files that "
                             "--poolchaos-journal=auto keeps (its newest run is reported); "
                             "default: %(default)s")
    report.add_argument("--run", metavar="ID",
                        help="the run to report when a journal file holds several (a prefix "
                             "of its id, as the next run's header prints it); default: the "
                             "newest")
    report.add_argument("--json", metavar="OUT", help="also write the JSON report to OUT")
    return parser


def render(result: SessionResult, run: journal.Run, path: Path, out: TextIO) -> None:
    """A plain terminal report (no pytest session exists to render one)."""
    when = datetime.fromtimestamp(result.start).isoformat(sep=" ", timespec="seconds")
    state = "finished" if run.finished else "did NOT finish (no end record: the process died)"
    out.write(f"poolchaos report from {path}\n")
    out.write(f"run {run.run[:12]} started {when}, {state}\n")
    if result.args:
        out.write(f"args: {' '.join(result.args)}\n")
    dead = {str(event.get("nodeid")) for event in run.unfinished_tests()}
    for record in result.records.values():
        if record.diagnosis is not None:
            _render_record(record, record.nodeid in dead, out)
    counts = _counts(result.records.values())
    out.write(f"{len(result.records)} tests: " + ", ".join(
        f"{n} {outcome}" for outcome, n in counts.items() if n) + "\n")
    by_category = ", ".join(f"{n} {c}" for c, n in result.by_category().items() if n)
    if by_category:
        out.write(f"diagnosed: {by_category}\n")


def _render_record(record: TestRecord, died: bool, out: TextIO) -> None:
    diagnosis = record.diagnosis
    assert diagnosis is not None
    head = "RUNNING WHEN THE PROCESS DIED" if died else record.outcome.upper()
    worker = f" [{record.worker}]" if record.worker else ""
    out.write(f"\n{head}: {record.nodeid}{worker}\n")
    out.write(f"  {diagnosis.category.value} (confidence {diagnosis.confidence:.2f})\n")
    for line in diagnosis.reasons:
        out.write(f"  - {line}\n")
    for suggestion in diagnosis.suggestions:
        out.write(f"  -> {suggestion.text}\n")
    out.write("\n")


def _counts(records: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        counts[record.outcome] = counts.get(record.outcome, 0) + 1
    return counts


if __name__ == "__main__":
    raise SystemExit(main())
