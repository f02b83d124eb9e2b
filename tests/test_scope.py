"""The pool scope: every probe, the ledger, and the leak modes, through real pytest sessions."""

from __future__ import annotations

import json
import os

import pytest

RESOURCES = """
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

STOP = threading.Event()
KEEP = []
BUSY = []
FORKED = []

def test_thread_left_running():
    threading.Thread(target=STOP.wait, name="heartbeat", daemon=True).start()

def test_thread_joined():
    t = threading.Thread(target=lambda: None, name="short")
    t.start()
    t.join()

def test_thread_pool_not_shut_down():
    ex = ThreadPoolExecutor(max_workers=2, thread_name_prefix="warmup")
    ex.submit(int).result()
    KEEP.append(ex)

def test_thread_pool_with_block():
    with ThreadPoolExecutor(max_workers=2) as ex:
        ex.submit(int).result()

def test_process_pool_not_shut_down():
    ex = ProcessPoolExecutor(max_workers=1)
    ex.submit(int).result()
    KEEP.append(ex)

def test_process_pool_shut_down_while_busy():
    ex = ProcessPoolExecutor(max_workers=1)
    ex.submit(int).result()
    BUSY.extend(ex._processes)
    ex.submit(time.sleep, 60)
    ex.shutdown(wait=False)

def test_multiprocessing_pool_not_closed():
    pool = multiprocessing.Pool(1)
    pool.apply(int)
    KEEP.append(pool)

def test_child_left_running():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    KEEP.append(proc)
    with open("pids.txt", "a") as handle:
        handle.write(f"{proc.pid}\\n")

def until_zombie(pid):
    # Wait for the exit without reaping: /proc shows the zombie.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.005)

def test_child_never_waited():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    KEEP.append(proc)
    until_zombie(proc.pid)

def test_fork_never_waited():
    # no Popen or Process object to name it by, and a zombie's command line is gone
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    FORKED.append(pid)
    until_zombie(pid)

def test_child_waited():
    subprocess.run([sys.executable, "-c", "pass"], check=True)

def test_zz_cleanup():
    STOP.set()
    for pid in BUSY:
        os.kill(pid, signal.SIGKILL)  # the busy worker, still asleep
    for pid in FORKED:
        os.waitpid(pid, 0)
    for thing in KEEP:
        if hasattr(thing, "kill"):
            thing.kill()
            thing.wait()
        elif hasattr(thing, "terminate"):
            thing.terminate()
            thing.join()
        else:
            thing.shutdown()
"""


@pytest.fixture(scope="module")
def resources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, str]]]:
    """One session over RESOURCES, shared by the checks below (it starts real processes)."""
    import subprocess
    import sys

    path = tmp_path_factory.mktemp("resources")
    (path / "test_resources.py").write_text(RESOURCES)
    (path / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "poolchaos", "-p", "no:randomly",
         "-p", "no:cacheprovider", "--poolchaos-json=r.json", "-q"],
        cwd=path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((path / "r.json").read_text())
    return {t["nodeid"].split("::")[1]: t["leaks"] for t in data["tests"]}


@pytest.mark.parametrize(("test", "kind", "words"), [
    ("test_thread_left_running", "thread", ["'heartbeat'", "still running", "test_resources"]),
    ("test_thread_pool_not_shut_down", "pool", ["ThreadPoolExecutor", "never shut down"]),
    ("test_process_pool_not_shut_down", "pool", ["ProcessPoolExecutor", "1 worker process"]),
    ("test_multiprocessing_pool_not_closed", "pool", ["Pool", "never shut down"]),
    # shut down, but its worker still runs (it ignored the request, or a task outlives it)
    ("test_process_pool_shut_down_while_busy", "process", ["Process", "still running"]),
    ("test_child_left_running", "process", ["time.sleep(60)", "still running"]),
    ("test_child_never_waited", "process", ["zombie"]),
    # named by the command name the kernel keeps
    ("test_fork_never_waited", "process", ["`python", "zombie"]),
])
def test_resource_left_behind_is_a_leak(resources, test, kind, words):
    leaks = resources[test]
    assert [leak["kind"] for leak in leaks] == [kind], leaks
    for word in words:
        assert word in leaks[0]["detail"]


