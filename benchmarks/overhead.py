"""What the plugin costs with default settings: plain pytest vs ``-p poolchaos``.

Generates suites in a temporary directory:

* trivial: 2,000 ``def test_i(): pass``;
* realistic: 500 tests using fixtures, threads, a thread pool, env and a queue;
* threads: 300 tests that each start and join 2 threads (the spawn wrappers' hot path);
* one: a single passing test, for the whole process's start-up cost.

Each suite runs serially and (except ``one``) with ``-n 2`` (pytest-xdist), with
``-p no:poolchaos`` and with ``-p poolchaos``, as ``--runs`` pairs (four times as many for
``one``), the order within a pair swapped every other pair. The script prints the median of the
per-pair ratios of wall time and of CPU time (user + system of the pytest process and its
workers) with their interquartile range in brackets, and the median per-pair difference as
added microseconds per test (milliseconds for ``one``). Targets: ratio
<= 1.10 in every cell, and at most 20 ms added to the one-test process. The plugin is loaded
as users load it, by its entry point; the baseline is ``-p no:poolchaos``. Plugin runs keep the
journal and the history on, as a default run does (``-p no:cacheprovider`` would switch
``auto`` off, so both go to explicit files; the history store grows by a run each time).

On a shared or busy machine wall time drifts; CPU time drifts less, and ``--instructions``
counts instructions with ``valgrind --tool=callgrind`` (the same count whatever else the
machine is doing; about 50 times slower, so it runs the one-test and a 300-test trivial suite).
Under callgrind every test takes longer than the history's quick-pass bound (20 ms), so the
history store writes a row per test there, and a test that takes longer than the slow-down
margin (0.1 s) makes the run open the store instead of parking in the pending file: the count
overstates what the history costs a real run, where a trivial test is a packed quick pass.
Each cell therefore also prints the ratio of the same run with ``--poolchaos-history=off``:
the per-test path alone, which repeats to the instruction.

    python benchmarks/overhead.py                   # 7 pairs per cell
    python benchmarks/overhead.py --runs 9 --no-xdist
    python benchmarks/overhead.py --instructions
    python benchmarks/overhead.py --gc              # the garbage collector's share
    python benchmarks/overhead.py --features        # the journal's and the history's shares

``--features`` runs each serial suite with the plugin as a default run has it, with its journal
off, with its history off and with both off, every variant in each round beside the baseline:
the last column is what the plugin's start-up and its per-test scope cost alone, which no
setting takes away.

``--gc`` runs each serial suite with and without the plugin under a helper that counts the
collector's runs and the time inside it: a plugin's objects count towards the threshold of a
full collection (one pass over every object of the process), so near that threshold a few
thousand objects more move a full collection into the run, or add one.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

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
THREADS_BODY = textwrap.dedent(
    """
    import threading

    import pytest

    @pytest.mark.parametrize("n", range({per_file}))
    def test_threads(n):
        done = []
        threads = [threading.Thread(target=done.append, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(done) == [0, 1]
    """
)


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    tests: int
    xdist: bool = True


def make_suites(root: Path, trivial: int = 2000) -> dict[str, Suite]:
    suites = {
        "trivial": _suite(root, "trivial", trivial, lambda chunk, size: "".join(
            f"def test_{chunk}_{i}():\n    pass\n\n" for i in range(size))),
        "realistic": _suite(root, "realistic", 500,
                            lambda chunk, size: REALISTIC_BODY.format(per_file=size)),
        "threads": _suite(root, "threads", 300,
                          lambda chunk, size: THREADS_BODY.format(per_file=size)),
        "one": _suite(root, "one", 1, lambda chunk, size: "def test_one():\n    pass\n"),
    }
    return {name: suite for name, suite in suites.items() if suite is not None}


def _suite(root: Path, name: str, tests: int, body: object) -> Suite:
    path = root / name
    path.mkdir()
    files = max(1, tests // 250)
    for chunk in range(files):
        (path / f"test_{name}_{chunk}.py").write_text(body(chunk, tests // files))  # type: ignore[operator]
    (path / "pytest.ini").write_text("[pytest]\n")
    return Suite(name, path, tests, xdist=name != "one")


def command(suite: Suite, plugin: bool, xdist: bool, off: tuple[str, ...] = ()) -> list[str]:
    """The pytest command of one run; ``off`` names plugin features switched off for it
    (``journal``, ``history``: see ``FEATURES``)."""
    # Installed and loaded by its entry point, as users run it; -p no:poolchaos is the baseline.
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    if plugin:
        journal = "off" if "journal" in off else suite.path / "journal.jsonl"
        history = "off" if "history" in off else suite.path / "history.sqlite"
        args += [f"--poolchaos-journal={journal}", f"--poolchaos-history={history}"]
    else:
        args += ["-p", "no:poolchaos"]
    return args + (["-n", "2"] if xdist else ["-p", "no:xdist"])


def _env() -> dict[str, str]:
    # Bytecode caches as a user has them; plugins autoload; a fixed hash seed so instruction
    # counts repeat (string hashing differs between seeds).
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS"):
        env.pop(name, None)
    return env


def run_once(suite: Suite, plugin: bool, xdist: bool, off: tuple[str, ...] = ()
             ) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the pytest process and everything it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command(suite, plugin, xdist, off), cwd=suite.path, env=_env(),
                          capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{suite.name} failed (plugin={plugin}):\n{done.stdout[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


_Key = TypeVar("_Key")


def _rounds(suite: Suite, variants: list[tuple[_Key, tuple[str, ...] | None]], xdist: bool,
            runs: int) -> list[dict[_Key, tuple[float, float]]]:
    """``runs`` rounds, each running every variant once (``None``: without the plugin, else
    the features switched off), after one warming run of each (the bytecode caches and the
    page cache). The order is reversed every other round: load that drifts within a round
    falls on every side of the comparison alike."""
    for _, off in variants:
        run_once(suite, off is not None, xdist, off or ())
    if suite.name == "one":
        runs *= 4  # a third of a second each: enough rounds to see a few milliseconds
    return [{key: run_once(suite, off is not None, xdist, off or ())
             for key, off in (variants if index % 2 == 0 else variants[::-1])}
            for index in range(runs)]


def measure(suite: Suite, xdist: bool, runs: int) -> str:
    pairs = _rounds(suite, [(False, None), (True, ())], xdist, runs)
    wall = _summary([p[True][0] / p[False][0] for p in pairs])
    cpu = _summary([p[True][1] / p[False][1] for p in pairs])
    base = statistics.median(p[False][0] for p in pairs)
    plugged = statistics.median(p[True][0] for p in pairs)
    mode = "-n 2 " if xdist else "serial"
    if suite.name == "one":
        added = (f"added {_median_gap(pairs, 0) * 1e3:+6.1f} ms wall, "
                 f"{_median_gap(pairs, 1) * 1e3:+6.1f} ms CPU")
    else:
        added = (f"added {_median_gap(pairs, 0) / suite.tests * 1e6:+7.1f} us/test wall, "
                 f"{_median_gap(pairs, 1) / suite.tests * 1e6:+7.1f} us/test CPU")
    return (f"{suite.name:<10} {mode}  wall {base:6.2f}s -> {plugged:6.2f}s ratio {wall}   "
            f"CPU ratio {cpu}   {added}")


#: the variants ``--features`` runs: a name, and the features switched off in it
FEATURES: dict[str, tuple[str, ...]] = {
    "default": (),
    "journal off": ("journal",),
    "history off": ("history",),
    "both off": ("journal", "history"),
}


def measure_features(suite: Suite, runs: int) -> str:
    """Serial wall-time ratios of the plugin with and without the journal and the history:
    what the per-test scope costs alone, and what each record of the run adds to it. Every
    round runs the baseline and each variant once, in an order reversed every other round,
    and each variant is compared with its own round's baseline."""
    variants: list[tuple[str, tuple[str, ...] | None]] = [
        ("baseline", None), *FEATURES.items()]
    rounds = _rounds(suite, variants, False, runs)
    cells = "   ".join(
        f"{name} {_summary([r[name][0] / r['baseline'][0] for r in rounds])}"
        for name in FEATURES)
    return f"{suite.name:<10} serial  {cells}"


def _summary(ratios: list[float]) -> str:
    """The median of the per-pair ratios and, in brackets, their middle half: a machine whose
    runs spread wider than the target cannot tell 1.05 from 1.15, and the reader sees that."""
    low, _, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios * 3)
    return f"{statistics.median(ratios):5.3f} [{low:5.3f}-{high:5.3f}]"


def _median_gap(pairs: list[dict[bool, tuple[float, float]]], index: int) -> float:
    return statistics.median(p[True][index] - p[False][index] for p in pairs)


_IREFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def _fresh(suite: Suite, plugin: bool) -> None:
    # The journal and history files grow with every run, so counting starts from files that
    # hold exactly one earlier run: two counts agree, and the count is a user's steady state
    # (a store that exists), not the one run that creates it. A green run parks itself in the
    # pending file; listing the history folds it into the store, as a user's next failing run
    # or ``poolchaos history`` would.
    for name in ("journal.jsonl", "history.sqlite", "history.sqlite-wal", "history.sqlite-shm",
                 "history.sqlite.pending"):
        (suite.path / name).unlink(missing_ok=True)
    subprocess.run(command(suite, plugin, xdist=False), cwd=suite.path, env=_env(),
                   capture_output=True, timeout=600)
    if plugin:
        subprocess.run([sys.executable, "-m", "pytest_poolchaos.cli", "history", "--db",
                        str(suite.path / "history.sqlite")], cwd=suite.path, env=_env(),
                       capture_output=True, timeout=600, check=True)


def instructions(suite: Suite, plugin: bool, extra: tuple[str, ...] = ()) -> int:
    _fresh(suite, plugin)
    args = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
            *command(suite, plugin, xdist=False), *extra]
    done = subprocess.run(args, cwd=suite.path, env=_env(), capture_output=True, text=True,
                          timeout=3600)
    found = _IREFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind failed for {suite.name}:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def measure_instructions(suite: Suite) -> str:
    # _fresh's run also fills the bytecode caches: compiling is not the plugin's cost.
    base, with_plugin = instructions(suite, False), instructions(suite, True)
    history = _history_path(suite)
    # The same run with the history store off: a count that does not depend on how many
    # tests callgrind slowed past the history's bounds (see the module's docstring).
    without = instructions(suite, True, ("--poolchaos-history=off",))
    per = "" if suite.tests == 1 else f"  added {(with_plugin - base) / suite.tests:,.0f} per test"
    return (f"{suite.name:<10} serial  instructions {base / 1e6:8.1f}M -> "
            f"{with_plugin / 1e6:8.1f}M  ratio {with_plugin / base:5.3f}{per}  "
            f"history {history}; without the history store {without / base:5.3f}")


