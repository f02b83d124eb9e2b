"""Issue #8, findings: every finding is true, worth reading, and counted like pytest counts.

Black-box regression tests on the JSON report and the terminal section. A test the current
code still fails carries ``xfail(strict=True)`` naming its defect; the fix removes the mark.

Map (test -> defect):
    test_pytests_own_sys_path_insertion_is_never_a_leak ......... D22, "findings must be true"
    test_rerunfailures_attempts_are_diagnosed_and_counted ....... D23 (issue #7)
    test_pool_shut_down_without_waiting_is_reported .............. also seen: wait=False
    test_thread_pool_reports_its_threads .......................... also seen: ThreadPool size
    test_pool_scope_names_are_unique_within_a_test ............... also seen: pool_scope.name
    test_hanging_thread_is_blamed_on_the_test_that_started_it .... also seen: reused thread ids
    test_pending_asyncio_task_on_a_wider_loop_is_noticed ......... also seen: asyncio tasks
    test_an_executor_that_never_started_a_thread_is_no_finding ... findings must be true
    test_an_executor_holding_a_thread_is_still_a_finding ......... findings must be true (guard)
    test_a_helper_that_ends_a_moment_after_the_test_is_no_finding  findings must be true
    test_a_module_objects_lazily_started_worker_is_not_the_tests_leak  findings must be true
    test_sequential_code_gets_no_concurrency_advice .............. beyond the list (1)
    test_runner_threads_are_not_the_tests_surroundings ........... beyond the list (2)
    test_an_earlier_tests_thread_dying_is_not_this_tests_failure .. findings must be true
    test_a_thread_dying_between_two_tests_is_not_the_next_ones .... findings must be true

Beyond the list (1): a failed comparison in code that ran nothing concurrently (``assert 1 == 2``,
``assert calls == []``) is classified ``expectation`` with advice for concurrent code ("a
retry or duplicate delivery; make the handler idempotent", "Only 1 of 2 had arrived"), which
design.md rules out: such a failure is an ordinary bug, ``unclassified``.

Beyond the list (2): with pytest-rerunfailures and pytest-xdist installed (no ``-n``), the
rerunfailures status server's thread is alive in every session; a timeout diagnosis names it
as "alive when it fired" and concludes "Every other thread was waiting too: a deadlock or a
lost wake-up" for a test that waited on nothing. The runner's own threads are not evidence.
"""

from __future__ import annotations

import re

import pytest
from reliability_support import PLUGIN, assert_no_crash, poolchaos_section

# -- D22 ------------------------------------------------------------------------------------


def test_pytests_own_sys_path_insertion_is_never_a_leak(chaostester):
    # tests/ is a package and tests/zsub is not: collecting zsub makes pytest insert the
    # rootdir into sys.path (rootdir-based "prepend" import), before any test runs.
    pytester = chaostester.pytester
    pytester.mkpydir("tests")
    pytester.path.joinpath("tests", "test_a.py").write_text(
        "def test_innocent():\n    assert True\n\n"
        "def test_optional_backend():\n    import not_installed_backend  # a missing extra\n")
    pytester.mkdir("tests/zsub").joinpath("test_b.py").write_text(
        "def test_b():\n    assert True\n")
    run = chaostester.run("tests")
    run.result.assert_outcomes(passed=2, failed=1)
    every_leak = [leak for test in run.data["tests"] for leak in test["leaks"]]
    assert not [leak for leak in every_leak if leak["kind"] == "sys.path"], every_leak
    diagnosis = run.diagnosis("test_optional_backend")
    assert diagnosis["category"] != "config-pollution"
    assert diagnosis.get("polluter") is None
    told = " ".join(diagnosis["evidence"] + [s["text"] for s in diagnosis["suggestions"]])
    assert "test_innocent" not in told
    assert "test_innocent" not in poolchaos_section(run.text())


# -- D23 ------------------------------------------------------------------------------------

