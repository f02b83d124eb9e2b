"""Check that the labelled corpus behaves as its labels say, without the plugin.

For one half (or both) of benchmarks/corpus/:

* the collected tests and the labelled tests are the same set;
* in a default run every labelled failure fails and every other test passes;
* run alone, deterministic and flaky failures fail and order-dependent ones pass;
* a flaky failure run alone a second time (same state directory) passes;
* an order-dependent failure fails when run right after its labelled polluter.

    python benchmarks/corpus_check.py --half tune
    python benchmarks/corpus_check.py --half both --quick   # default run and labels only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import accuracy_metrics as am

CORPUS = Path(__file__).resolve().parent / "corpus"
STATE_ENV = "CORPUS_STATE_DIR"


def run_pytest(half: Path, args: list[str], state: Path | None = None) -> dict[str, str]:
    """Outcomes by nodeid (passed / failed / error / skipped) of one plugin-free run."""
    with tempfile.TemporaryDirectory(prefix="corpus-check-") as tmp:
        junit = Path(tmp, "junit.xml")
        env = dict(os.environ, **{STATE_ENV: str(state or Path(tmp))})
        subprocess.run([sys.executable, "-m", "pytest", "-p", "no:poolchaos", "-p",
                        "no:cacheprovider", "-p", "no:randomly", "-q",
                        f"--junitxml={junit}", "-o", "junit_family=xunit2", *args],
                       cwd=half, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=600, check=False)
        return am.junit_outcomes(junit.read_text()) if junit.exists() else {}


def check_half(half: Path, quick: bool) -> list[str]:
    labels = json.loads((half / "labels.json").read_text())
    problems: list[str] = []
    start = time.perf_counter()
    outcomes = run_pytest(half, [])
    print(f"{half.name}: default run {time.perf_counter() - start:.1f} s, "
          f"{len(outcomes)} tests, {sum(o != 'passed' for o in outcomes.values())} not passed")
    for nodeid in sorted(set(outcomes) ^ set(labels)):
        where = "collected but not labelled" if nodeid in outcomes else "labelled, not collected"
        problems.append(f"{nodeid}: {where}")
    for nodeid, label in labels.items():
        want = "passed" if label["category"] is None else "failed"
        got = outcomes.get(nodeid)
        if got is not None and (got == "passed") != (want == "passed"):
            problems.append(f"{nodeid}: default run {got}, label says {want}")
    if not quick:
        problems += check_alone(half, labels)
    return problems


def check_alone(half: Path, labels: dict[str, dict[str, object]]) -> list[str]:
    problems = []
    for nodeid, label in labels.items():
        verdict = label["verdict"]
        if label["category"] is None:
            continue
        with tempfile.TemporaryDirectory(prefix="corpus-state-") as tmp:
            state = Path(tmp)
            alone = run_pytest(half, [nodeid], state).get(nodeid)
            if verdict == "order-dependent":
                if alone != "passed":
                    problems.append(f"{nodeid}: order-dependent but {alone} alone")
                pair = run_pytest(half, [str(label["polluter"]), nodeid], state).get(nodeid)
                if pair == "passed":
                    problems.append(f"{nodeid}: passes right after its polluter")
                continue
            if alone == "passed":
                problems.append(f"{nodeid}: {verdict} failure passed alone")
            if verdict == "flaky":
                again = run_pytest(half, [nodeid], state).get(nodeid)
                if again != "passed":
                    problems.append(f"{nodeid}: flaky but {again} on its second attempt")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=("tune", "heldout", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="default run and labels only")
    options = parser.parse_args()
    halves = ("tune", "heldout") if options.half == "both" else (options.half,)
    problems = [f"{name}: {problem}" for name in halves
                for problem in check_half(CORPUS / name, options.quick)]
    for problem in problems:
        print(problem)
    print("corpus OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