def _history_path(suite: Suite) -> str:
    # Which way the counted run kept its history: the counts of the two ways differ by about
    # 20M instructions, and under callgrind a test may pass the slow-down margin or not
    # depending on how busy the machine is.
    waiting = suite.path / "history.sqlite.pending"
    parked = waiting.exists() and waiting.stat().st_size > 0
    return "parked (pending file)" if parked else "stored (a test took 0.1 s or more)"


GC_HELPER = """
import gc, sys, time

import pytest

_SEEN = {"inside": 0.0, "since": 0.0, "runs": [0, 0, 0]}


def _count(phase, info):
    if phase == "start":
        _SEEN["since"] = time.perf_counter()
    else:
        _SEEN["inside"] += time.perf_counter() - _SEEN["since"]
        _SEEN["runs"][info["generation"]] += 1


gc.callbacks.append(_count)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    sys.stderr.write("GC-STATS %f %d %d %d\\n" % (_SEEN["inside"], *_SEEN["runs"]))
"""
_GC_STATS = re.compile(r"GC-STATS ([\d.]+) (\d+) (\d+) (\d+)")


def gc_once(suite: Suite, plugin: bool, helper: Path) -> tuple[float, tuple[int, ...]]:
    """(seconds inside the collector, runs of each generation) of one serial session."""
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(helper), env.get("PYTHONPATH")]))
    done = subprocess.run([*command(suite, plugin, xdist=False), "-p", "_poolchaos_gc"],
                          cwd=suite.path, env=env, capture_output=True, text=True, timeout=600)
    found = _GC_STATS.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{suite.name} failed (plugin={plugin}):\n{done.stderr[-2000:]}")
    return float(found.group(1)), tuple(int(n) for n in found.groups()[1:])


