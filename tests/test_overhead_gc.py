"""``benchmarks/overhead.py --gc``: the collector's runs and time, with and without the plugin."""

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
