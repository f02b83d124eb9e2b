from __future__ import annotations

import os
import stat
import subprocess
from unittest import mock

import fleet
import pytest
from fleet import (
    CTX,
    Farm,
    active_shards,
    compress,
    count_rows,
    elect,
    export_rows,
    probe_model,
    render_all,
    run_shards,
    run_tool,
    thumbnail,
    tool_version,
    write_spool,
)


def test_small_thumbnail():
    assert thumbnail(64) == "thumb-64.png"


# Luo et al. FSE 2014, Concurrency, across processes: multiprocessing.Value's "+= 1" is a read
# then a write (the docs' "get_lock()" note); two workers read the count before either writes.
def test_row_count_over_two_workers():
    both_read = CTX.Barrier(2, timeout=2)
    assert count_rows([["a"], ["b"]], on_progress=both_read.wait) == 2


# openfollowapp/openfollow#62-style TOCTOU between processes: both candidates see no pid file,
# then both write it, and two processes believe they lead.
def test_exactly_one_leader(tmp_path):
    both_checked = CTX.Barrier(2, timeout=2)
    assert elect(tmp_path / "leader.pid", before_claim=both_checked.wait) == 1


# python/cpython docs, multiprocessing programming guidelines ("Joining processes that use
# queues"): a child that put a large item cannot exit until it is read, and the parent joins
# it before reading.
def test_export_returns_every_row():
    assert len(export_rows(20_000, timeout=0.5)) == 20_000


# Pool.__exit__ calls terminate(), not close() and join() (python/cpython docs note on Pool as
# a context manager): results fetched after the block come from workers already stopped.
def test_render_all_pages():
    assert render_all([1, 2, 3]) == ["page-1.png", "page-2.png", "page-3.png"]


# pytorch/pytorch#117372 family (a worker killed by the kernel, exit code -9) for a bare
# multiprocessing.Process: the thumbnail worker exceeds the container's memory limit.
def test_poster_thumbnail():
    assert thumbnail(4000) == "thumb-4000.png"


# Luo et al. FSE 2014, I/O, and the subprocess docs (writing to a child that already exited
# raises BrokenPipeError): the child rejects an argument the wrapper passes on unchecked.
def test_store_only_compression():
    data = b"x" * (1 << 20)
    assert compress(data, level=0) == data


# Barrier-synchronised shard phases (threading docs, BrokenBarrierError): one shard's load
# outlasts the phase bound and the barrier breaks for every shard.
def test_shards_merge_after_loading():
    def quick() -> list[int]:
        return [1]

    def cold_shard() -> list[int]:
        fleet.threading.Event().wait(0.8)  # first read from cold storage
        return [2]

    assert run_shards([quick, quick, cold_shard], phase_timeout=0.3) == [[1], [1], [2]]


def _load_weights() -> dict[str, int]:
    fleet.threading.Event().wait(0.6)  # read and unpack the weights
    return {"layers": 12}


# Luo et al. FSE 2014, Async Wait: Connection.poll(timeout) returns False while the child is
# still loading, and the probe reports no model.
def test_probe_reports_layers():
    assert probe_model(_load_weights, wait=0.2) == {"layers": 12}


# python/cpython#116742 (flaky subprocess timeouts on CI): a helper that
# takes longer on a busy machine than the fixed communicate() bound.
def test_inventory_tool_answers(contended):
    delay = 1.0 if contended else 0.0
    script = f"import time; time.sleep({delay}); print('hosts=12')"
    assert run_tool(script, timeout=0.5) == "hosts=12"


# A patched subprocess.run returns a MagicMock whose returncode is a MagicMock, which is not
# equal to 0 (unittest.mock docs: return_value attributes are new mocks).
def test_tool_version_parses_output():
    with mock.patch("fleet.subprocess.run") as run:
        run.return_value.stdout = "v2.1\n"
        assert tool_version() == "2.1"


_EVENTS: list = []


def _farm_init(events: list) -> None:
    _EVENTS[:] = events


def _staged(job: int) -> int:
    # Each job completes only after the one submitted after it; the last is the quickest.
    if job + 1 < len(_EVENTS):
        _EVENTS[job + 1].wait(2)
    _EVENTS[job].set()
    return job


# posit-dev/py-shiny#2350, with processes: completion order of concurrent jobs asserted to be
# the submission order.
def test_farm_completes_in_submission_order():
    events = [CTX.Event() for _ in range(4)]
    farm = Farm(workers=4, initializer=_farm_init, initargs=(events,))
    try:
        assert farm.run(_staged, range(4)) == [0, 1, 2, 3]
    finally:
        farm.close()


# Lam et al. ISSTA 2019 / iDFlakies polluter: the process umask tightened for a secrets test and
# never restored.
def test_secrets_file_is_private(tmp_path):
    os.umask(0o077)
    path = write_spool(tmp_path, "token", "s3cr3t")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_spool_is_readable_by_the_shipper(tmp_path):
    path = write_spool(tmp_path, "batch-7.jsonl", "{}\n")
    assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044


# Luo et al. FSE 2014, Unordered collections: a set turned into a list is expected sorted.
def test_active_shards_are_sorted():
    assert active_shards({"web-1": [12, 3], "web-2": [7], "web-3": []}) == [3, 7, 12]


def test_inventory_tool_reports_failure():
    with pytest.raises(subprocess.CalledProcessError):
        run_tool("import sys; sys.exit(3)")
