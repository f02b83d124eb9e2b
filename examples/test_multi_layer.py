"""Multi-layer pools: the mock adapter for fast tests, metrics, background heartbeats."""

from __future__ import annotations

from unittest.mock import patch

from poolsvc import MockAdapter, RealAdapter
from poolsvc.metrics import latency_summary


def test_pool_session_affinity_with_mock_adapter(make_pool):
    pool = make_pool("mock-affinity", adapter=MockAdapter(), session_affinity=True).start()

    result = pool.measure_affinity(sessions=5, calls_per_session=4)

    assert result.affinity_success_rate >= 0.9


def test_mock_layer_starts_no_processes(make_pool):
    # Meant to keep the pool logic away from real processes, but the adapter did
    # `from subprocess import Popen`, so this patch never reaches it.
    with patch("subprocess.Popen") as popen:
        pool = make_pool("layered", adapter=RealAdapter()).start()
        assert pool.execute("echo", value=1)["value"] == 1

    popen.assert_called()


def test_latency_summary_reports_tail():
    latencies = [0.01 * n for n in range(1, 21)]

    summary = latency_summary(latencies)

    assert summary["p99"] <= summary["max"]


def test_heartbeat_keeps_workers_alive(make_pool):
    pool = make_pool("beating", adapter=MockAdapter()).start()
    pool.start_heartbeat(interval=0.05)

    assert pool.first_beat.wait(timeout=5)
    # nothing stops the heartbeat thread: it outlives the test
