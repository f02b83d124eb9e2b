"""The chaos fixture: faults a test injects itself, bounded and cleaned up."""

from __future__ import annotations

import json
import time

from pytest_poolchaos.chaos.stress import alive


def test_chaos_fixture_tools(chaostester):
    chaostester.pytester.makepyfile(
        """
        import json, os, threading, time
        from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
        from concurrent.futures.process import BrokenProcessPool
        import multiprocessing
        import pytest

        def test_kill_worker_of_a_process_pool(chaos):
            with ProcessPoolExecutor(max_workers=2,
                                     mp_context=multiprocessing.get_context("fork")) as pool:
                assert pool.submit(abs, -1).result(timeout=60) == 1
                pids = {p.pid for p in pool._processes.values()}
                assert chaos.kill_worker(pool) in pids
                with pytest.raises(BrokenProcessPool):
                    pool.submit(time.sleep, 0.5).result(timeout=60)

        FORK = multiprocessing.get_context("fork")
        # made before the pool forks, so its workers inherit them
        BUSY, RELEASE = FORK.Semaphore(0), FORK.Event()

        def hold():
            BUSY.release()
            RELEASE.wait(30)

        def test_kill_worker_of_a_multiprocessing_pool_and_a_process(chaos):
            context = FORK
            with context.Pool(2) as pool:
                pids = {p.pid for p in pool._pool}
                # both workers inside a task: an idle worker holds the task queue's lock
                # while it waits, and killing it there would leave terminate() waiting on
                # that lock forever (a multiprocessing limitation, not the fixture's)
                pending = [pool.apply_async(hold) for _ in pids]
                assert all(BUSY.acquire(timeout=30) for _ in pending)
                assert chaos.kill_worker(pool) in pids
            stop = context.Event()
            process = context.Process(target=stop.wait, args=(60,))
            process.start()
            assert chaos.kill_worker(process) == process.pid
            process.join(timeout=10)
            assert process.exitcode == -9

        def test_kill_worker_refuses_what_the_session_did_not_start(chaos):
            with pytest.raises(ValueError, match="was not started by this test session"):
                chaos.kill_worker(os.getppid())
            with ThreadPoolExecutor(1) as pool:
                with pytest.raises(TypeError, match="a thread pool has no process to kill"):
                    chaos.kill_worker(pool)

        def test_stress_is_bounded_and_stopped(chaos):
            with pytest.raises(ValueError, match="seconds=...\\) takes \\(0, 60\\]"):
                chaos.stress(cpu=1, seconds=3600)
            first = chaos.stress(cpu=2, seconds=30)
            with chaos.stress(cpu=1, seconds=30) as second:
                assert len(second.pids) == 1
            with open("stress.json", "w") as out:
                json.dump({"kept": first.pids, "stopped": second.pids}, out)

        def test_delay_starts(chaos):
            # a delay long enough that a loaded machine's own thread start stays below it
            with chaos.delay_starts(1.0):
                with ThreadPoolExecutor(max_workers=1) as pool:
                    start = time.monotonic()
                    assert pool.submit(time.monotonic).result(timeout=30) - start >= 1.0
            with ThreadPoolExecutor(max_workers=1) as pool:
                start = time.monotonic()
                assert pool.submit(time.monotonic).result(timeout=30) - start < 1.0

        def test_delay_starts_lasts_until_the_end_of_the_test(chaos):
            chaos.delay_starts(1.0)
            with ThreadPoolExecutor(max_workers=1) as pool:
                start = time.monotonic()
                assert pool.submit(time.monotonic).result(timeout=30) - start >= 1.0

        def test_delays_are_gone_after_the_test_that_asked():
            with ThreadPoolExecutor(max_workers=1) as pool:
                start = time.monotonic()
                assert pool.submit(time.monotonic).result(timeout=30) - start < 1.0

        def test_thundering_herd_releases_every_caller_at_once(chaos):
            barrier = threading.Barrier(8)  # passes only when all eight run together
            run = chaos.thundering_herd(lambda: barrier.wait(timeout=10), 8, timeout=30)
            assert sorted(run.values) == list(range(8))
            assert run.success_rate == 1.0
        """
    )
    run = chaostester.run("-p", "no:xdist")
    assert run.ret == 0, run.text()
    assert run.data is not None
    assert all(test["leaks"] == [] for test in run.data["tests"]), run.data["tests"]
    pids = json.loads((chaostester.path / "stress.json").read_text())
    assert not alive(pids["stopped"])
    deadline = time.monotonic() + 5
    while alive(pids["kept"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pids["kept"])


def test_chaos_fixture_sees_the_session_noise(chaostester):
    chaostester.pytester.makepyfile(
        """
        import threading

        def test_applied(chaos):
            assert chaos.spec.seed == 21
            assert chaos.applied == []
            thread = threading.Thread(target=lambda: None)
            thread.start(); thread.join()
            assert [d.site for d in chaos.applied] == ["thread start"]
        """
    )
    run = chaostester.run("--poolchaos-chaos=jitter=1ms,seed=21")
    assert run.ret == 0, run.text()
