"""The pool_scope fixture, used the way a pool test suite would use it."""

from __future__ import annotations


def test_pool_scope_tools(chaostester):
    chaostester.pytester.makepyfile(
        """
        import threading
        import pytest

        SEEN = []

        def test_ids_and_names_are_unique(pool_scope):
            SEEN.append((pool_scope.id, pool_scope.name("svc")))
            assert pool_scope.name("svc").startswith("svc-")

        def test_ids_and_names_are_unique_again(pool_scope):
            assert (pool_scope.id, pool_scope.name("svc")) not in SEEN
            assert pool_scope.id != SEEN[0][0]

        def test_executor_is_shut_down_after_the_test(pool_scope):
            thread_pool = pool_scope.executor("thread", max_workers=2)
            assert thread_pool.submit(sum, [1, 2]).result(timeout=10) == 3
            process_pool = pool_scope.executor("process", max_workers=1)
            assert process_pool.submit(abs, -4).result(timeout=60) == 4

        def test_unknown_executor_kind(pool_scope):
            with pytest.raises(ValueError, match="accepts 'thread' or 'process', got 'fiber'"):
                pool_scope.executor("fiber")

        def test_wait_for_returns_the_value(pool_scope):
            ready = threading.Event()
            threading.Timer(0.01, ready.set).start()
            assert pool_scope.wait_for(lambda: ready.is_set() and "up", timeout=10) == "up"

        def test_run_concurrently_starts_together(pool_scope):
            barrier = threading.Barrier(3)  # only passes if all three run at the same time

            def job():
                return barrier.wait(timeout=10) >= 0

            def broken():
                barrier.wait(timeout=10)
                raise ConnectionResetError("worker went away")

            run = pool_scope.run_concurrently([job, job, broken], timeout=20)
            assert run.values[:2] == [True, True]
            assert isinstance(run.outcomes[2].error, ConnectionResetError)
            assert run.success_rate == 2 / 3
            assert all(outcome.latency_s >= 0 for outcome in run.outcomes)

        def test_wait_for_names_the_condition(pool_scope):
            def worker_ready():
                return False

            pool_scope.wait_for(worker_ready, timeout=0.05, interval=0.01)
        """
    )
    run = chaostester.run(subprocess=True)
    run.result.assert_outcomes(passed=6, failed=1)
    for name in ("unique", "shut_down", "concurrently"):
        tests = [t for t in run.data["tests"] if name in t["nodeid"]]
        assert tests, name
        assert all(t["leaks"] == [] for t in tests), tests
    run.result.stdout.fnmatch_lines(["*TimeoutError: wait_for(*worker_ready) still false "
                                     "after * s (timeout=0.05)*"])
    diagnosis = run.diagnosis("::test_wait_for_names_the_condition")
    assert diagnosis["category"] == "timeout"


def test_run_concurrently_gives_up_after_its_timeout(chaostester):
    chaostester.pytester.makepyfile(
        """
        import threading
        STOP = threading.Event()

        def test_stuck(pool_scope):
            pool_scope.run_concurrently([lambda: STOP.wait(30)], timeout=0.2)

        def test_release():
            STOP.set()
        """
    )
    run = chaostester.run(subprocess=True)
    run.result.assert_outcomes(passed=1, failed=1)
    run.result.stdout.fnmatch_lines(["*TimeoutError: run_concurrently: 1 of 1 callables still "
                                     "running after 0.2 s*"])
    assert run.category("::test_stuck") == "timeout"
