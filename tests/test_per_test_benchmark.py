"""``benchmarks/per_test.py`` reaches into the plugin by name: every part must still switch off
what it names, in the odd files only, and leave every test passing."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def per_test() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        module = importlib.import_module("per_test")
        module.PER_FILE = 4  # two files of four tests: a session of under a second
        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))
        for name in ("per_test", "overhead"):
            sys.modules.pop(name, None)


def _session(per_test: ModuleType, root: Path, kind: str, part: str) -> tuple[float, float]:
    suite = per_test.make_suite(root, kind, 3)  # on, off, on again: both switches
    return per_test.run_part(root, suite, part)


@pytest.mark.parametrize("part", ["none", "snapshot", "descriptors", "named-loggers",
                                  "library-state", "journal-write", "controller-rows", "scope"])
def test_each_part_runs_a_passing_session_and_times_both_halves(
        per_test: ModuleType, tmp_path: Path, part: str) -> None:
    assert part in per_test.PARTS
    on, off = _session(per_test, tmp_path, "trivial", part)
    assert on > 0
    assert off > 0


@pytest.mark.parametrize("part", ["thread-start", "waits", "thread-end"])
@pytest.mark.parametrize("kind", ["threads", "realistic"])
def test_the_thread_parts_go_round_the_installed_wrappers(
        per_test: ModuleType, tmp_path: Path, part: str, kind: str) -> None:
    # realistic: a module's thread pool starts its workers inside a test; were the switch's
    # own frame taken for their starter, they would be the test's and found left behind,
    # and run_part refuses a session with a finding
    on, off = _session(per_test, tmp_path, kind, part)
    assert on > 0
    assert off > 0


def test_a_part_is_off_in_the_odd_files_only(per_test: ModuleType, tmp_path: Path) -> None:
    _session(per_test, tmp_path, "trivial", "journal-line")
    events = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    started = {event["nodeid"].split("::")[0] for event in events
               if event["event"] == "test-start"}
    assert started == {"test_part_0.py", "test_part_2.py"}


def test_every_part_is_covered_here(per_test: ModuleType) -> None:
    covered = {"none", "snapshot", "descriptors", "named-loggers", "library-state",
               "journal-write", "controller-rows", "scope", "thread-start", "waits",
               "thread-end", "journal-line"}
    assert set(per_test.PARTS) == covered


def test_an_unknown_part_is_refused_with_the_accepted_ones(
        per_test: ModuleType, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["per_test.py", "--parts", "none,bogus"])
    with pytest.raises(SystemExit):
        per_test.main()
    assert "--parts: unknown bogus; accepted: none, snapshot" in capsys.readouterr().err
