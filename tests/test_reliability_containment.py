"""Issue #8, containment: a fault in the plugin or in a third-party rule never reaches the user.

Black-box regression tests: only the command line, conftest hooks of the public hook API,
the JSON report and the terminal output. Each test states the behaviour the issue demands; a
test the current code still fails carries ``xfail(strict=True)`` naming its defect, so the fix
for that defect is finished when its mark can be removed.

Map (test -> defect):
    test_surrogate_thread_name_and_env_key_under_xdist ......... D2
    test_surrogate_thread_name_reaches_serial_reports ........... D2
    test_assertion_hook_calls_no_user_code ....................... D3
    test_socket_and_thread_wrappers_behave_like_the_originals ... D5
    test_wrapped_constructors_keep_the_originals_errors ......... D5 (guard: passes today)
    test_classify_hook_outcome_exceptions_are_contained ......... D7 (pytest.fail/skip/SystemExit)
    test_classify_hook_keyboard_interrupt_still_interrupts ...... D7 (the one exception kept)
    test_diagnosis_listener_error_keeps_the_diagnoses ........... D8
    test_non_text_finding_evidence_keeps_the_terminal_section ... D9
    test_fault_while_wrapping_at_session_start_is_contained .... D21 (spawn refresh)
    test_fault_at_session_finish_is_contained .................. D21 (controller finish)
Every other hook step made to raise in turn: test_fault_injection.py (D21).
"""

from __future__ import annotations

import pytest
from reliability_support import assert_no_crash, outcomes_without_plugin, poolchaos_section

# -- D2 -------------------------------------------------------------------------------------

SURROGATE_SUITE = {
    "test_surrogate": """
        import threading, time
        import pytest

        def test_thread_name_with_surrogate():
            # a name made from a file name read with surrogateescape (a latin-1 directory)
            threading.Thread(target=time.sleep, args=(1,), name="worker-\\udce9",
                             daemon=True).start()

        @pytest.mark.parametrize("i", range(20))
        def test_after(i):
            time.sleep(0.02)
    """,
    "test_envkey": """
        import os
        import pytest

        def test_env_key_not_utf8():
            os.environb[b"LEGACY_NAME_\\xe9"] = b"1"

        @pytest.mark.parametrize("i", range(10))
        def test_after(i):
            pass
    """,
}


def test_surrogate_thread_name_and_env_key_under_xdist(chaostester):
    pytest.importorskip("xdist")
    chaostester.pytester.makepyfile(**SURROGATE_SUITE)
    run = chaostester.run("-n", "2", subprocess=True, timeout=60)
    assert_no_crash(run.text())
    run.result.assert_outcomes(passed=32)
    assert run.ret == pytest.ExitCode.OK
    # the leak still reaches the report, made encodable
    [thread_leak] = [leak for leak in run.leaks("test_thread_name_with_surrogate")
                     if leak["kind"] == "thread"]
    assert "worker-" in thread_leak["detail"]
    assert any(leak["kind"] == "env" for leak in run.leaks("test_env_key_not_utf8"))


def test_surrogate_thread_name_reaches_serial_reports(chaostester):
    chaostester.pytester.makepyfile(**SURROGATE_SUITE)
    run = chaostester.run("--poolchaos-markdown=summary.md", subprocess=True, timeout=60)
    assert_no_crash(run.text())
    run.result.assert_outcomes(passed=32)
    assert run.ret == pytest.ExitCode.OK
    assert run.leaks("test_thread_name_with_surrogate")
    (chaostester.path / "summary.md").read_text(encoding="utf-8")  # strictly encodable


# -- D3 -------------------------------------------------------------------------------------

def test_assertion_hook_calls_no_user_code(chaostester):
    chaostester.pytester.makepyfile(
        """
        import pytest

        CALLS = []

        class Observed:
            '''A lazy result (an ORM query): len() and attribute access have effects.'''
            def __len__(self):
                CALLS.append("len")
                return 3
            def __eq__(self, other):
                return False
            def __getattr__(self, name):
                CALLS.append(name)
                raise AttributeError(name)

        def test_assert_hook_side_effects():
            with pytest.raises(AssertionError):
                assert Observed() == 1
            assert CALLS == [], CALLS
        """
    )
    run = chaostester.run()
    run.result.assert_outcomes(passed=1)


# -- D5 -------------------------------------------------------------------------------------

