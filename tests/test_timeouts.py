"""pytest-timeout: limits and their sources, what was alive, near-timeouts, hanging exits."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("pytest_timeout")

HANGING_CONFTEST = """
import json

import pytest


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    controller = session.config.pluginmanager.get_plugin("poolchaos-controller")
    with open("hanging.json", "w") as handle:
        json.dump(controller.session.hanging, handle)
"""


def _lines(diagnosis: dict) -> str:
    return "\n".join([*diagnosis["evidence"], *(s["text"] for s in diagnosis["suggestions"])])


def test_sources_func_only_and_near_timeouts(chaostester):
    chaostester.pytester.makepyfile(
        test_limits="""
        import threading
        import time

        import pytest

        @pytest.mark.timeout(0.5)
        def test_marker():
            threading.Event().wait(20)

        def test_cli():
            threading.Event().wait(20)

        @pytest.mark.timeout(0.5, func_only=True)
        def test_func_only():
            threading.Event().wait(20)

        @pytest.mark.timeout(1)
        def test_near():
            time.sleep(0.85)

        def test_quick():
            pass
        """
    )
    run = chaostester.run("--timeout=0.5")
    run.result.assert_outcomes(passed=2, failed=3)
    marker = _lines(run.diagnosis("test_marker"))
    assert "marker at test_limits.py:6" in marker
    assert "method signal" in marker
    assert run.category("test_marker") == "timeout"
    assert "the 0.5 s limit comes from cli" in _lines(run.diagnosis("test_cli"))
    assert "on the test function" in _lines(run.diagnosis("test_func_only"))
    assert run.test("test_near")["near_timeout"] is True
    assert run.test("test_quick")["near_timeout"] is False
    assert run.test("test_quick")["timeout_s"] == 0.5


@pytest.fixture
def limits_by_ini(chaostester):
    chaostester.pytester.makeini("[pytest]\nconsole_output_style = classic\ntimeout = 0.5\n")
    return chaostester


def test_ini_source_and_what_was_alive(limits_by_ini, monkeypatch):
    # as most users run: stdout buffered, so pytest-timeout's stack dump reaches the captured
    # output only if it is flushed before the capture is read
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    limits_by_ini.pytester.makepyfile(
        test_alive="""
        import subprocess, sys, threading, time

        def test_waits_with_a_stuck_thread():
            gate = threading.Event()
            threading.Thread(target=gate.wait, name="stuck-waiter", daemon=True).start()
            try:
                threading.Event().wait(20)
            finally:
                gate.set()

        def test_waits_on_nobody():
            threading.Event().wait(20)

        def wait_on_a_child():
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(20)"])
            try:
                child.wait(20)
            finally:
                child.kill()
                child.wait(10)

        def test_waits_on_a_child_process():
            # every thread of this process waits, but the work is in the child
            gate = threading.Event()
            threading.Thread(target=gate.wait, name="side-waiter", daemon=True).start()
            try:
                wait_on_a_child()
            finally:
                gate.set()

        def test_waits_alone_on_a_child_process():
            wait_on_a_child()

        def test_sleeps_through_its_limit():
            gate = threading.Event()
            threading.Thread(target=gate.wait, name="idle-waiter", daemon=True).start()
            try:
                time.sleep(20)
            finally:
                gate.set()

        def test_busy_thread():
            stop = threading.Event()
            def spin():
                while not stop.is_set():
                    sum(range(1000))
            threading.Thread(target=spin, name="spinner", daemon=True).start()
            try:
                threading.Event().wait(20)
            finally:
                stop.set()
        """
    )
    run = limits_by_ini.run(subprocess=True)
    run.result.assert_outcomes(failed=6)
    stuck = _lines(run.diagnosis("test_waits_with_a_stuck_thread"))
    assert "comes from ini" in stuck
    assert "alive when it fired: thread 'stuck-waiter' waiting in wait (" in stuck
    assert "Every other thread was waiting too" in stuck
    assert "No other thread was alive" in _lines(run.diagnosis("test_waits_on_nobody"))
    # a child process the test started was doing the work: neither a deadlock nor nobody
    for name in ("test_waits_on_a_child_process", "test_waits_alone_on_a_child_process"):
        child = _lines(run.diagnosis(name))
        assert "Every other thread was waiting" not in child
        assert "No other thread was alive" not in child
        assert "simply slow" in child or "saturated" in child
    # the test's own sleep used the limit: not the other threads' doing
    slept = _lines(run.diagnosis("test_sleeps_through_its_limit"))
    assert "It fired in the test's own `time.sleep(20)`" in slept
    assert "Every other thread was waiting" not in slept
    busy = _lines(run.diagnosis("test_busy_thread"))
    assert "thread 'spinner' running in spin (" in busy
    assert "simply slow" in busy or "saturated" in busy
    assert "machine when it failed: " in busy


def test_a_sigalrm_of_the_tests_own_meets_pytest_timeouts_handler_not_its_limit(chaostester):
    # pytest-timeout's signal method takes SIGALRM over around each test: a SIGALRM the test
    # sends reaches its handler, which reports the limit at once; a handler the code installed
    # at import is not there to read. Neither is a timeout. Beside them: a real fire, and a
    # test whose next function in the file retries with a pause (not this test's loop).
    chaostester.pytester.makepyfile(
        alarmlib="""
        import signal

        hits = []

        def on_alarm(signum, frame):
            hits.append(signum)

        signal.signal(signal.SIGALRM, on_alarm)
        """,
        test_alarm="""
        import os
        import signal
        import threading
        import time

        import pytest

        import alarmlib

        def test_reads_the_handler():
            assert signal.getsignal(signal.SIGALRM) is alarmlib.on_alarm

        def test_sends_an_alarm():
            os.kill(os.getpid(), signal.SIGALRM)
            time.sleep(0.05)
            assert alarmlib.hits

        def test_retries_later_in_the_file():
            for _ in range(3):
                time.sleep(0.01)

        @pytest.mark.timeout(0.5)
        def test_really_runs_out():
            threading.Event().wait(20)
        """,
    )
    run = chaostester.run("--timeout=60", "-p", "no:randomly", subprocess=True)
    run.result.assert_outcomes(passed=1, failed=3)
    sent = run.diagnosis("test_sends_an_alarm")
    assert sent["category"] == "config-pollution", sent
    assert [rule["id"] for rule in sent["rules"]] == ["config-pollution.timeout-alarm"]
    lines = _lines(sent)
    assert "reported its 60 s limit after " in lines
    assert "the line: `os.kill(os.getpid(), signal.SIGALRM)`" in lines
    assert '@pytest.mark.timeout(60, method="thread")' in lines
    assert "tries a fixed number of times" not in lines
    read = run.diagnosis("test_reads_the_handler")
    assert read["category"] == "config-pollution", read
    assert "SIGALRM was handled by pytest_timeout." in _lines(read)
    real = run.diagnosis("test_really_runs_out")
    assert real["category"] == "timeout"
    assert "config-pollution.timeout-alarm" not in [rule["id"] for rule in real["rules"]]


def test_hanging_threads_are_named_and_exit_timeout_ends_the_process(chaostester):
    chaostester.pytester.makeconftest(HANGING_CONFTEST)
    chaostester.pytester.makepyfile(
        test_hang="""
        import threading
        from concurrent.futures import ThreadPoolExecutor

        def test_leaves_pool():
            never = threading.Event()
            pool = ThreadPoolExecutor(1, thread_name_prefix="blocked")
            pool.submit(never.wait)
            assert 1 == 2

        def test_fine():
            pass
        """
    )
    began = time.monotonic()
    run = chaostester.run("--poolchaos-exit-timeout=0.5", subprocess=True, timeout=60)
    assert time.monotonic() - began < 30
    assert run.ret == 1  # pytest's own exit status, not a kill
    assert run.data["summary"]["failed"] == 1
    hanging = json.loads((chaostester.path / "hanging.json").read_text())
    assert hanging == ["thread 'blocked_0' started by test_hang.py::test_leaves_pool"]
    assert "poolchaos: exit took over 0.5 s" in run.result.stderr.str()