@pytest.mark.parametrize("test", ["test_thread_joined", "test_thread_pool_with_block",
                                  "test_child_waited", "test_zz_cleanup"])
def test_resource_stopped_in_time_is_not_a_leak(resources, test):
    assert resources[test] == []


GLOBALS = """
import logging
import os
import signal
import socket
import sys
import warnings
from unittest import mock

import app

def test_env_added():
    os.environ["POOLSVC_ADAPTER"] = "real"

def test_env_removed():
    del os.environ["HOME"]

def test_cwd(tmp_path):
    os.chdir(tmp_path)

def test_sys_path():
    sys.path.insert(0, "/opt/plugins")

def test_logging_level():
    logging.getLogger().setLevel(logging.CRITICAL)

def test_logging_disable():
    logging.disable(logging.INFO)

def test_warnings_filter():
    warnings.simplefilter("ignore", DeprecationWarning)

def test_signal_handler():
    signal.signal(signal.SIGUSR1, lambda *a: None)

def test_mock_patch_started():
    mock.patch("app.connect").start()

def test_socket_timeout():
    socket.setdefaulttimeout(0.5)

def test_watched_dict_item():
    app.SETTINGS["affinity"] = True

def test_watched_rebound():
    app.REGISTRY = ["pool-a"]

def test_monkeypatch_restores(monkeypatch, caplog, capsys):
    monkeypatch.setenv("POOLSVC_TIMEOUT", "3")
    monkeypatch.chdir("/")
    caplog.set_level(logging.DEBUG)
    print("captured")
"""

APP = """
SETTINGS = {"affinity": False}
REGISTRY = []

def connect():
    return "real"
"""


@pytest.fixture
def globals_run(chaostester):
    chaostester.pytester.makepyfile(test_globals=GLOBALS, app=APP)
    chaostester.pytester.makeini("[pytest]\npythonpath = .\npoolchaos_watch =\n"
                                 "    app:SETTINGS\n    app:REGISTRY\n")
    return chaostester.run(subprocess=True)


def test_every_global_probe_reports_its_change(globals_run):
    expected = {
        "test_env_added": ("env", "os.environ['POOLSVC_ADAPTER'] = 'real' (was unset)"),
        "test_env_removed": ("env", "os.environ['HOME'] deleted"),
        "test_cwd": ("cwd", "os.getcwd()"),
        "test_sys_path": ("sys.path", "+/opt/plugins"),
        "test_logging_level": ("logging", "logging.root.level = CRITICAL"),
        "test_logging_disable": ("logging", "logging.disable = 20"),
        "test_warnings_filter": ("warnings", "added ignore DeprecationWarning"),
        "test_signal_handler": ("signal", "SIGUSR1"),
        "test_mock_patch_started": ("mock-patch", "patch of app.connect"),
        "test_socket_timeout": ("socket-timeout", "= 0.5 (was None)"),
        "test_watched_dict_item": ("watched", "app:SETTINGS['affinity'] = True (was False)"),
        "test_watched_rebound": ("watched", "app:REGISTRY = ['pool-a'] (was [])"),
    }
    globals_run.result.assert_outcomes(passed=13)
    for test, (kind, text) in expected.items():
        leaks = globals_run.leaks(f"::{test}")
        assert [leak["kind"] for leak in leaks] == [kind], (test, leaks)
        assert text in leaks[0]["detail"], (test, leaks)


def test_runner_state_and_undone_changes_are_not_leaks(globals_run):
    assert globals_run.leaks("::test_monkeypatch_restores") == []