def test_socket_and_thread_wrappers_behave_like_the_originals(chaostester):
    chaostester.pytester.makepyfile(
        """
        import socket, threading
        import pytest

        def test_bad_address_is_rejected():
            s = socket.socket()
            try:
                with pytest.raises(TypeError):
                    s.connect(("localhost",))
            finally:
                s.close()

        def test_thread_started_from_generated_code():
            # code generated at run time runs with globals of its own
            ns = {"__name__": None, "threading": threading}
            exec("t = threading.Thread(target=lambda: None)\\nt.start()\\nt.join()", ns)

        def test_unix_socket_connect_error():
            s = socket.socket(socket.AF_UNIX)
            try:
                with pytest.raises(FileNotFoundError):
                    s.connect("/nonexistent/poolchaos.sock")
            finally:
                s.close()

        def test_connect_with_no_argument():
            s = socket.socket()
            try:
                with pytest.raises(TypeError):
                    s.connect()
            finally:
                s.close()
        """
    )
    run = chaostester.run(subprocess=True)  # the wrappers of a fresh process
    run.result.assert_outcomes(passed=4)


def test_wrapped_constructors_keep_the_originals_errors(chaostester):
    # Guard for the D5 fix: what the wrappers already pass through must stay so.
    chaostester.pytester.makepyfile(
        """
        import subprocess, threading
        from concurrent.futures import ThreadPoolExecutor
        from multiprocessing.pool import ThreadPool

        import pytest

        def test_thread_started_twice():
            thread = threading.Thread(target=lambda: None)
            thread.start()
            thread.join()
            with pytest.raises(RuntimeError, match="only be started once"):
                thread.start()

        def test_missing_executable():
            with pytest.raises(FileNotFoundError):
                subprocess.Popen(["/nonexistent/poolchaos-no-such-program"])

        def test_executor_without_workers():
            with pytest.raises(ValueError):
                ThreadPoolExecutor(max_workers=0)

        def test_thread_pool_without_workers():
            with pytest.raises(ValueError):
                ThreadPool(0)
        """
    )
    run = chaostester.run(subprocess=True)
    run.result.assert_outcomes(passed=4)


# -- D7 -------------------------------------------------------------------------------------

RULE_SUITE = """
    import pytest

    def test_fails():
        assert 1 == 2

    @pytest.mark.parametrize("i", range(5))
    def test_after(i):
        pass
"""


@pytest.mark.parametrize("raised", [
    'pytest.fail("rule cannot handle this evidence")',
    'pytest.skip("rule does not apply")',
    "raise SystemExit(3)",
    'raise GeneratorExit("odd")',
])
def test_classify_hook_outcome_exceptions_are_contained(chaostester, raised):
    chaostester.pytester.makeconftest(
        f"""
        import pytest

        @pytest.hookimpl(optionalhook=True)
        def pytest_poolchaos_classify(evidence):
            {raised}
        """
    )
    chaostester.pytester.makepyfile(RULE_SUITE)
    run = chaostester.run()
    assert_no_crash(run.text())
    run.result.assert_outcomes(failed=1, passed=5)
    assert run.ret == pytest.ExitCode.TESTS_FAILED
    # the built-in rules still diagnose the failure
    assert run.diagnosis("test_fails")["category"]


def test_classify_hook_keyboard_interrupt_still_interrupts(chaostester):
    chaostester.pytester.makeconftest(
        """
        def pytest_poolchaos_classify(evidence):
            raise KeyboardInterrupt
        """
    )
    chaostester.pytester.makepyfile(RULE_SUITE)
    run = chaostester.run(subprocess=True)
    assert run.ret == pytest.ExitCode.INTERRUPTED


# -- D8 -------------------------------------------------------------------------------------

def test_diagnosis_listener_error_keeps_the_diagnoses(chaostester):
    chaostester.pytester.makeconftest(
        """
        def pytest_poolchaos_diagnosis(nodeid, diagnosis):
            raise RuntimeError("diagnosis listener exploded")
        """
    )
    chaostester.pytester.makepyfile("def test_fails():\n    assert 1 == 2\n")
    run = chaostester.run()
    assert_no_crash(run.text())
    run.result.assert_outcomes(failed=1)
    assert run.diagnosis("test_fails")["category"]
    assert run.data["summary"]["failed"] == 1
    assert sum(run.data["summary"]["by_category"].values()) == 1
    section = poolchaos_section(run.text())
    assert "test_fails" in section
    assert "diagnosis listener exploded" in section  # the fault itself, said once, plainly


# -- D9 -------------------------------------------------------------------------------------

