"""The ``poolchaos`` command: what CI does with the plugin's files after (or instead of) a run.

* ``report``: the report of a run that left none (killed by pytest-timeout's thread method,
  the OOM killer, a CI timeout), rebuilt from its journal;
* ``history``: the flakiest tests across the recorded runs; ``history import`` seeds the store
  from JUnit XML files of earlier CI runs;
* ``merge``: one JSON report from the JSON reports of CI shards;
* ``html``: a self-contained HTML page from a JSON report.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from . import journal
from .model import SessionResult, TestRecord
from .postmortem import build_result
from .report import json as json_report
from .sanitize import safe_text

__all__ = ["main"]

#: where ``--poolchaos-journal=auto`` keeps one file per run, relative to the rootdir
DEFAULT_JOURNAL = Path(".pytest_cache", "d", "poolchaos", "journal")
_HISTORY = Path(".pytest_cache", "d", "poolchaos", "history.sqlite")
_EXAMPLES = """\
examples:
  poolchaos history --top 10                  the 10 flakiest tests of the recorded runs
  poolchaos history import reports/*.xml      seed the history from old JUnit XML files
  poolchaos merge shard-*.json -o all.json    one report from the shards of a CI matrix
  poolchaos html all.json -o report.html      a page to upload as a CI artifact
  poolchaos report                            the newest run that died without a report
"""


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    command: Any = options.run
    try:
        return int(command(options))
    except _Failed as failure:
        print(f"poolchaos {options.command}: {failure}", file=sys.stderr)
        return 2


class _Failed(Exception):
    """A usage problem the command reports in one line (exit status 2)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="poolchaos", description="Reports, history and shards of pytest-poolchaos runs.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     title="commands")
    _report_parser(commands)
    _history_parser(commands)
    merge = commands.add_parser(
        "merge", help="one JSON report from the JSON reports of CI shards",
        description="Merge the JSON reports of CI shards (a matrix, pytest-split, several "
                    "xdist hosts): tests united, summary recomputed, each shard's workers "
                    "kept as their own timeline lanes, session.shards naming the inputs.")
    merge.add_argument("reports", nargs="+", metavar="REPORT.json")
    merge.add_argument("-o", "--output", required=True, metavar="OUT.json",
                       help="where to write the merged report")
    merge.set_defaults(run=_merge)
    html = commands.add_parser(
        "html", help="a self-contained HTML page from a JSON report",
        description="Draw a JSON report (one run's or a merged one) as a single HTML file "
                    "that needs no network: counts, a card per failure, leaks, timeline.")
    html.add_argument("report", metavar="REPORT.json")
    html.add_argument("-o", "--output", required=True, metavar="OUT.html")
    html.set_defaults(run=_html)
    return parser


def _report_parser(commands: Any) -> None:
    report = commands.add_parser(
        "report", help="rebuild the report of a run that left none, from its journal",
        description="Rebuild the report of a run that died without one (killed by "
                    "pytest-timeout's thread method, the OOM killer or a CI timeout) from the "
                    "journal it left.")
    report.add_argument("--journal", metavar="PATH",
                        help="a journal file, or the directory of per-run files that "
                             "--poolchaos-journal=auto keeps (its newest run is reported); "
                             f"default: {DEFAULT_JOURNAL} here or in a parent folder")
    report.add_argument("--run", dest="run_id", metavar="ID",
                        help="the run to report when a journal file holds several (a prefix "
                             "of its id, as the next run's header prints it); default: the "
                             "newest")
    report.add_argument("--json", metavar="OUT", help="also write the JSON report to OUT")
    report.set_defaults(run=_report)


def _history_parser(commands: Any) -> None:
    history = commands.add_parser(
        "history", help="the flakiest tests across recorded runs; 'history import' seeds it",
        description="The flakiest tests across the runs recorded by --poolchaos-history (flip "
                    "rate, fail rate, categories seen, last failure, p50/p95 durations), and "
                    "the tests whose latest run took well past their own baseline.",
        epilog="poolchaos history import JUNIT.xml... adds earlier CI runs' JUnit files.")
    _db_option(history)
    history.add_argument("--top", type=_positive, default=20, metavar="N",
                         help="rows per table (default: 20)")
    history.add_argument("--since", type=_since, metavar="DATE",
                         help="only runs from DATE on (YYYY-MM-DD or an ISO 8601 time)")
    history.add_argument("--durations", action="store_true",
                         help="also list the slowest tests by p95 of their passing runs")
    history.add_argument("--json", action="store_true", help="print JSON instead of tables")
    history.set_defaults(run=_history)
    seed = history.add_subparsers(dest="action", metavar="[import]", title="subcommands")
    imports = seed.add_parser(
        "import", help="add earlier CI runs from their JUnit XML files",
        description="Add one run per JUnit XML file (pytest --junitxml or any other tool), "
                    "dated by its timestamp; a file imported twice counts once.")
    imports.add_argument("files", nargs="+", metavar="JUNIT.xml")
    _db_option(imports)
    imports.set_defaults(run=_history_import)


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH",
                        help="the history file (default: .pytest_cache/d/poolchaos/"
                             "history.sqlite here or in a parent folder)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _since(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date (YYYY-MM-DD) or an ISO 8601 time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


# -- commands ------------------------------------------------------------------------------------


def _report(options: argparse.Namespace) -> int:
    given = Path(options.journal) if options.journal else _find_journal()
    path = journal.latest_file(given)
    runs = journal.read_runs(path) if path is not None else []
    if path is None or not runs:
        raise _Failed(f"no journal entries in {given}")
    chosen = [run for run in runs if run.run.startswith(options.run_id or "")]
    if not chosen:
        raise _Failed(f"no run {options.run_id!r} in {path}")
    run = chosen[-1]
    text = io.StringIO()
    try:
        result = build_result(run)
        render(result, run, path, text)
    except Exception as error:
        # well-formed JSON whose fields hold what no version of the plugin writes
        raise _Failed(f"cannot use the journal {path}: {type(error).__name__}: {error}"
                      ) from None
    # A journal written by another version, or edited, may hold what this one would mask.
    sys.stdout.write(safe_text(text.getvalue()))
    if options.json:
        _write_json(Path(options.json), json_report.build(result))
    return 0


def _write_json(path: Path, data: dict[str, Any]) -> None:
    try:
        json_report.write(path, data)
    except OSError as error:
        raise _Failed(f"cannot write {path}: {error.strerror or error}") from None


def _history(options: argparse.Namespace) -> int:
    from .history.store import HistoryError, HistoryStore
    from .history.table import listing, render

    path = _find_history(options.db)
    try:
        store, _ = HistoryStore.open(path, create=False)
        with store:
            data = listing(store, options.top, options.since)
    except HistoryError as error:
        raise _Failed(str(error)) from None
    if options.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render(data, sys.stdout, durations=options.durations)
    return 0


def _history_import(options: argparse.Namespace) -> int:
    from .history.junit_import import JunitError, read
    from .history.store import HistoryError, HistoryStore

    path = _find_history(options.db, creating=True)
    failed = 0
    try:
        store, note = HistoryStore.open(path)
    except HistoryError as error:
        raise _Failed(str(error)) from None
    if note:
        print(f"poolchaos: {note}", file=sys.stderr)
    with store:
        for name in options.files:
            try:
                run, results = read(Path(name))
                added = store.record(run, results)
            except (JunitError, HistoryError) as error:
                print(f"poolchaos history import: {error}", file=sys.stderr)
                failed += 1
                continue
            fails = sum(1 for r in results if r.outcome in ("failed", "error"))
            what = "imported" if added else "already in the history, skipped"
            print(f"{name}: {what} ({len(results)} tests, {fails} failed, run of "
                  f"{run.created[:16].replace('T', ' ')} UTC)")
    print(f"history: {path}")
    return 1 if failed else 0


def _find_journal() -> Path:
    """The ``auto`` journal directory of the nearest rootdir: pytest may have run from a
    parent folder (its rootdir), so the cache is looked for upwards, as git looks for .git."""
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / DEFAULT_JOURNAL).is_dir():
            return folder / DEFAULT_JOURNAL
    raise _Failed(f"no journal found ({DEFAULT_JOURNAL} here or in a parent folder; pytest "
                  f"writes one per run unless --poolchaos-journal=off or -p no:cacheprovider); "
                  f"pass --journal PATH")


def _find_history(given: str | None, creating: bool = False) -> Path:
    if given:
        return Path(given)
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / _HISTORY).is_file():
            return folder / _HISTORY
    if not creating:
        raise _Failed(f"no history file found ({_HISTORY} here or in a parent folder); "
                      f"pass --db PATH")
    cache = here / _HISTORY.parts[0]
    if not cache.exists():  # as pytest makes it: never committed by accident
        cache.mkdir()
        (cache / ".gitignore").write_text("# Created by pytest-poolchaos.\n*\n")
    return here / _HISTORY


def _merge(options: argparse.Namespace) -> int:
    from .report.merge import MergeError, load, merge, shard_names

    try:
        reports = [load(Path(name)) for name in options.reports]
        merged = merge(list(zip(shard_names(options.reports), reports, strict=True)))
    except MergeError as error:
        raise _Failed(str(error)) from None
    _write_json(Path(options.output), merged)
    summary = merged["summary"]
    print(f"merged {len(reports)} reports into {options.output}: {summary['tests']} tests, "
          f"{summary['failed']} failed, {summary['errors']} errors")
    return 0


def _html(options: argparse.Namespace) -> int:
    from .report import html
    from .report.merge import MergeError, load

    try:
        data = load(Path(options.report))
    except MergeError as error:
        raise _Failed(str(error)) from None
    try:
        html.write(Path(options.output), data)
    except OSError as error:
        raise _Failed(f"cannot write {options.output}: {error.strerror or error}") from None
    print(f"wrote {options.output}")
    return 0


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
