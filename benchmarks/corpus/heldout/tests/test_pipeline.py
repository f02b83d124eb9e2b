from __future__ import annotations

import os
import subprocess
import sys
from unittest.mock import patch

import pytest
from pipeline import (
    Pipeline,
    WorkerDied,
    chunk,
    feed_worker,
    run_tool,
    sort_lines,
    square,
    supervise,
)
from pipeline.stages import slow_square, weighted_total
from pipeline.tools import reload_agent


@pytest.fixture
def pipe():
    p = Pipeline(processes=2)
    yield p
    p.terminate()


def test_squares_in_parallel(pipe):
    assert pipe.run(square, [1, 2, 3], timeout=5) == [1, 4, 9]


def test_chunk_even_split():
    assert chunk([1, 2, 3, 4], 2) == [[1, 2], [3, 4]]


def test_chunk_keeps_the_remainder():
    assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


def test_weighted_total_defaults_weight():
    assert weighted_total([{"value": 2.0, "weight": 3.0}, {"value": 1.0}]) == 7.0


# python/cpython#116742 and dask/distributed#6747: a bound on a multiprocessing result shorter
# than the work.
def test_stage_result_within_bound(pipe):
    assert pipe.run(slow_square, [2, 3], timeout=0.3) == [4, 9]


# python/cpython#116742: communicate(timeout=...) expires; the tool is left running because
# nothing kills it.
def test_external_tool_answers_quickly():
    script = "import sys, time; time.sleep(2); print(sys.stdin.read().upper())"
    assert run_tool([sys.executable, "-c", script], "rows", timeout=0.3).strip() == "ROWS"


# "ValueError: Pool not running": work submitted to a pool the shutdown path already closed.
def test_late_stage_after_close(pipe):
    assert pipe.run(square, [2], timeout=5) == [4]
    pipe.close()
    assert pipe.run(square, [3], timeout=5) == [9]


# python/cpython bpo-22393 family: the worker process exits on bad input while the parent keeps
# sending to it.
def test_worker_handles_bad_record():
    assert feed_worker(["bad-record", "ok"]) == ["OK"]


# A worker killed by a signal (an out-of-memory kill, simulated by SIGKILL).
def test_transform_worker_completes():
    script = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    assert supervise([sys.executable, "-c", script]) == ""


# A patched os.cpu_count of 0 (a container quota the fake reports as zero).
def test_pipeline_sizes_itself_from_cpu_count():
    with patch("os.cpu_count", return_value=0):
        pipeline = Pipeline()
    pipeline.terminate()


# testing-cabal/mock#171 and HomericIntelligence/Mnemosyne#279 (call-site vs definition-site
# patching): the module bound subprocess.run at import, so the real command runs.
def test_reload_agent_is_mocked():
    with patch("subprocess.run") as fake_run:
        fake_run.return_value.returncode = 0
        assert reload_agent() == 0


# A multiprocessing pool a test never closes.
def test_pool_for_quick_check():
    assert Pipeline(processes=1).run(square, [5], timeout=5) == [25]


# A helper process started in the background and never waited for.
def test_background_indexer_starts():
    indexer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    assert indexer.pid > 0


# Stubbing a command-line tool by prepending a shim directory to PATH (and never removing it).
def test_sort_can_use_a_shim(tmp_path):
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "sort").write_text("#!/bin/sh\necho shimmed\n")
    (shim / "sort").chmod(0o755)
    os.environ["PATH"] = f"{shim}{os.pathsep}{os.environ['PATH']}"
    assert sort_lines(["b", "a"]) == ["shimmed"]


def test_sort_lines_orders_alphabetically():
    assert sort_lines(["pear", "apple", "fig"]) == ["apple", "fig", "pear"]


def test_worker_died_names_the_signal():
    with pytest.raises(WorkerDied, match="signal 9"):
        raise WorkerDied("worker exited with signal 9")