def test_non_text_finding_evidence_keeps_the_terminal_section(chaostester):
    chaostester.pytester.makeconftest(
        """
        from pytest_poolchaos import Category, Finding

        def pytest_poolchaos_classify(evidence):
            return [Finding("mine.lease", Category.LIFECYCLE, 0.9, (404,))]
        """
    )
    chaostester.pytester.makepyfile("def test_fails():\n    assert 1 == 2\n")
    run = chaostester.run()
    assert_no_crash(run.text())
    section = poolchaos_section(run.text())
    assert "test_fails" in section, section
    assert "lifecycle" in section, section
    assert all(isinstance(line, str) for line in run.diagnosis("test_fails")["evidence"])


# -- D21 ------------------------------------------------------------------------------------

def test_fault_while_wrapping_at_session_start_is_contained(chaostester):
    # A networking shim (green-thread libraries do this) swaps the socket class for the C
    # type, which takes no new attributes: wrapping socket.connect fails.
    chaostester.pytester.makeconftest(
        """
        import _socket, socket

        socket.socket = _socket.socket
        """
    )
    chaostester.pytester.makepyfile("def test_pass():\n    pass\n")
    without, status = outcomes_without_plugin(chaostester.pytester)
    run = chaostester.run(subprocess=True)
    assert_no_crash(run.text())
    assert run.result.parseoutcomes() == without
    assert run.ret == status == pytest.ExitCode.OK


def test_fault_at_session_finish_is_contained(chaostester):
    # A test leaks a patch of time.time that raises: every later call of time.time() by the
    # plugin fails, while pytest (which bound its clock at import) is unaffected.
    chaostester.pytester.makepyfile(
        """
        from unittest import mock

        def test_leaks_a_broken_clock():
            mock.patch("time.time", side_effect=RuntimeError("clock unavailable")).start()

        def test_fails():
            assert 1 == 2
        """
    )
    without, status = outcomes_without_plugin(chaostester.pytester)
    run = chaostester.run(subprocess=True)
    text = run.text() + run.result.stderr.str()
    assert_no_crash(text)
    assert run.result.parseoutcomes() == without == {"failed": 1, "passed": 1}
    assert run.ret == status == pytest.ExitCode.TESTS_FAILED
    # the summary is not lost: the report was written and the section drawn
    assert run.test("test_fails")["outcome"] == "failed"
    assert "poolchaos: 2 tests, 1 failure" in text


def test_a_clock_a_test_froze_and_left_frozen_does_not_freeze_the_plugins_waits(chaostester):
    # A leaked patch of time.monotonic/time.sleep must not turn the plugin's bounded waits
    # (settling a child that is still exiting, joining a thread) into endless loops.
    chaostester.pytester.makepyfile(
        """
        import subprocess, sys, threading
        from unittest import mock

        def test_freezes_the_clock():
            mock.patch("time.monotonic", return_value=1000.0).start()  # never stopped
            mock.patch("time.sleep", lambda seconds: None).start()

        def test_leaves_a_child_and_a_thread():
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
            threading.Thread(target=threading.Event().wait, args=(120,), daemon=True,
                             name="lingering").start()
        """
    )
    run = chaostester.run("--poolchaos-leaks=cleanup", "--poolchaos-cleanup-grace=0.3",
                          subprocess=True, timeout=60)
    run.result.assert_outcomes(passed=2)
    kinds = {leak["kind"] for leak in run.leaks("test_leaves_a_child_and_a_thread")}
    assert {"process", "thread"} <= kinds, kinds


def test_a_wait_that_runs_out_under_a_patched_get_ident_does_not_deadlock(chaostester):
    # A worker-pool library replaces threading.get_ident with one that sets the Event it is
    # waiting on. The scope's Condition.wait wrapper, run with that Event's lock held again,
    # called threading.get_ident when the wait ran out: the process hung until killed.
    chaostester.pytester.makepyfile(
        """
        import threading

        def test_waits_with_a_noisy_get_ident():
            event = threading.Event()
            original = threading.get_ident

            def noisy():
                value = original()
                event.set()
                return value

            threading.get_ident = noisy
            try:
                assert event.wait(0.05) in (True, False)
            finally:
                threading.get_ident = original
        """
    )
    without, status = outcomes_without_plugin(chaostester.pytester, "--timeout=20")
    run = chaostester.run("--timeout=20", subprocess=True, timeout=60)
    assert_no_crash(run.text())
    assert run.result.parseoutcomes() == without == {"passed": 1}
    assert run.ret == status == pytest.ExitCode.OK