def test_rerunfailures_attempts_are_diagnosed_and_counted(chaostester):
    pytest.importorskip("pytest_rerunfailures")
    chaostester.pytester.makepyfile(
        """
        from pathlib import Path

        import pytest

        @pytest.mark.flaky(reruns=2)
        def test_retried_and_still_failing():
            assert 1 == 2

        @pytest.mark.flaky(reruns=2)
        def test_passes_on_retry():
            marker = Path("attempted")
            if not marker.exists():
                marker.touch()
                raise ConnectionResetError("first attempt lost its connection")

        def test_plain_failure():
            assert 1 == 2
        """
    )
    run = chaostester.run("-p", "rerunfailures")
    counts = run.result.parseoutcomes()
    assert counts["failed"] == 2
    assert counts["passed"] == 1
    summary = run.data["summary"]
    assert summary["failed"] == counts["failed"]
    assert sum(summary["by_category"].values()) == 2
    assert run.diagnosis("test_retried_and_still_failing")["category"]
    assert run.diagnosis("test_plain_failure")["category"]
    section = poolchaos_section(run.text())
    # a long node id may be wrapped at the terminal's width
    assert "test_retried_and_still_failing" in section.replace("\n", "")
    # the test that passed on retry is flaky: said in the JSON report or the section
    retried = run.test("test_passes_on_retry")
    in_json = (retried["diagnosis"] or {}).get("verdict") == "flaky"
    in_section = "test_passes_on_retry" in section and "flaky" in section
    assert in_json or in_section, section
    assert in_json
    assert retried["outcome"] == "passed"
    assert "passed only on retry, flaky: test_rerunfailures" in run.text()
    still = run.diagnosis("test_retried_and_still_failing")
    assert "failed all 3 attempts under the retry plugin (reruns=2)" in still["evidence"]


# -- also seen ------------------------------------------------------------------------------
# Sessions that create pools run in a subprocess: in-process pytester sessions restore
# sys.modules between runs, so a re-imported concurrent.futures.thread can leave the package
# handing out an older, unwrapped class than the one the plugin wraps.

def test_pool_shut_down_without_waiting_is_reported(chaostester):
    chaostester.pytester.makepyfile(
        """
        import threading
        from concurrent.futures import ThreadPoolExecutor

        RELEASE = threading.Event()

        def test_shuts_down_without_waiting():
            pool = ThreadPoolExecutor(max_workers=1)
            started = threading.Event()
            pool.submit(lambda: (started.set(), RELEASE.wait(30)))
            assert started.wait(10)
            pool.shutdown(wait=False)

        def test_zz_release():
            RELEASE.set()
        """
    )
    run = chaostester.run(subprocess=True)
    run.result.assert_outcomes(passed=2)
    leaks = run.leaks("test_shuts_down_without_waiting")
    assert [leak for leak in leaks if leak["kind"] in ("pool", "thread")], leaks


def test_thread_pool_reports_its_threads(chaostester):
    chaostester.pytester.makepyfile(
        """
        from multiprocessing.pool import ThreadPool

        POOLS = []

        def test_leaks_a_thread_pool():
            POOLS.append(ThreadPool(2))

        def test_zz_close():
            for pool in POOLS:
                pool.terminate()
                pool.join()
        """
    )
    run = chaostester.run(subprocess=True)
    run.result.assert_outcomes(passed=2)
    [pool] = [leak for leak in run.leaks("test_leaks_a_thread_pool") if leak["kind"] == "pool"]
    assert "ThreadPool" in pool["detail"]
    assert not re.search(r"\b0 (worker )?thread", pool["detail"]), pool["detail"]
    assert re.search(r"\b2 (worker )?thread", pool["detail"]), pool["detail"]


def test_pool_scope_names_are_unique_within_a_test(chaostester):
    chaostester.pytester.makepyfile(
        """
        def test_two_pools_named_orders(pool_scope):
            first = pool_scope.name("orders")
            second = pool_scope.name("orders")
            assert first != second, first
        """
    )
    run = chaostester.run()
    run.result.assert_outcomes(passed=1)


