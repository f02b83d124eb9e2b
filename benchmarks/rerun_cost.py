"""What diagnosing 40 failures costs: plain run vs the confirming run vs ``--poolchaos-rerun=3``.

Generates a suite of 100 tests in a temporary directory, each doing some work (``--work``
seconds of sleep, 0.1 by default: the plain run then takes about as long as the 15 s suite of
issue #7; with 0.02 pytest's start-up dominates every rerun), 40 of which fail in the plain
run:

* 28 deterministic failures (a wrong expected value);
* 6 flaky on their own (they fail on their 1st and 3rd run, whatever ran before them; a
  counter file per test, so every configuration sees the same sequence);
* 6 order-dependent victims of 2 polluters (an environment variable left set);
* 60 passing tests, the 2 polluters among them.

It runs the suite (serially, ``-p no:randomly -p no:cacheprovider``) without the plugin, with
it and ``--poolchaos-confirm=off``, with the default (the confirming run), and with
``--poolchaos-rerun=3``, ``--runs`` times each, and prints the median wall times and the
ratios to the plain run (no plugin). Target (issue #7): ``--poolchaos-rerun=3`` at most 4x.
It also checks the verdicts it expects (deterministic, flaky, order-dependent with the right
polluter) from the JSON report, so a cheap but wrong rerun cannot pass for a fast one.

    python benchmarks/rerun_cost.py            # 3 runs per configuration
    python benchmarks/rerun_cost.py --runs 1 --work 0.02
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

WORK = "time.sleep(WORK_S)"
DETERMINISTIC = 28
FLAKY = 6
VICTIMS = 6
PASSING = 58  # plus the 2 polluters: 60

CONFIGS = {
    "plain (no plugin)": ["-p", "no:poolchaos"],
    "plugin, confirm off": ["-p", "poolchaos", "--poolchaos-confirm=off"],
    "default (confirming run)": ["-p", "poolchaos"],
    "--poolchaos-rerun=3": ["-p", "poolchaos", "--poolchaos-rerun=3"],
}


def write_suite(root: Path, work_s: float) -> None:
    head = f"import os\nimport time\nfrom pathlib import Path\n\nWORK_S = {work_s}\n\n"
    det = [f"def test_wrong_{i:02d}():\n    {WORK}\n    assert {i} + 1 == {i + 2}\n"
           for i in range(DETERMINISTIC)]
    (root / "test_a_wrong.py").write_text(head + "\n\n".join(det))
    flaky = [textwrap.dedent(f"""\
        def test_flaky_{i}():
            {WORK}
            counter = Path("counters", "flaky_{i}")
            runs = int(counter.read_text()) + 1 if counter.exists() else 1
            counter.write_text(str(runs))
            assert runs not in (1, 3), f"lost a race on run {{runs}}"
        """) for i in range(FLAKY)]
    (root / "test_b_flaky.py").write_text(head + "\n\n".join(flaky))
    order: list[str] = []
    for group in range(2):
        order.append(f"def test_polluter_{group}():\n    {WORK}\n"
                     f"    os.environ['BENCH_MODE_{group}'] = 'legacy'\n")
        order += [f"def test_between_{group}_{i}():\n    {WORK}\n" for i in range(10)]
        order += [f"def test_victim_{group}_{i}():\n    {WORK}\n"
                  f"    assert os.environ.get('BENCH_MODE_{group}') != 'legacy', "
                  f"'BENCH_MODE_{group} is legacy'\n" for i in range(VICTIMS // 2)]
    (root / "test_c_order.py").write_text(head + "\n\n".join(order))
    passing = PASSING - 20
    (root / "test_d_ok.py").write_text(head + "\n\n".join(
        f"def test_ok_{i:02d}():\n    {WORK}\n" for i in range(passing)))


def run_once(root: Path, args: list[str]) -> tuple[float, dict | None]:
    shutil.rmtree(root / "counters", ignore_errors=True)
    (root / "counters").mkdir()
    report = root / "report.json"
    report.unlink(missing_ok=True)
    extra = [f"--poolchaos-json={report}"] if "poolchaos" in args else []
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p",
               "no:cacheprovider", "-p", "no:xdist", *args, *extra]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    tail = done.stdout.strip().splitlines()[-1:]
    if done.returncode != 1 or "40 failed" not in "".join(tail):
        raise SystemExit(f"unexpected run of {args}: rc {done.returncode}, {tail}")
    return seconds, json.loads(report.read_text()) if report.exists() else None


def check(data: dict) -> list[str]:
    """Verdicts that are not what the suite was built to show."""
    wrong = []
    for test in data["tests"]:
        diagnosis, name = test.get("diagnosis"), test["nodeid"].split("::")[-1]
        if diagnosis is None:
            continue
        want = ("deterministic" if name.startswith("test_wrong") else
                "flaky" if name.startswith("test_flaky") else "order-dependent")
        polluter = f"test_c_order.py::test_polluter_{name.split('_')[2]}" \
            if name.startswith("test_victim") else None
        if diagnosis["verdict"] != want or diagnosis["polluter"] != polluter:
            wrong.append(f"{name}: {diagnosis['verdict']}, polluter {diagnosis['polluter']}")
    return wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=float, default=0.1, help="seconds each test sleeps")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="poolchaos-rerun-cost-") as tmp:
        root = Path(tmp)
        write_suite(root, options.work)
        times: dict[str, list[float]] = {name: [] for name in CONFIGS}
        reports: dict[str, dict | None] = {}
        for _ in range(options.runs):
            for name, args in CONFIGS.items():
                seconds, reports[name] = run_once(root, args)
                times[name].append(seconds)
    plain = statistics.median(times["plain (no plugin)"])
    print(f"suite: {DETERMINISTIC + FLAKY + VICTIMS + PASSING + 2} tests, 40 failures "
          f"({DETERMINISTIC} deterministic, {FLAKY} flaky, {VICTIMS} order-dependent), "
          f"{options.work:g} s of work each; median of {options.runs} run(s)")
    for name in CONFIGS:
        median = statistics.median(times[name])
        print(f"  {name:<26} {median:6.2f} s   {median / plain:5.2f}x plain")
    for name in ("default (confirming run)", "--poolchaos-rerun=3"):
        report = reports.get(name)
        wrong = check(report) if report else ["no JSON report"]
        print(f"  {name}: {'every verdict as built' if not wrong else 'unexpected: '}"
              + "; ".join(wrong[:6]) + (" ..." if len(wrong) > 6 else ""))


if __name__ == "__main__":
    main()