def test_ledger_names_the_earlier_test_in_a_later_failure(chaostester):
    chaostester.pytester.makepyfile(
        """
        import os

        def test_switch_adapter():
            os.environ["POOLSVC_ADAPTER"] = "mock"

        def test_basic_pool_uses_real_adapter():
            assert os.environ.get("POOLSVC_ADAPTER", "real") == "real"
        """
    )
    run = chaostester.run()
    diagnosis = run.diagnosis("::test_basic_pool_uses_real_adapter")
    assert diagnosis["category"] == "config-pollution"
    assert "test_switch_adapter left os.environ['POOLSVC_ADAPTER'] = 'mock'" in \
        diagnosis["evidence"][0]
    assert any("monkeypatch.setenv" in s["text"] for s in diagnosis["suggestions"])


def test_restored_entries_leave_the_ledger(chaostester):
    chaostester.pytester.makepyfile(
        """
        import os

        def test_set():
            os.environ["POOLSVC_ADAPTER"] = "mock"

        def test_unset():
            del os.environ["POOLSVC_ADAPTER"]

        def test_fails_for_its_own_reason():
            assert "POOLSVC_ADAPTER" == "x"
        """
    )
    run = chaostester.run()
    assert run.category("::test_fails_for_its_own_reason") != "config-pollution"
    assert run.leaks("::test_unset")[0]["detail"].startswith("os.environ['POOLSVC_ADAPTER'] "
                                                            "deleted")


def test_isolate_restore_stops_the_cascade(chaostester):
    chaostester.pytester.makepyfile(
        """
        import os

        def test_switch_adapter():
            os.environ["POOLSVC_ADAPTER"] = "mock"

        def test_basic_pool_uses_real_adapter():
            assert os.environ.get("POOLSVC_ADAPTER", "real") == "real"
        """
    )
    run = chaostester.run("--poolchaos-isolate=restore")
    run.result.assert_outcomes(passed=2)
    assert run.leaks("::test_switch_adapter")[0]["detail"].endswith("(restored)")


def test_wide_fixtures_keep_their_state_without_blame(chaostester):
    chaostester.pytester.makepyfile(
        """
        import os
        import threading
        import pytest

        @pytest.fixture(scope="module")
        def service():
            stop = threading.Event()
            thread = threading.Thread(target=stop.wait, name="service")
            thread.start()
            os.environ["POOLSVC_URL"] = "tcp://127.0.0.1:9"
            yield
            del os.environ["POOLSVC_URL"]
            stop.set()
            thread.join()

        def test_first(service):
            pass

        def test_second(service):
            assert os.environ["POOLSVC_URL"]
        """
    )
    run = chaostester.run("--poolchaos-isolate=restore")
    run.result.assert_outcomes(passed=2)
    assert run.leaks("::test_first") == []
    assert run.leaks("::test_second") == []


def test_function_fixture_change_beside_a_cached_wide_fixture_is_the_tests(chaostester):
    # The module fixture sets up in the first test only; in the second, what setup changes
    # and keeps is a function fixture's doing, and so the test's leak.
    chaostester.pytester.makepyfile(
        """
        import os
        import pytest

        @pytest.fixture(scope="module")
        def service():
            os.environ["POOLSVC_URL"] = "tcp://127.0.0.1:9"
            yield
            del os.environ["POOLSVC_URL"]

        @pytest.fixture
        def region():
            os.environ["POOLSVC_REGION"] = "eu"

        def test_first(service):
            pass

        def test_second(service, region):
            assert os.environ["POOLSVC_REGION"] == "eu"
        """
    )
    run = chaostester.run()
    run.result.assert_outcomes(passed=2)
    assert run.leaks("::test_first") == []
    [leak] = run.leaks("::test_second")
    assert "POOLSVC_REGION" in leak["detail"]


