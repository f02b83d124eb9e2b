"""What the plugin costs with default settings: plain pytest vs ``-p poolchaos``.

Generates two suites in a temporary directory:

* trivial: 2,000 ``def test_i(): pass``;
* realistic: 500 tests using fixtures, threads, a thread pool, env and a queue.

Each suite runs serially and with ``-n 2`` (pytest-xdist), with ``-p no:poolchaos`` and with
``-p poolchaos``, alternating, ``--runs`` times; the script prints the medians, the ratio and
the added microseconds per test. Target: ratio <= 1.10 in every cell. The plugin runs keep
the journal on (one os.write per test start and result) and the history on (one SQLite
transaction at session end, the store growing by a run each time), as a default run does.

    python benchmarks/overhead.py            # 5 runs per cell
    python benchmarks/overhead.py --runs 9 --no-xdist
    python benchmarks/overhead.py --history-ab   # the history store alone: off vs on

``--history-ab`` runs the trivial suite with the plugin, history off and on alternately, and
compares CPU time (user + system of the pytest process) as well as wall time: on a shared,
noisy machine CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

TRIVIAL = 2000
REALISTIC = 500
REALISTIC_BODY = textwrap.dedent(
    """
    import os
    import queue
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import pytest

    @pytest.fixture
    def work_queue():
        q = queue.Queue()
        yield q
        while not q.empty():
            q.get_nowait()

    @pytest.fixture(scope="module")
    def shared_pool():
        with ThreadPoolExecutor(max_workers=2) as pool:
            yield pool

    @pytest.mark.parametrize("n", range({per_file}))
    def test_work(n, work_queue, shared_pool, monkeypatch):
        monkeypatch.setenv("BENCH_SLOT", str(n))
        worker = threading.Thread(target=work_queue.put, args=(n,))
        worker.start()
        worker.join()
        assert shared_pool.submit(pow, n, 2).result(timeout=10) == n * n
        assert work_queue.get(timeout=10) == n
        assert os.environ["BENCH_SLOT"] == str(n)
    """
)


def make_suites(root: Path) -> dict[str, Path]:
    trivial = root / "trivial"
    trivial.mkdir()
    for chunk in range(TRIVIAL // 500):
        body = "".join(f"def test_{i}():\n    pass\n\n" for i in range(500))
        (trivial / f"test_trivial_{chunk}.py").write_text(body)
    realistic = root / "realistic"
    realistic.mkdir()
    for chunk in range(10):
        (realistic / f"test_real_{chunk}.py").write_text(
            REALISTIC_BODY.format(per_file=REALISTIC // 10)
        )
    for suite in (trivial, realistic):
        (suite / "pytest.ini").write_text("[pytest]\n")
    return {"trivial": trivial, "realistic": realistic}


def run_once(suite: Path, plugin: bool, xdist: bool, history: bool = True) -> float:
    return _run(suite, plugin, xdist, history)[0]


def _run(suite: Path, plugin: bool, xdist: bool, history: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the pytest process and its children)."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            "-p", "poolchaos" if plugin else "no:poolchaos"]
    if plugin:  # journal and history are on by default (under the cache dir, disabled here)
        args += [f"--poolchaos-journal={suite / 'journal.jsonl'}",
                 f"--poolchaos-history={suite / 'history.sqlite' if history else 'off'}"]
    args += ["-n", "2"] if xdist else ["-p", "no:xdist"]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": ""}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, cwd=suite, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{suite.name} failed (plugin={plugin}):\n{done.stdout[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def history_ab(suite: Path, tests: int, runs: int) -> str:
    """The plugin with the history store off and on, alternately, on one suite."""
    wall: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(runs):
        for history in (False, True):
            elapsed, used = _run(suite, True, False, history)
            wall[history].append(elapsed)
            cpu[history].append(used)
    off, on = statistics.median(cpu[False]), statistics.median(cpu[True])
    return (f"{suite.name:<10} history off vs on (serial, plugin loaded)  CPU {off:6.2f}s -> "
            f"{on:6.2f}s  ratio {on / off:5.3f}  added {(on - off) / tests * 1e6:+6.1f} us/test"
            f"  | wall {statistics.median(wall[False]):6.2f}s -> "
            f"{statistics.median(wall[True]):6.2f}s")


def measure(suite: Path, tests: int, xdist: bool, runs: int) -> str:
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(runs):
        for plugin in (False, True):  # alternate so drifting load hits both alike
            times[plugin].append(run_once(suite, plugin, xdist))
    base, with_plugin = statistics.median(times[False]), statistics.median(times[True])
    added_us = (with_plugin - base) / tests * 1e6
    mode = "-n 2 " if xdist else "serial"
    return (f"{suite.name:<10} {mode}  without {base:6.2f}s  with {with_plugin:6.2f}s  "
            f"ratio {with_plugin / base:5.3f}  added {added_us:+7.1f} us/test  "
            f"(runs: {' '.join(f'{t:.2f}' for t in times[False])} | "
            f"{' '.join(f'{t:.2f}' for t in times[True])})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-xdist", action="store_true", help="serial cells only")
    parser.add_argument("--history-ab", action="store_true",
                        help="only compare the plugin with the history store off and on")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="poolchaos-bench-") as tmp:
        suites = make_suites(Path(tmp))
        counts = {"trivial": TRIVIAL, "realistic": REALISTIC}
        if options.history_ab:
            for name, suite in suites.items():
                print(history_ab(suite, counts[name], options.runs), flush=True)
            return
        for xdist in (False,) if options.no_xdist else (False, True):
            for name, suite in suites.items():
                print(measure(suite, counts[name], xdist, options.runs), flush=True)


if __name__ == "__main__":
    main()
