from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time

import pytest
from batch import (
    BatchRunner,
    crunch,
    healthcheck,
    nap,
    parse_batch,
    run_isolated,
    run_with_pipe,
    summarize,
)
from batch.probe import selfcheck


@pytest.fixture
def runner():
    r = BatchRunner(workers=2)
    yield r
    r.close()


def test_map_returns_results_in_order(runner):
    assert runner.map(crunch, [3, 4]) == [5, 14]


# pytorch/pytorch#117372 and python/cpython gh-139462: a worker process dies abruptly and the
# pool is unusable ("A process in the process pool was terminated abruptly").
def test_batch_with_malformed_record(runner):
    assert runner.map(crunch, [10, -1, 20]) == [285, 0, 2470]


# python/cpython gh-128364 (flaky concurrent.futures wait timeout): a future awaited with a
# bound shorter than the task.
def test_report_task_finishes_in_time(runner):
    assert runner.submit(nap, 1.0).result(timeout=0.3) == 1.0


# python/cpython#116742 (test_check_output_timeout flaky) and dask/distributed#6747: a helper
# command outlives its subprocess timeout.
def test_healthcheck_command_answers():
    script = "import time; time.sleep(2); print('ok')"
    assert healthcheck(script, timeout=0.3) == "ok"


# python-trio/trio#1715 ("free CI systems ... your whole VM will just freeze for a few seconds"):
# the run-wide per-test limit is hit only when the machine is busy.
@pytest.mark.timeout(0.6)
def test_nightly_rollup_completes(runner, contended):
    assert runner.submit(nap, 1.0 if contended else 0.05).result() > 0


# arXiv 2310.12132 (resource-affected flaky tests) and awslabs/mcp#4366: a wall-time bound that
# assumes ideal scaling, with no room for the pool's own overhead on a shared machine.
def test_pool_halves_wall_time(runner):
    runner.map(nap, [0.0, 0.0])  # start the workers
    work = [0.05] * 8
    start = time.perf_counter()
    runner.map(nap, work)
    parallel = time.perf_counter() - start
    assert parallel <= sum(work) / runner.workers


# python/cpython bpo-22393 (a pool worker dies before replying): the child exits without
# sending, the parent's recv() hits end of file.
def test_probe_reports_empty_result():
    assert run_with_pipe(None) == {}


def test_parse_batch_reads_every_line():
    assert parse_batch("alpha\nbeta\ngamma") == ["alpha", "beta", "gamma"]


def test_summary_of_twenty_runs():
    stats = summarize([0.1 * i for i in range(1, 21)])
    assert stats["p95"] == pytest.approx(1.9)


# A helper process started for a smoke check and never waited for.
def test_helper_process_starts():
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    assert helper.poll() is None


# A process pool built for one call and never shut down.
def test_one_off_batch():
    assert BatchRunner(workers=2).map(crunch, [2]) == [1]


# deepspeedai/DeepSpeed#7743 and mapproxy/mapproxy#1356: a test switches the process-wide
# multiprocessing start method with force=True.
def test_probe_works_under_spawn():
    multiprocessing.set_start_method("spawn", force=True)
    assert run_isolated(selfcheck) == 0


def test_probe_runs_inline_check():
    seen = []

    def check() -> None:
        seen.append("ran")

    assert run_isolated(check) == 0
