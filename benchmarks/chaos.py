"""Chaos mode against plain reruns, on a corpus of load-sensitive flaky tests.

The corpus (``benchmarks/chaos_corpus/``) holds flaky tests modelled on real-world flakes (each
names its source), deterministic failures and stable tests. Every round runs the whole corpus
in one ``pytest -p poolchaos`` subprocess and reads each test's outcome from the JSON report:

* plain rounds: ``--poolchaos-chaos=off``;
* chaos rounds: ``--poolchaos-chaos=heavy``, reseeded per round;
* light rounds: ``--poolchaos-chaos=light`` (stable tests must never fail there);
* cost: the stable tests alone (a green suite), off and light alternating, wall time.

For each flaky test it prints the run of its first failure (plain vs chaos, up to --runs) and
whether it was exposed within 3 runs. Targets: at least 90% exposed within 3 chaos runs, and
no stable test failing under light. The last line is, exactly,
``chaos: exposed=A/N plain=B/N false=C/M``.

    python benchmarks/chaos.py                  # 5 plain, 5 chaos, 3 light rounds
    python benchmarks/chaos.py --runs 3 --seed 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "chaos_corpus"
WITHIN = 3  # exposure counts the first failure within this many runs
ROUND_LIMIT_S = 600.0


def run_round(spec: str, select: str = "") -> tuple[dict[str, str], float]:
    """Outcome per test name for one run of the corpus under ``spec``; and its wall time."""
    with tempfile.TemporaryDirectory(prefix="poolchaos-bench-") as tmp:
        report = Path(tmp, "report.json")
        args = [sys.executable, "-m", "pytest", "-p", "poolchaos", "-p", "no:cacheprovider",
                "-p", "no:randomly", "-p", "no:xdist", "-q", "-c", str(CORPUS / "pytest.ini"),
                f"--rootdir={CORPUS}", str(CORPUS), f"--poolchaos-chaos={spec}",
                f"--poolchaos-json={report}", "--poolchaos-journal=off"]
        if select:
            args += ["-k", select]
        start = time.perf_counter()
        subprocess.run(args, cwd=CORPUS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=ROUND_LIMIT_S, check=False)
        seconds = time.perf_counter() - start
        data = json.loads(report.read_text())
    return {t["nodeid"].split("::")[-1]: t["outcome"] for t in data["tests"]}, seconds


def first_failure(rounds: list[dict[str, str]], name: str) -> int | None:
    for number, outcomes in enumerate(rounds, 1):
        if outcomes.get(name) in ("failed", "error"):
            return number
    return None


def kind(name: str) -> str:
    for prefix in ("flaky", "stable", "deterministic"):
        if name.startswith(f"test_{prefix}_"):
            return prefix
    raise ValueError(f"corpus test {name} does not say what it is")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="plain and chaos rounds (>= 3)")
    parser.add_argument("--light-runs", type=int, default=3)
    parser.add_argument("--cost-runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1, help="first chaos seed")
    options = parser.parse_args()
    runs = max(WITHIN, options.runs)

    plain, chaos, light = [], [], []
    for number in range(runs):  # alternating, so machine load drifts evenly over both
        plain.append(run_round("off")[0])
        chaos.append(run_round(f"heavy,seed={options.seed + number}")[0])
    for number in range(options.light_runs):
        light.append(run_round(f"light,seed={options.seed + number}")[0])

    names = sorted(plain[0], key=lambda n: (kind(n), n))
    flaky = [n for n in names if kind(n) == "flaky"]
    stable = [n for n in names if kind(n) == "stable"]
    deterministic = [n for n in names if kind(n) == "deterministic"]

    print(f"corpus: {len(flaky)} load-sensitive flaky, {len(deterministic)} deterministic, "
          f"{len(stable)} stable tests; {runs} plain and {runs} heavy rounds (seeds "
          f"{options.seed}..{options.seed + runs - 1}), {options.light_runs} light rounds")
    print()
    print(f"{'test':56} {'plain 1st':>9} {'chaos 1st':>9} {'chaos fails':>11} "
          f"{'light fails':>11}")

    def row(name: str) -> None:
        p, c = first_failure(plain, name), first_failure(chaos, name)
        fails = sum(r.get(name) in ("failed", "error") for r in chaos)
        light_fails = sum(r.get(name) in ("failed", "error") for r in light)
        print(f"{name:56} {p or '-':>9} {c or '-':>9} {f'{fails}/{runs}':>11} "
              f"{f'{light_fails}/{len(light)}':>11}")

    for name in [*flaky, *deterministic, *stable]:
        row(name)

    exposed = [n for n in flaky if (first_failure(chaos, n) or WITHIN + 1) <= WITHIN]
    plain_exposed = [n for n in flaky if (first_failure(plain, n) or WITHIN + 1) <= WITHIN]
    false = [n for n in stable if any(r.get(n) in ("failed", "error") for r in light)]
    always = [n for n in deterministic if all(r.get(n) in ("failed", "error")
                                              for r in [*plain, *chaos])]
    print()
    print(f"exposed within {WITHIN} runs: chaos (heavy) {len(exposed)}/{len(flaky)} "
          f"({100 * len(exposed) / len(flaky):.0f}%), plain reruns {len(plain_exposed)}/"
          f"{len(flaky)} ({100 * len(plain_exposed) / len(flaky):.0f}%); target >= 90% "
          f"under chaos")
    print(f"deterministic controls failing every run: {len(always)}/{len(deterministic)}")
    print(f"stable tests failing under light: {len(false)}/{len(stable)} "
          f"{'(' + ', '.join(false) + ')' if false else ''}; target 0")

    off_times, light_times = [], []
    for number in range(options.cost_runs):
        off_times.append(run_round("off", "stable")[1])
        light_times.append(run_round(f"light,seed={options.seed + number}", "stable")[1])
    off_s, light_s = statistics.median(off_times), statistics.median(light_times)
    print(f"cost of light on a green suite ({len(stable)} stable tests, wall time of the "
          f"pytest process, median of {options.cost_runs}): off {off_s:.2f} s, light "
          f"{light_s:.2f} s, ratio {light_s / off_s:.2f} (runs off "
          f"{' '.join(f'{t:.2f}' for t in off_times)} | light "
          f"{' '.join(f'{t:.2f}' for t in light_times)})")
    print(f"chaos: exposed={len(exposed)}/{len(flaky)} plain={len(plain_exposed)}/{len(flaky)} "
          f"false={len(false)}/{len(stable)}")


if __name__ == "__main__":
    main()
