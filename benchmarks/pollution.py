"""Polluter search cost: pytest-poolchaos vs. detect-test-pollution on the same suites.

Generates suites of N tests (50 per file) with one polluter at a random position (seeded) and
the victim last, polluting through

* (a) an env var named in the victim's failure message (the ledger fast path applies);
* (b) a module-level dict not named anywhere (bisection).

poolchaos runs the suite once with ``--poolchaos-rerun=1 --poolchaos-rerun-mode=isolated``
(bisect on by default); detect-test-pollution gets ``--failing-test <victim>``. A conftest
counts every pytest session started in the suite, so both tools' subprocess runs are counted
the same way (poolchaos' own main run is not counted, it is the run the user made anyway).
Wall time: detect-test-pollution's whole run vs. poolchaos' diagnostic phase (isolated rerun +
search) and, for reference, poolchaos' whole run including the main run.
Targets: case (a) <= 2 runs, case (b) <= ceil(log2 N) + 2, less wall time at every N.

    python benchmarks/pollution.py            # N = 50, 200, 1000; 3 seeds
    python benchmarks/pollution.py --quick    # N = 50, 1 seed
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PER_FILE = 50
COUNTER = "BENCH_PYTEST_SESSIONS"
CONFTEST = f"""
import os

def pytest_sessionstart(session):
    path = os.environ.get({COUNTER!r})
    if path and not hasattr(session.config, "workerinput"):
        with open(path, "a") as out:
            out.write("x\\n")