def test_hanging_thread_is_blamed_on_the_test_that_started_it(pytester, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per entry: nothing wraps away from its test
    pytester.makepyfile(
        """
        import threading
        from pathlib import Path

        RELEASE = threading.Event()
        FIRST = []

        def test_a_leaves_a_thread_running():
            thread = threading.Thread(target=RELEASE.wait, args=(30,), name="short-lived")
            thread.start()
            FIRST.append(thread)

        def test_b_starts_the_thread_that_hangs_exit():
            RELEASE.set()
            FIRST[0].join(10)
            # The OS hands a finished thread's id to a later thread: wait for that to happen.
            for _ in range(500):
                hold = threading.Event()  # never set: this thread holds interpreter exit
                thread = threading.Thread(target=hold.wait, args=(60,), name="late-worker")
                thread.start()
                if thread.ident == FIRST[0].ident:
                    Path("reused").touch()
                    return
                hold.set()
                thread.join(10)
        """
    )
    result = pytester.runpytest_subprocess(*PLUGIN, "--poolchaos-exit-timeout=1", timeout=45)
    assert (pytester.path / "reused").exists(), "precondition: the thread id was reused"
    result.assert_outcomes(passed=2)
    text = result.stdout.str() + result.stderr.str()
    blamed = [line for line in text.splitlines() if "late-worker" in line]
    assert blamed, text[-3000:]
    assert all("test_a_leaves_a_thread_running" not in line for line in blamed), blamed
    assert any("test_b_starts_the_thread_that_hangs_exit" in line for line in blamed), blamed


@pytest.mark.parametrize("scope", ["module", "session"])
def test_pending_asyncio_task_on_a_wider_loop_is_noticed(chaostester, scope):
    chaostester.pytester.makepyfile(
        f"""
        import asyncio

        import pytest

        @pytest.fixture(scope="{scope}")
        def loop():
            loop = asyncio.new_event_loop()
            yield loop
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

        async def poll_forever():
            await asyncio.sleep(3600)

        def test_leaves_a_task_pending(loop):
            loop.create_task(poll_forever())
            loop.run_until_complete(asyncio.sleep(0))

        def test_next(loop):
            pass
        """
    )
    run = chaostester.run(subprocess=True)
    run.result.assert_outcomes(passed=2)
    leaks = run.leaks("test_leaves_a_task_pending")
    assert any("poll_forever" in leak["detail"] for leak in leaks), leaks
    assert not run.leaks("test_next")


# -- findings must be true ------------------------------------------------------------------

EXECUTORS = """
import threading
from concurrent.futures import ThreadPoolExecutor

KEEP = []

def test_makes_an_idle_executor():
    # an application object holds an executor it has not used yet: no thread, no resource
    KEEP.append(ThreadPoolExecutor(max_workers=2))

def test_makes_a_busy_executor():
    pool = ThreadPoolExecutor(max_workers=1)
    pool.submit(lambda: None).result(10)
    KEEP.append(pool)  # its worker thread is alive and waits for work: a real leak

def test_zz_shutdown():
    for pool in KEEP:
        pool.shutdown(wait=True)
"""


def test_an_executor_that_never_started_a_thread_is_no_finding(chaostester):
    chaostester.pytester.makepyfile(test_executors=EXECUTORS)
    run = chaostester.run(subprocess=True)
    run.result.assert_outcomes(passed=3)
    assert "test_makes_an_idle_executor" not in poolchaos_section(run.text())


def test_an_executor_holding_a_thread_is_still_a_finding(chaostester):
    chaostester.pytester.makepyfile(test_executors=EXECUTORS)
    run = chaostester.run(subprocess=True)
    run.result.assert_outcomes(passed=3)
    assert run.leaks("test_makes_a_busy_executor")
    assert "test_makes_a_busy_executor" in poolchaos_section(run.text())


# -- beyond the list --------------------------------------------------------------------------

def test_sequential_code_gets_no_concurrency_advice(chaostester):
    # a file name of its own: the default one (this test's name) says "concurrency" and the
    # advice quotes the failure's location
    chaostester.pytester.makepyfile(test_plain=
        """
        def test_constant_mismatch():
            assert 1 == 2

        def test_recorded_calls():
            calls = ["setup", "run"]
            assert calls == []
        """
    )
    run = chaostester.run()
    assert_no_crash(run.text())
    run.result.assert_outcomes(failed=2)
    for name in ("test_constant_mismatch", "test_recorded_calls"):
        diagnosis = run.diagnosis(name)
        advice = " ".join(s["text"] for s in diagnosis["suggestions"]).lower()
        assert diagnosis["category"] == "unclassified", (name, diagnosis["evidence"])
        for word in ("idempotent", "retry", "duplicate", "arrived", "concurren"):
            assert word not in advice, (name, advice)


def test_runner_threads_are_not_the_tests_surroundings(chaostester):
    pytest.importorskip("pytest_rerunfailures")
    pytest.importorskip("xdist")
    pytest.importorskip("pytest_timeout")
    chaostester.pytester.makepyfile(
        """
        import threading

        def test_waits_on_nobody():
            threading.Event().wait(20)
        """
    )
    run = chaostester.run("-p", "rerunfailures", "-p", "xdist", "--timeout=0.5",
                          subprocess=True, timeout=60)
    run.result.assert_outcomes(failed=1)
    diagnosis = run.diagnosis("test_waits_on_nobody")
    told = " ".join(diagnosis["evidence"] + [s["text"] for s in diagnosis["suggestions"]])
    assert "rerunfailures" not in told, told
    assert "run_server" not in told, told
    assert "deadlock" not in told, told


def test_a_helper_that_ends_a_moment_after_the_test_is_no_finding(chaostester):
    # Seen on a real suite: a test that checks a wait's timeout leaves its 0.1 s helper thread
    # running for a moment; it ends on its own, so it was never left behind.
    chaostester.pytester.makepyfile(
        """
        import threading, time

        RELEASE = threading.Event()

        def test_helper_ends_on_its_own():
            threading.Thread(target=time.sleep, args=(0.12,), name="brief").start()

        def test_helper_left_waiting():
            threading.Thread(target=RELEASE.wait, args=(30,), name="stuck").start()

        def test_zz_release():
            RELEASE.set()
        """
    )
    run = chaostester.run()
    run.result.assert_outcomes(passed=3)
    assert run.leaks("test_helper_ends_on_its_own") == []
    assert [leak["kind"] for leak in run.leaks("test_helper_left_waiting")] == ["thread"]


LAZY_SERVICE = """
import multiprocessing, threading, time

STOPS = []
WORKERS = []

class Service:
    '''Starts its worker thread on first use, and keeps it for as long as it lives.'''
    def __init__(self):
        self.thread = None
        self.stop = threading.Event()
        STOPS.append(self.stop)

    def submit(self):
        if self.thread is None:
            self.thread = threading.Thread(target=self.stop.wait, args=(30,), daemon=True)
            self.thread.start()

class ForkingPool:
    # forks its worker process on first use (multiprocessing's fork start method)
    def __init__(self):
        self.worker = None

    def submit(self):
        if self.worker is None:
            context = multiprocessing.get_context("fork")
            self.worker = context.Process(target=time.sleep, args=(30,), daemon=True)
            self.worker.start()
            WORKERS.append(self.worker)

_DEFAULT = None

def default_service():
    # the library's own process-wide instance, made on first use and kept for every caller
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Service()
    return _DEFAULT

def serving(service):
    def decorate(func):
        def wrapper(*args):
            service.submit()
            return func(*args)
        return wrapper
    return decorate
"""

LAZY_TESTS = """
from lazysvc import STOPS, WORKERS, ForkingPool, Service, default_service, serving

SHARED = Service()
FORKING = ForkingPool()
KEEP = []

@serving(Service())
def decorated():
    return 1

def test_first_use_of_a_module_service():
    SHARED.submit()

def test_first_call_of_a_function_decorated_with_a_module_pool():
    assert decorated() == 1

def test_first_use_of_a_module_pool_that_forks():
    FORKING.submit()

def test_first_use_of_the_librarys_own_instance():
    default_service().submit()

def test_own_service_left_running():
    KEEP.append(Service())
    KEEP[-1].submit()

def test_zz_stop():
    for stop in STOPS:
        stop.set()
    for worker in WORKERS:
        worker.kill()
        worker.join(10)
"""


def test_a_module_objects_lazily_started_worker_is_not_the_tests_leak(chaostester):
    # Seen on a real suite: a pool made at import (a decorator's argument) starts its threads
    # on the first call, in whichever test comes first; they are the module's, by design.
    chaostester.pytester.makepyfile(lazysvc=LAZY_SERVICE, test_lazy=LAZY_TESTS)
    run = chaostester.run("test_lazy.py", subprocess=True)
    run.result.assert_outcomes(passed=6)
    assert run.leaks("test_first_use_of_a_module_service") == []
    assert run.leaks("test_first_use_of_the_librarys_own_instance") == []
    assert run.leaks("test_first_call_of_a_function_decorated_with_a_module_pool") == []
    assert run.leaks("test_first_use_of_a_module_pool_that_forks") == []
    assert [leak["kind"] for leak in run.leaks("test_own_service_left_running")] == ["thread"]


POOL_SERVICE = """
import threading

FEEDER_STARTED = threading.Event()
STOP = threading.Event()


class CallQueue:
    def put(self, item):
        threading.Thread(target=STOP.wait, args=(30,), daemon=True, name="feeder").start()


def manage(calls):
    # the manager holds the queue, not the pool: nothing on its stack is the module's
    calls.put("work")
    FEEDER_STARTED.set()
    STOP.wait(30)


class Pool:
    # starts a manager thread on first use, which at once starts its queue's feeder thread
    def __init__(self):
        self.manager = None

    def submit(self):
        if self.manager is None:
            self.manager = threading.Thread(target=manage, args=(CallQueue(),), daemon=True,
                                            name="manager")
            self.manager.start()


_POOL = None


def get_pool():
    global _POOL
    if _POOL is None:
        _POOL = Pool()
    return _POOL
"""

POOL_TESTS = """
import poolsvc


class ReadSlowly:
    # The scope asks each global of the test module whether it wraps the object that started
    # a thread. Once the manager has started, this one answers only after the feeder started:
    # the feeder's start then always comes before the start of the manager has returned.
    def __getattr__(self, name):
        pool = poolsvc._POOL
        manager = pool.manager if pool is not None else None
        if name == "__wrapped__" and manager is not None and manager.ident is not None:
            poolsvc.FEEDER_STARTED.wait(10)
        raise AttributeError(name)


HELD = ReadSlowly()


def test_first_use_of_the_librarys_pool():
    poolsvc.get_pool().submit()
    assert poolsvc.FEEDER_STARTED.wait(10)


def test_zz_stop():
    poolsvc.STOP.set()
"""


def test_what_a_shared_pools_thread_starts_at_once_is_not_the_tests_leak(chaostester):
    # Seen on joblib: the reusable executor's manager thread starts its queue's feeder thread
    # while the test's start of the manager is still returning; the feeder was the test's
    # leak in 18 tests, though the manager (the library's) was not.
    chaostester.pytester.makepyfile(poolsvc=POOL_SERVICE, test_pool=POOL_TESTS)
    run = chaostester.run("test_pool.py", subprocess=True)
    run.result.assert_outcomes(passed=2)
    assert run.leaks("test_first_use_of_the_librarys_pool") == []


EARLIER_THREAD = """
import threading

GO = threading.Event()
LEFT = []


def test_a_leaves_a_thread():
    def later():
        GO.wait(10)
        raise RuntimeError("late failure")

    thread = threading.Thread(target=later, name="left-behind")
    thread.start()
    LEFT.append(thread)


def test_b_fails_on_its_own():
    GO.set()
    LEFT[0].join(10)  # it dies now, while this test runs
    assert 2 + 2 == 5


def test_c_its_own_thread_dies():
    def boom():
        raise RuntimeError("own failure")

    thread = threading.Thread(target=boom, name="own-thread")
    thread.start()
    thread.join(10)
    assert 2 + 2 == 5
"""


def test_an_earlier_tests_thread_dying_is_not_this_tests_failure(chaostester):
    # pytest reports a thread's exception in whichever test runs when it dies; the scope
    # knows which test started the thread, so the death is no finding of the later one.
    chaostester.pytester.makepyfile(test_threads=EARLIER_THREAD)
    run = chaostester.run()
    later = run.diagnosis("test_threads.py::test_b_fails_on_its_own")
    assert "lifecycle.unhandled-thread" not in [rule["id"] for rule in later["rules"]]
    assert not any("left-behind" in line for line in later["evidence"])
    own = run.diagnosis("test_threads.py::test_c_its_own_thread_dies")
    assert "lifecycle.unhandled-thread" in [rule["id"] for rule in own["rules"]]


BETWEEN_CONFTEST = """
import threading

GO = threading.Event()
LEFT = []


def pytest_runtest_logfinish(nodeid, location):
    # after the first test's teardown, before the next test opens: no test is running
    if nodeid.endswith("test_a_leaves_a_thread") and LEFT:
        GO.set()
        LEFT[0].join(10)
"""

BETWEEN_TESTS = """
import threading

from conftest import GO, LEFT


def test_a_leaves_a_thread():
    def later():
        GO.wait(10)
        raise OSError(9, "Bad file descriptor")

    thread = threading.Thread(target=later, name="left-behind")
    thread.start()
    LEFT.append(thread)


def test_b_fails_on_its_own():
    assert 2 + 2 == 5
"""


def test_a_thread_dying_between_two_tests_is_not_the_next_ones(chaostester):
    # A thread that dies after one test's teardown and before the next test opens has no
    # test running; pytest reports its exception at the end of the next test's setup.
    chaostester.pytester.makeconftest(BETWEEN_CONFTEST)
    chaostester.pytester.makepyfile(test_threads=BETWEEN_TESTS)
    run = chaostester.run()
    later = run.diagnosis("test_threads.py::test_b_fails_on_its_own")
    assert "lifecycle.unhandled-thread" not in [rule["id"] for rule in later["rules"]]
    assert not any("left-behind" in line for line in later["evidence"])
