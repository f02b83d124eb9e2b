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
from .controller.session import SessionResult, TestRecord
from .model import Diagnosis
from .report import json as json_report

__all__ = ["build_result", "main"]

_KILLED_STATUS = 1  # what os._exit(1) from pytest-timeout leaves; any death is a failed run


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    options = parser.parse_args(argv)
    if options.command != "report":
        parser.print_help()
        return 2
    runs = journal.read_runs(Path(options.journal))
    if not runs:
        print(f"poolchaos: no journal entries in {options.journal}", file=sys.stderr)
        return 2
    run = runs[-1]
    result = build_result(run)
    render(result, run, Path(options.journal), sys.stdout)
    if options.json:
        json_report.write(Path(options.json), json_report.build(result))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poolchaos", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="rebuild the report of a run from its journal")
    report.add_argument("--journal", required=True, metavar="PATH",
                        help="the journal (--poolchaos-journal; default "
                             ".pytest_cache/d/poolchaos/journal.jsonl)")
    report.add_argument("--json", metavar="OUT", help="also write the JSON report to OUT")
    return parser


def build_result(run: journal.Run) -> SessionResult:
    """The run as the controller would have reported it, plus the tests that never ended."""
    start = run.start or {}
    result = SessionResult(records={}, args=[str(a) for a in start.get("args") or ()],
                           workers=_workers(run), start=float(start.get("time") or 0.0))
    for nodeid, event in run.results.items():
        result.records[nodeid] = _finished(nodeid, event, run.started.get(nodeid))
    for event in run.unfinished_tests():
        record = _unfinished(run, event)
        result.records[record.nodeid] = record
    result.stop = run.end.get("time", run.last_time) if run.end else run.last_time
    result.exitstatus = int(run.end.get("exitstatus", 0)) if run.end else _KILLED_STATUS
    return result


def _workers(run: journal.Run) -> int:
    # A crashed worker's replacement has a new id; count the ids that ran at the same time
    # is not knowable here, so report the distinct workers seen.
    return len({worker for worker in run.sessions if worker})


def _finished(nodeid: str, event: dict[str, Any], started: dict[str, Any] | None
              ) -> TestRecord:
    diagnosis = event.get("diagnosis")
    timeout = (started or {}).get("timeout") or {}
    return TestRecord(
        nodeid=nodeid,
        outcome=str(event.get("outcome") or "passed"),
        when=event.get("when"),
        duration_s=max(0.0, float(event.get("time") or 0) - float(event.get("start") or 0))
        if event.get("start") else 0.0,
        worker=event.get("worker"),
        start=event.get("start"),
        stop=event.get("time"),
        timeout_s=timeout.get("seconds"),
        diagnosis=Diagnosis.from_json(diagnosis) if isinstance(diagnosis, dict) else None,
    )


def _unfinished(run: journal.Run, event: dict[str, Any]) -> TestRecord:
    worker = event.get("worker")
    how = f"worker '{worker}' ended" if worker else "the pytest process ended"
    diagnosis = journal.unfinished_diagnosis(run, event, how=how)
    timeout = journal.timeout_of(run, event) or {}
    began = float(event.get("time") or 0.0)
    return TestRecord(
        nodeid=str(event.get("nodeid")),
        outcome="failed",
        worker=worker,
        start=began or None,
        timeout_s=timeout.get("seconds"),
        duration_s=max(0.0, run.last_time - began) if began else 0.0,
        diagnosis=diagnosis,
        longrepr="the process died while this test was running",
    )


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
    for line in diagnosis.evidence:
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