SAME_SETUP = """
import logging
import os
import pytest

class ServiceHandler(logging.Handler):
    pass

class CaptureHandler(logging.Handler):
    pass

@pytest.fixture(scope="module")
def service():
    os.environ["POOLSVC_URL"] = "tcp://127.0.0.1:9"
    handler = ServiceHandler()
    if LOGS:
        logging.getLogger().addHandler(handler)
    yield
    del os.environ["POOLSVC_URL"]

@pytest.fixture
def captured():
    logging.getLogger().addHandler(CaptureHandler())

def test_first(service, captured):
    pass

def test_second(service):
    pass
"""


@pytest.mark.parametrize(("logs", "was"), [(False, "[]"), (True, "[ServiceHandler]")])
def test_function_fixture_change_in_the_same_setup_as_a_wide_fixture_is_the_tests(
        chaostester, monkeypatch, logs, was):
    # The first test of a module sets up a module fixture and a function fixture together:
    # what the function fixture changes and keeps is the test's (a log-capture fixture that
    # adds a root handler and never removes it), what the module fixture changes is not,
    # even where both change the same thing.
    import logging

    # the run is in this process: the handler its test leaves must not reach the next run
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    chaostester.pytester.makepyfile(f"LOGS = {logs}\n" + SAME_SETUP)
    run = chaostester.run()
    run.result.assert_outcomes(passed=2)
    [leak] = run.leaks("::test_first")
    assert leak["kind"] == "logging"
    handlers = "[ServiceHandler, CaptureHandler]" if logs else "[CaptureHandler]"
    assert f"{handlers} (was {was})" in leak["detail"]


def test_setup_class_and_setup_module_keep_their_state_without_blame(chaostester):
    # pytest runs setUpClass, setup_class and setup_module as wide fixtures of its own
    # making: what they start lives until their teardown, not the first test's. Beside them
    # a test of the same class that leaves a thread of its own.
    chaostester.pytester.makepyfile(
        """
        import threading
        import unittest

        LEFT = threading.Event()
        HELD = {}

        def hold(name):
            HELD[name] = threading.Event()
            threading.Thread(target=HELD[name].wait, name=name).start()

        def release(name):
            HELD.pop(name).set()

        def setup_module():
            hold("per-module")

        def teardown_module():
            release("per-module")

        class TestServer(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                hold("per-class")

            @classmethod
            def tearDownClass(cls):
                release("per-class")

            def test_first(self):
                assert "per-class" in HELD

            def test_leaves_its_own(self):
                threading.Thread(target=LEFT.wait, name="own", daemon=True).start()

        class TestXunit:
            @classmethod
            def setup_class(cls):
                hold("per-xunit-class")

            @classmethod
            def teardown_class(cls):
                release("per-xunit-class")

            def test_third(self):
                assert "per-xunit-class" in HELD

        def test_last():
            LEFT.set()
        """
    )
    run = chaostester.run("-p", "no:randomly")
    run.result.assert_outcomes(passed=4)
    assert run.leaks("::test_first") == []
    assert run.leaks("::test_third") == []
    assert [leak["key"] for leak in run.leaks("::test_leaves_its_own")] == ["thread:own"]


def test_leaks_fail_turns_a_leak_into_an_error(chaostester):
    chaostester.pytester.makepyfile(
        """
        import threading
        STOP = threading.Event()

        def test_leaky():
            threading.Thread(target=STOP.wait, name="orphan", daemon=True).start()

        def test_clean():
            STOP.set()
        """
    )
    run = chaostester.run("--poolchaos-leaks=fail")
    run.result.assert_outcomes(passed=2, errors=1)
    run.result.stdout.fnmatch_lines(["*LeakError*left 1 thing(s) behind*",
                                     "*thread 'orphan'*"])


