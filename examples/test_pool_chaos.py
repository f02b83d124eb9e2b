"""Chaos: workers die and are replaced while the pool is under load."""

from __future__ import annotations

from poolsvc import SETTINGS

# Replacement workers start a fresh Python runtime; on a loaded CI machine that is several
# times slower than on a laptop. Scaled down so the demo runs in seconds.
WARMUP_UNDER_LOAD_S = 0.6


def test_sustained_load_after_worker_restart(make_pool):
    pool = make_pool("chaos-restart").start()
    pool.kill_worker(0)
    pool.replace_worker(0, warmup_s=WARMUP_UNDER_LOAD_S)

    replies = pool.run_concurrent(operations=4, timeout=0.3)

    assert all(reply["ok"] for reply in replies)


def test_worker_failures_during_concurrent_operations(make_pool):
    pool = make_pool("chaos-failures", size=2).start()
    pool.kill_worker(1)  # injected failure: half the pool is gone and is not replaced

    load = pool.run_load(operations=10)

    assert load.successful_operations >= 10


def test_recovery_after_worker_replacement(make_pool):
    pool = make_pool("chaos-recovery", size=2).start()
    pool.kill_worker(1)
    pool.replace_worker(1, warmup_s=SETTINGS["warmup_s"])

    load = pool.run_load(operations=6)

    assert load.successful_operations == 6
