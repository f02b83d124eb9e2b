"""``benchmarks/overhead.py``: ``--gc`` (the collector's runs and time, with and without the
plugin) and ``--features`` (the plugin with its journal and its history each switched off)."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def overhead() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("overhead")
    finally:
        sys.path.remove(str(BENCHMARKS))
        sys.modules.pop("overhead", None)


def test_gc_counts_each_generation_of_a_session_with_and_without_the_plugin(
        overhead: ModuleType, tmp_path: Path) -> None:
    suite = overhead._suite(tmp_path, "tiny", 1, lambda chunk, size: "".join(
        f"def test_{i}():\n    pass\n\n" for i in range(20)))
    helper = tmp_path / "helper"
    helper.mkdir()
    (helper / "_poolchaos_gc.py").write_text(overhead.GC_HELPER)
    # (how often the youngest generation is collected depends on what a run compiles first,
    # so the two counts are not compared here: measure_gc warms the caches before it counts)
    for plugin in (False, True):
        seconds, runs = overhead.gc_once(suite, plugin, helper)
        assert seconds > 0
        assert len(runs) == 3
        assert runs[0] > 0  # the youngest generation is collected while pytest starts
    assert (tmp_path / "tiny" / "journal.jsonl").exists()  # the plugin did run

    line = overhead.measure_gc(suite, 1, helper)
    assert re.fullmatch(r"tiny +serial  full collections \d+ -> \d+, youngest \d+ -> \d+; "
                        r"time inside the collector +[\d.]+ -> +[\d.]+ ms \(median of 1\)",
                        line), line


def test_features_switch_off_what_they_name(overhead: ModuleType, tmp_path: Path) -> None:
    suite = overhead._suite(tmp_path, "tiny", 1, lambda chunk, size: "def test_it():\n    pass\n")
    for off in overhead.FEATURES.values():
        args = overhead.command(suite, True, False, off)
        assert ("--poolchaos-journal=off" in args) is ("journal" in off)
        assert ("--poolchaos-history=off" in args) is ("history" in off)
    journal, parked = suite.path / "journal.jsonl", suite.path / "history.sqlite.pending"
    overhead.run_once(suite, True, False, overhead.FEATURES["both off"])
    assert not journal.exists()
    assert not parked.exists()
    overhead.run_once(suite, True, False, overhead.FEATURES["default"])
    assert journal.exists()
    assert parked.exists()


def test_features_runs_every_variant_beside_the_baseline_in_each_round(
        overhead: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite = overhead._suite(tmp_path, "tiny", 1, lambda chunk, size: "def test_it():\n    pass\n")
    calls: list[tuple[bool, tuple[str, ...]]] = []
    # The machine slows down from round to round; each variant costs a fixed share more
    # than the baseline run in the same round, which is what each ratio must say.
    share = {(): 1.5, ("journal",): 1.25, ("history",): 1.4, ("journal", "history"): 1.2}

    def run_once(suite: object, plugin: bool, xdist: bool, off: tuple[str, ...] = ()
                 ) -> tuple[float, float]:
        assert not xdist
        calls.append((plugin, off))
        slow = 1.0 + (len(calls) - 1) // (len(share) + 1)  # the round's own speed
        return (slow * share[off] if plugin else slow), 0.0

    monkeypatch.setattr(overhead, "run_once", run_once)
    line = overhead.measure_features(suite, 2)
    variants = [(False, ()), *[(True, off) for off in overhead.FEATURES.values()]]
    assert calls == variants + variants + variants[::-1]  # warm-up, then one order each way
    ratios = dict(re.findall(r"(default|journal off|history off|both off) ([\d.]+) \[", line))
    assert ratios == {"default": "1.500", "journal off": "1.250", "history off": "1.400",
                      "both off": "1.200"}, line
