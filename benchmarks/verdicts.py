"""Verdict accuracy: how often diagnostic reruns call flaky and deterministic failures right.

Generates a suite of flaky tests (fail with probability p = 0.3 on each rerun, seeded per test
and call, and forced to fail in the main run: only failures get diagnosed) and deterministic
failures, runs it once with ``--poolchaos-rerun=N`` in each rerun mode and prints the share of
verdicts that are correct. With N = 5 a flaky test is called deterministic only when all five
reruns fail (0.3^5 = 0.2%); isolated-only reruns also send it through the polluter search when
all five pass (0.7^5 = 17%), which then has to find no polluter.

    python benchmarks/verdicts.py                # 20 flaky + 10 deterministic, N = 5
    python benchmarks/verdicts.py --quick        # 6 flaky + 3 deterministic, inline + both
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAKY = """
import pathlib
import random

def _fails(name, p={p}, seed={seed}):
    counter = pathlib.Path(__file__).with_name(name + ".calls")
    calls = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(calls + 1))
    return calls == 0 or random.Random(f"{{seed}}-{{name}}-{{calls}}").random() < p
"""


def generate(root: Path, flaky: int, deterministic: int, p: float, seed: int) -> dict[str, str]:
    truth: dict[str, str] = {}
    lines = [FLAKY.format(p=p, seed=seed)]
    for index in range(flaky + deterministic):
        name = f"test_{index:03d}"
        if index % 3 == 2 and deterministic > 0 and len(
                [v for v in truth.values() if v == "deterministic"]) < deterministic:
            lines += [f"def {name}():", "    assert 1 + 1 == 3", ""]
            truth[name] = "deterministic"
        else:
            lines += [f"def {name}():", f"    assert not _fails({name!r})", ""]
            truth[name] = "flaky"
    (root / "test_verdicts.py").write_text("\n".join(lines))
    return truth


def run(mode: str, reruns: int, flaky: int, deterministic: int, p: float,
        seed: int) -> tuple[int, int, dict[str, int], float]:
    with tempfile.TemporaryDirectory(prefix="poolchaos-verdicts-") as tmp:
        root = Path(tmp)
        truth = generate(root, flaky, deterministic, p, seed)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "-p", "poolchaos", "-q",
                        "-p", "no:cacheprovider", "-p", "no:randomly",
                        f"--poolchaos-rerun={reruns}", f"--poolchaos-rerun-mode={mode}",
                        "--poolchaos-json=out.json"], cwd=root, stdout=subprocess.DEVNULL,
                       check=False, timeout=1800)
        seconds = time.perf_counter() - start
        data = json.loads((root / "out.json").read_text())
    right, calls = 0, {}
    for test in data["tests"]:
        name = test["nodeid"].rsplit("::", 1)[-1]
        verdict = (test["diagnosis"] or {}).get("verdict", "none")
        key = f"{truth[name]}->{verdict}"
        calls[key] = calls.get(key, 0) + 1
        right += verdict == truth[name]
    return right, len(truth), calls, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reruns", type=int, default=5)
    parser.add_argument("--p", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    flaky, deterministic = (6, 3) if options.quick else (20, 10)
    modes = ("inline", "both") if options.quick else ("inline", "isolated", "both")
    print(f"{flaky} flaky (p={options.p}) + {deterministic} deterministic failures, "
          f"N={options.reruns} reruns")
    print(f"{'mode':9} {'correct':>9} {'share':>6} {'seconds':>8}  calls (truth->verdict)")
    for mode in modes:
        right, total, calls, seconds = run(mode, options.reruns, flaky, deterministic,
                                           options.p, options.seed)
        detail = ", ".join(f"{key}: {count}" for key, count in sorted(calls.items()))
        print(f"{mode:9} {right:>4}/{total:<4} {right / total:>6.0%} {seconds:>8.1f}  {detail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