def test_marker_sets_the_mode_and_ignores_kinds(chaostester):
    chaostester.pytester.makepyfile(
        """
        import os
        import threading
        import pytest
        STOP = threading.Event()

        @pytest.mark.poolchaos(leaks="fail")
        def test_strict():
            os.environ["POOLSVC_STRICT"] = "1"

        @pytest.mark.poolchaos(ignore_leaks=["thread"])
        def test_background_is_fine():
            threading.Thread(target=STOP.wait, daemon=True).start()

        def test_done():
            STOP.set()
        """
    )
    run = chaostester.run()
    run.result.assert_outcomes(passed=3, errors=1)
    assert run.leaks("::test_background_is_fine") == []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads /proc")
def test_cleanup_stops_what_the_test_started_and_nothing_else(chaostester):
    chaostester.pytester.makepyfile(
        """
        import subprocess
        import sys
        import threading
        from concurrent.futures import ThreadPoolExecutor

        OUTSIDE = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        GATE = threading.Event()
        KEEP = []

        def test_leaky():
            proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            KEEP.append(proc)
            ex = ThreadPoolExecutor(1)
            ex.submit(GATE.wait, 30)
            KEEP.append(ex)
            with open("pids.txt", "w") as handle:
                handle.write(f"{proc.pid} {OUTSIDE.pid}")

        def test_after():
            GATE.set()
            assert KEEP[0].wait(timeout=10) is not None  # terminated, exit code still ours
            assert OUTSIDE.poll() is None
            OUTSIDE.kill()
            OUTSIDE.wait()
        """
    )
    run = chaostester.run("--poolchaos-leaks=cleanup", "--poolchaos-cleanup-grace=2",
                          subprocess=True)
    run.result.assert_outcomes(passed=2)
    process, pool = sorted(run.leaks("::test_leaky"), key=lambda leak: leak["kind"],
                           reverse=True)
    assert process["detail"].endswith("is still running (cleaned up)"), process
    # A worker thread blocked in the task cannot be stopped from outside: said, not hidden.
    assert "cleanup failed: still running after 2 s" in pool["detail"], pool
    leaked, outside = map(int, (chaostester.path / "pids.txt").read_text().split())
    assert not _alive(leaked)
    assert not _alive(outside)


def test_the_scope_never_reaps_a_childs_exit_code(chaostester):
    chaostester.pytester.makepyfile(
        """
        import subprocess
        import sys
        KEEP = []

        def test_start():
            KEEP.append(subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(7)"]))

        def test_wait():
            assert KEEP[0].wait(timeout=30) == 7
        """
    )
    run = chaostester.run(subprocess=True)
    run.result.assert_outcomes(passed=2)


def test_secret_values_never_reach_the_report(chaostester):
    chaostester.pytester.makepyfile(
        """
        import os

        def test_login():
            os.environ["POOLSVC_API_TOKEN"] = "s3cr3t-value-123"

        def test_uses_token():
            assert os.environ["POOLSVC_API_TOKEN"] == "other"
        """
    )
    run = chaostester.run("-v")
    report = (chaostester.path / "poolchaos.json").read_text()
    assert "s3cr3t-value-123" not in report
    assert "***" in report
    assert "s3cr3t-value-123" not in run.text().split("short test summary")[0].split(
        "= FAILURES =")[0]


def test_mocked_test_that_spawns_real_processes(chaostester):
    chaostester.pytester.makepyfile(
        """
        import subprocess
        import sys
        from unittest import mock

        def test_mock_adapter_runs_jobs():
            adapter = mock.Mock(name="adapter")
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            assert adapter.run("job") == "done"
        """
    )
    run = chaostester.run()
    diagnosis = run.diagnosis("::test_mock_adapter_runs_jobs")
    assert diagnosis["category"] == "mock-gap"
    assert any("real process" in line for line in diagnosis["evidence"])


def test_a_pytest_timeout_timer_is_not_a_leak(chaostester):
    chaostester.pytester.makepyfile("def test_quick():\n    pass\n")
    for method in ("thread", "signal"):
        run = chaostester.run("--timeout=30", f"--timeout-method={method}")
        assert run.leaks("::test_quick") == [], method


