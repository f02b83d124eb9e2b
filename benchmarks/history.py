"""What the history store adds to a green run: its session-end step, timed inside the run.

A whole-run comparison (``overhead.py --history-ab``) is the honest end-to-end figure, but on a
shared machine its noise is larger than the step itself. This measures only the controller's
history step (import sqlite3, read the failures' history, write the run), in CPU time, on the
trivial suite of ``overhead.py`` (2,000 passing tests), with the store empty and with the store
full (``KEEP_RUNS`` runs of the same tests already in it), and sets it against the run's own
CPU time.

    python benchmarks/history.py            # 5 runs per case
    python benchmarks/history.py --runs 9 --tests 5000
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

# Runs in a fresh interpreter per measured run, so sqlite3 is imported as in a real session.
PROBE = textwrap.dedent(
    """
    import sys, time
    import pytest
    from pytest_poolchaos.controller import session as controller

    spent = []
    remember = controller.ChaosController._remember

    def timed(self, result):
        began = time.process_time()
        remember(self, result)
        spent.append(time.process_time() - began)

    controller.ChaosController._remember = timed
    began = time.process_time()
    code = pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "poolchaos",
                        "-p", "no:xdist", "--poolchaos-journal=off",
                        "--poolchaos-history=" + sys.argv[1]])
    total = time.process_time() - began
    print("PROBE", int(code), spent[0] if spent else -1.0, total, file=sys.stderr)
    """
)


def make_suite(root: Path, tests: int) -> Path:
    per_file = 500
    for chunk in range(0, tests, per_file):
        body = "".join(f"def test_{i}():\n    pass\n\n"
                       for i in range(chunk, min(tests, chunk + per_file)))
        (root / f"test_trivial_{chunk // per_file}.py").write_text(body)
    (root / "pytest.ini").write_text("[pytest]\n")
    return root


def fill(store_path: Path, suite: Path, tests: int) -> None:
    """Seed the store with KEEP_RUNS runs of the suite's tests (what months of CI leave)."""
    from pytest_poolchaos.history.store import KEEP_RUNS, HistoryStore, Result, RunInfo

    results = [Result(f"test_trivial_{i // 500}.py::test_{i}", "passed", 0.001)
               for i in range(tests)]
    store, _ = HistoryStore.open(store_path)
    with store:
        for run in range(KEEP_RUNS):
            store.record(RunInfo(f"seed-{run}", "2024-01-01T00:00:00+00:00"), results)


def probe(suite: Path, history: str) -> tuple[float, float]:
    done = subprocess.run([sys.executable, "-c", PROBE, history], cwd=suite,
                          capture_output=True, text=True, timeout=600)
    line = next((ln for ln in done.stderr.splitlines() if ln.startswith("PROBE ")), "")
    if not line or line.split()[1] != "0":
        raise SystemExit(f"the probe run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    _, _, step, total = line.split()
    return float(step), float(total)


def case(name: str, suite: Path, history: Path, tests: int, runs: int) -> str:
    steps, totals = [], []
    for _ in range(runs):
        step, total = probe(suite, str(history))
        steps.append(step)
        totals.append(total)
    step, total = statistics.median(steps), statistics.median(totals)
    return (f"{name:<28} history step {step * 1e3:6.1f} ms CPU ({step / tests * 1e6:5.1f} us/test)"
            f" of a {total:5.2f} s CPU run: {step / total:6.2%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tests", type=int, default=2000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="poolchaos-bench-history-") as tmp:
        suite = make_suite(Path(tmp), options.tests)
        empty = Path(tmp, "empty.sqlite")
        print(case("empty store (grows per run)", suite, empty, options.tests, options.runs),
              flush=True)
        full = Path(tmp, "full.sqlite")
        fill(full, suite, options.tests)
        print(case("full store (200 runs kept)", suite, full, options.tests, options.runs),
              flush=True)


if __name__ == "__main__":
    main()