def measure_gc(suite: Suite, runs: int, helper: Path) -> str:
    for plugin in (False, True):  # compiling what a cold run imports allocates too
        gc_once(suite, plugin, helper)
    seen = {plugin: [gc_once(suite, plugin, helper) for _ in range(runs)]
            for plugin in (False, True)}
    inside = {plugin: statistics.median(s for s, _ in seen[plugin]) * 1e3 for plugin in seen}
    full = {plugin: seen[plugin][-1][1][2] for plugin in seen}  # the same count every run
    young = {plugin: seen[plugin][-1][1][0] for plugin in seen}
    return (f"{suite.name:<10} serial  full collections {full[False]} -> {full[True]}, "
            f"youngest {young[False]} -> {young[True]}; time inside the collector "
            f"{inside[False]:5.1f} -> {inside[True]:5.1f} ms (median of {runs})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-xdist", action="store_true", help="serial cells only")
    parser.add_argument("--only", nargs="*", default=None,
                        help="suites to run (trivial realistic threads one)")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions with callgrind instead of timing")
    parser.add_argument("--gc", action="store_true",
                        help="count the garbage collector's runs and time instead of timing")
    parser.add_argument("--features", action="store_true",
                        help="serial ratios with the journal and the history each switched off")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="poolchaos-bench-") as tmp:
        if options.features:
            suites = make_suites(Path(tmp))
            for name in options.only or ("trivial", "realistic", "threads", "one"):
                print(measure_features(suites[name], options.runs), flush=True)
            return
        if options.gc:
            helper = Path(tmp) / "helper"
            helper.mkdir()
            (helper / "_poolchaos_gc.py").write_text(GC_HELPER)
            suites = make_suites(Path(tmp))
            for name in options.only or ("trivial", "realistic", "threads", "one"):
                print(measure_gc(suites[name], min(options.runs, 3), helper), flush=True)
            return
        if options.instructions:
            if shutil.which("valgrind") is None:
                raise SystemExit("--instructions needs valgrind on the PATH")
            suites = make_suites(Path(tmp), trivial=300)
            for name in options.only or ("one", "trivial"):
                print(measure_instructions(suites[name]), flush=True)
            return
        suites = make_suites(Path(tmp))
        for xdist in (False,) if options.no_xdist else (False, True):
            for name in options.only or ("trivial", "realistic", "threads", "one"):
                suite = suites[name]
                if xdist and not suite.xdist:
                    continue
                print(measure(suite, xdist, options.runs), flush=True)


if __name__ == "__main__":
    main()