"""
VICTIM = {
    "a": ("import os\n\ndef test_victim():\n"
          "    assert os.environ.get('BENCH_POLLUTED_FLAG') is None, "
          "'BENCH_POLLUTED_FLAG is set'\n"),
    "b": "import helpers\n\ndef test_victim():\n    assert helpers.total() == 0\n",
}
POLLUTE = {"a": "os.environ['BENCH_POLLUTED_FLAG'] = '1'", "b": "helpers._STORE['k'] = 1"}


@dataclass
class Row:
    tool: str
    case: str
    n: int
    seed: int
    runs: int
    seconds: float
    found: bool
    total_s: float = 0.0


def generate(root: Path, n: int, case: str, seed: int) -> str:
    polluter = random.Random(seed).randrange(n - 1)
    (root / "conftest.py").write_text(CONFTEST)
    (root / "helpers.py").write_text("_STORE = {}\n\ndef total():\n    return len(_STORE)\n")
    for start in range(0, n - 1, PER_FILE):
        lines = ["import os", "import helpers", ""]
        for index in range(start, min(start + PER_FILE, n - 1)):
            body = POLLUTE[case] if index == polluter else "assert True"
            lines += [f"def test_{index:04d}():", f"    {body}", ""]
        (root / f"test_{start // PER_FILE:03d}.py").write_text("\n".join(lines))
    (root / "test_zzz_victim.py").write_text(VICTIM[case])
    return f"test_{polluter // PER_FILE:03d}.py::test_{polluter:04d}"


def sessions(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def run_poolchaos(root: Path, env: dict[str, str], polluter: str) -> tuple[int, float, bool,
                                                                           float]:
    counter = root / "sessions.txt"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-p", "poolchaos", "-p", "no:cacheprovider",
                    "-p", "no:randomly", "-q", "--poolchaos-rerun=1",
                    "--poolchaos-rerun-mode=isolated", "--poolchaos-json=out.json"],
                   cwd=root, env=env, stdout=subprocess.DEVNULL, check=False, timeout=900)
    total = time.perf_counter() - start
    data = json.loads((root / "out.json").read_text())
    victim = next(t for t in data["tests"] if t["nodeid"].endswith("test_victim"))
    diagnosis = victim["diagnosis"] or {}
    search = diagnosis.get("polluter_search") or {}
    rerun_s = sum(a["duration_s"] for a in diagnosis.get("attempts", ())
                  if a["mode"] == "isolated")
    # the isolated rerun's own duration is the test's; its process cost is in the search's
    # neighbours, so time the diagnostic phase as total minus the main run instead
    main_s = data["session"]["duration_s"]
    diagnostic = max(0.0, total - main_s) if main_s else search.get("seconds", 0.0) + rerun_s
    return sessions(counter) - 1, diagnostic, diagnosis.get("polluter") == polluter, total


def run_detect(root: Path, env: dict[str, str], polluter: str) -> tuple[int, float, bool]:
    counter = root / "sessions.txt"
    counter.unlink(missing_ok=True)
    tool = shutil.which("detect-test-pollution", path=str(Path(sys.executable).parent))
    args = [tool] if tool else [sys.executable, "-m", "detect_test_pollution"]
    # detect-test-pollution should not pay for our plugin, which the entry point autoloads
    denv = dict(env, PYTEST_ADDOPTS="-p no:poolchaos")
    start = time.perf_counter()
    out = subprocess.run([*args, "--failing-test", "test_zzz_victim.py::test_victim",
                          "--tests", "."], cwd=root, env=denv, capture_output=True, text=True,
                         check=False, timeout=900)
    seconds = time.perf_counter() - start
    return sessions(counter), seconds, polluter in out.stdout


def measure(n: int, case: str, seed: int) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="poolchaos-bench-") as tmp:
        root = Path(tmp)
        polluter = generate(root, n, case, seed)
        env = dict(os.environ, **{COUNTER: str(root / "sessions.txt")})
        env.pop("PYTEST_ADDOPTS", None)
        runs, seconds, found, total = run_poolchaos(root, env, polluter)
        rows.append(Row("poolchaos", case, n, seed, runs, seconds, found, total))
        runs, seconds, found = run_detect(root, env, polluter)
        rows.append(Row("detect-test-pollution", case, n, seed, runs, seconds, found, seconds))
    return rows


def target(case: str, n: int) -> int:
    return 2 if case == "a" else math.ceil(math.log2(n)) + 2


def table(rows: list[Row]) -> str:
    lines = [f"{'case':4} {'N':>5} {'tool':22} {'runs (max)':>10} {'target':>6} "
             f"{'wall s (median)':>15} {'whole run s':>11} {'found':>6}"]
    keys = sorted({(r.case, r.n, r.tool) for r in rows}, key=lambda k: (k[0], k[1], k[2][0]))
    for case, n, tool in keys:
        cell = [r for r in rows if (r.case, r.n, r.tool) == (case, n, tool)]
        lines.append(
            f"{case:4} {n:>5} {tool:22} {max(r.runs for r in cell):>10} "
            f"{target(case, n) if tool == 'poolchaos' else '':>6} "
            f"{statistics.median(r.seconds for r in cell):>15.2f} "
            f"{statistics.median(r.total_s for r in cell):>11.2f} "
            f"{sum(r.found for r in cell)}/{len(cell):>4}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 50, one seed")
    parser.add_argument("--sizes", type=int, nargs="*", default=[50, 200, 1000])
    parser.add_argument("--seeds", type=int, default=3)
    options = parser.parse_args()
    sizes, seeds = ([50], 1) if options.quick else (options.sizes, options.seeds)
    rows: list[Row] = []
    for n in sizes:
        for case in ("a", "b"):
            for seed in range(seeds):
                rows += measure(n, case, seed)
                print(f"  done N={n} case={case} seed={seed}", file=sys.stderr)
    print(table(rows))
    ok = all(r.runs <= target(r.case, r.n) and r.found for r in rows if r.tool == "poolchaos")
    faster = all(
        statistics.median(r.seconds for r in rows if (r.tool, r.case, r.n) == ("poolchaos", c, n))
        < statistics.median(r.seconds for r in rows
                            if (r.tool, r.case, r.n) == ("detect-test-pollution", c, n))
        for c in ("a", "b") for n in sizes)
    print(f"runs within target and polluter found: {ok}; less wall time at every N: {faster}")
    return 0 if ok and faster else 1


if __name__ == "__main__":
    raise SystemExit(main())
