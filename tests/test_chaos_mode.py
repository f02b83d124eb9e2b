"""Chaos mode: every knob, the seed replay, and the stress helpers' cleanup."""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest

from pytest_poolchaos.chaos.spec import parse, presets
from pytest_poolchaos.chaos.stress import HELPER_MARK, alive

# A test of the inner session: the plugin's stress helpers it can see (children of the
# process running the tests, marked in argv), written to helpers.json.
HELPERS = f"""
import json, os

def own_helpers():
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{{entry}}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\\0")
            with open(f"/proc/{{entry}}/stat", "rb") as handle:
                ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if b"{HELPER_MARK}" in argv:
            found.append((int(entry), ppid))
    return found

def write_helpers(path="helpers.json"):
    helpers = own_helpers()
    with open(path, "w") as handle:
        json.dump({{"pids": [pid for pid, ppid in helpers], "pytest": os.getpid(),
                    "ppids": [ppid for pid, ppid in helpers]}}, handle)
    return helpers
"""


def _gone(pids: list[int], within: float = 10.0) -> list[int]:
    """The pids still running after waiting up to ``within`` seconds."""
    deadline = time.monotonic() + within
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(pids)


# -- the spec -----------------------------------------------------------------------------------


def test_spec_texts_parse_back_to_the_same_spec():
    for text in ("light", "heavy", "cpu=2,switch=1e-5,jitter=5ms,slow-start=200ms",
                 "light,seed=42", "jitter=250us", "slow_start=0.2"):
        spec = parse(text)
        assert spec is not None
        again = parse(spec.describe())
        assert again is not None
        assert (again.cpu, again.switch, again.jitter, again.slow_start, again.seed) == (
            spec.cpu, spec.switch, spec.jitter, spec.slow_start, spec.seed)
    assert parse("off") is None
    assert parse("light,seed=42") == presets()["light"].reseeded(42)
    assert parse("jitter=5ms", seed=3).seed == 3  # type: ignore[union-attr]
    assert parse("jitter=5ms,seed=9", seed=3).seed == 9  # type: ignore[union-attr]


@pytest.mark.parametrize(("value", "says"), [
    ("cpu=x", "cpu= takes a whole number"),
    ("jitter=9s", "jitter= takes a duration up to 5s"),
    ("slow-start=soon", "slow-start= takes a duration such as 5ms"),
    ("switch=0", "switch= takes an interval in (0, 1]"),
    ("loud", "expected off, light, heavy or knob=value items"),
    ("light,heavy", "'heavy' is not one"),
    ("seed=-1", "seed= takes a whole number"),
])
def test_a_bad_knob_is_a_usage_error_naming_the_option(chaostester, value, says):
    chaostester.pytester.makepyfile("def test_a():\n    pass\n")
    run = chaostester.run(f"--poolchaos-chaos={value}", json_report=False)
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    err = run.result.stderr.str()
    assert "--poolchaos-chaos / poolchaos_chaos" in err
    assert says in err
    assert "from the command line" in err


def test_the_ini_key_is_read_and_checked(chaostester):
    chaostester.pytester.makeini("[pytest]\npoolchaos_chaos = cpu=lots\n")
    chaostester.pytester.makepyfile("def test_a():\n    pass\n")
    run = chaostester.run(json_report=False)
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert "from the ini key poolchaos_chaos" in run.result.stderr.str()


# -- knobs --------------------------------------------------------------------------------------


def test_switch_knob_applies_during_the_session_and_is_restored(chaostester):
    before = sys.getswitchinterval()
    chaostester.pytester.makepyfile(
        """
        import sys

        def test_interval():
            assert abs(sys.getswitchinterval() - 2e-5) < 1e-6
        """
    )
    run = chaostester.run("--poolchaos-chaos=switch=20us,seed=1")
    assert run.ret == 0, run.text()
    assert sys.getswitchinterval() == before
    assert run.data is not None
    assert run.data["session"]["chaos"] == "switch=2e-05,seed=1"


JITTER_TEST = """
import json, os, socket, subprocess, sys, threading
from concurrent.futures import ThreadPoolExecutor

def test_noisy(chaos):
    for _ in range(4):
        thread = threading.Thread(target=lambda: None)
        thread.start()
        thread.join()
    with ThreadPoolExecutor(max_workers=1) as pool:
        for _ in range(3):
            pool.submit(int).result(timeout=30)
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname(), timeout=30)
    client.close(); server.close()
    subprocess.run([sys.executable, "-c", "pass"], check=True, timeout=60)
    with open(os.environ["OUT"], "w") as out:
        # the test thread's own draws replay exactly; any other thread's may interleave
        json.dump([(d.site, d.seconds) for d in chaos.applied if d.own], out)
"""


def _delays(chaostester, monkeypatch, seed: int, out: str) -> list[tuple[str, float]]:
    chaostester.pytester.makepyfile(test_jitter=JITTER_TEST)
    monkeypatch.setenv("OUT", str(chaostester.path / out))
    run = chaostester.run(f"--poolchaos-chaos=jitter=3ms,seed={seed}")
    assert run.ret == 0, run.text()
    return [tuple(d) for d in json.loads((chaostester.path / out).read_text())]


def test_jitter_delays_every_site_within_the_knob_and_the_seed_replays_them(chaostester,
                                                                            monkeypatch):
    first = _delays(chaostester, monkeypatch, 5, "a.json")
    sites = {site for site, _ in first}
    assert {"thread start", "submit", "connect", "popen"} <= sites
    assert all(0 <= seconds <= 0.003 for _, seconds in first)
    assert _delays(chaostester, monkeypatch, 5, "b.json") == first  # same seed, same noise
    assert _delays(chaostester, monkeypatch, 6, "c.json") != first


def test_slow_start_makes_workers_and_children_begin_late(chaostester):
    chaostester.pytester.makepyfile(
        """
        import multiprocessing, subprocess, sys, time
        from concurrent.futures import ThreadPoolExecutor

        LATE = 0.3 / 2  # slow starts are drawn between half the knob and all of it

        def test_pool_worker_thread_starts_late():
            with ThreadPoolExecutor(max_workers=1) as pool:
                start = time.monotonic()
                assert pool.submit(time.monotonic).result(timeout=30) - start >= LATE

        def test_popen_child_starts_late_with_the_same_pid_and_args():
            start = time.time()
            argv = [sys.executable, "-c", "import os, time; print(time.time(), os.getpid())"]
            child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
            assert child.args == argv
            began, pid = child.communicate(timeout=60)[0].split()
            assert float(began) - start >= LATE
            assert int(pid) == child.pid and child.returncode == 0

        def test_process_starts_late():
            queue = multiprocessing.get_context("fork").Queue()
            start = time.time()
            process = multiprocessing.get_context("fork").Process(target=queue.put,
                                                                  args=(0,))
            process.start()
            queue.get(timeout=60)
            process.join(timeout=60)
            assert time.time() - start >= LATE and process.exitcode == 0

        def test_plain_thread_is_not_slowed_down():
            import threading
            start = time.monotonic()
            thread = threading.Thread(target=lambda: None)
            thread.start()
            thread.join()
            assert time.monotonic() - start < LATE
        """
    )
    run = chaostester.run("--poolchaos-chaos=slow-start=300ms,seed=2")
    assert run.ret == 0, run.text()


def test_wrapped_methods_behave_like_the_originals_and_are_taken_off(chaostester):
    import subprocess

    originals = (threading.Thread.start, subprocess.Popen.__init__)
    chaostester.pytester.makepyfile(
        """
        import socket, subprocess, threading
        import pytest

        def test_errors_pass_through():
            with pytest.raises(FileNotFoundError):
                subprocess.Popen(["no-such-program-poolchaos"])
            thread = threading.Thread(target=lambda: None)
            thread.start(); thread.join()
            with pytest.raises(RuntimeError, match="threads can only be started once"):
                thread.start()
            server = socket.create_server(("127.0.0.1", 0))
            port = server.getsockname()[1]
            server.close()
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=10)

        def test_leaks_are_still_seen():
            import threading
            stop = threading.Event()
            threading.Thread(target=stop.wait, args=(30,), name="left-behind",
                             daemon=True).start()
            test_leaks_are_still_seen.stop = stop
        """
    )
    run = chaostester.run("--poolchaos-chaos=jitter=1ms,slow-start=10ms,seed=3")
    assert run.ret == 0, run.text()
    assert (threading.Thread.start, subprocess.Popen.__init__) == originals
    assert any("left-behind" in leak["detail"] for leak in run.leaks("test_leaks_are_still_seen"))


def test_a_failure_under_chaos_says_how_to_replay_it(chaostester):
    chaostester.pytester.makepyfile(
        """
        import threading, time

        def test_deadline():
            done = threading.Event()
            threading.Thread(target=done.set).start()
            assert done.wait(10)
            assert False, "broken"
        """
    )
    run = chaostester.run("--poolchaos-chaos=jitter=2ms,seed=11")
    evidence = run.diagnosis("test_deadline")["evidence"]
    line = next(line for line in evidence if line.startswith("ran under chaos"))
    assert "1 delays injected (1 thread start" in line
    assert "replay with --poolchaos-chaos=jitter=2ms,seed=11" in line


# -- CPU stress helpers -------------------------------------------------------------------------


def test_cpu_helpers_run_during_the_session_are_not_leaks_and_stop_at_its_end(chaostester):
    chaostester.pytester.makepyfile(helpers=HELPERS)
    chaostester.pytester.makepyfile(
        """
        import os
        from helpers import write_helpers

        def test_sees_two_helpers():
            helpers = write_helpers()
            assert len(helpers) == 2
            assert {ppid for _, ppid in helpers} == {os.getpid()}
        """
    )
    run = chaostester.run("--poolchaos-chaos=cpu=2,seed=4")
    assert run.ret == 0, run.text()
    pids = json.loads((chaostester.path / "helpers.json").read_text())["pids"]
    assert run.leaks("test_sees_two_helpers") == []
    assert "2 CPU stress helper(s) of the plugin, pids" in run.text()
    assert _gone(pids, within=5) == []


def test_cpu_helpers_stop_after_ctrl_c(chaostester):
    chaostester.pytester.makepyfile(helpers=HELPERS)
    chaostester.pytester.makepyfile(
        """
        import os, signal, time
        from helpers import write_helpers

        def test_interrupted():
            assert len(write_helpers()) == 1
            # A suite started in the background inherits SIGINT ignored, and Python then
            # installs no KeyboardInterrupt handler: put the terminal's behaviour back.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.kill(os.getpid(), signal.SIGINT)  # what the terminal sends on Ctrl-C
            time.sleep(30)  # interrupted long before
        """
    )
    run = chaostester.run("--poolchaos-chaos=cpu=1,seed=4", subprocess=True)
    assert run.ret == pytest.ExitCode.INTERRUPTED
    pids = json.loads((chaostester.path / "helpers.json").read_text())["pids"]
    assert len(pids) == 1
    assert _gone(pids) == []


def test_cpu_helpers_die_with_a_pytest_killed_by_the_timeout_thread_method(chaostester):
    chaostester.pytester.makepyfile(helpers=HELPERS)
    chaostester.pytester.makepyfile(
        """
        import time
        from helpers import write_helpers

        def test_hangs():
            assert len(write_helpers()) == 2
            time.sleep(60)
        """
    )
    run = chaostester.run("--poolchaos-chaos=cpu=2,seed=4", "--timeout=5",
                          "--timeout-method=thread", "--poolchaos-journal=off",
                          subprocess=True, json_report=False)
    assert run.ret == 1  # os._exit(1): no hook, no sessionfinish, no atexit
    assert "Timeout" in run.text()
    pids = json.loads((chaostester.path / "helpers.json").read_text())["pids"]
    assert len(pids) == 2
    assert _gone(pids) == []


def test_under_xdist_workers_get_the_controllers_spec_and_only_it_stresses(chaostester):
    chaostester.pytester.makepyfile(helpers=HELPERS)
    chaostester.pytester.makepyfile(
        """
        import os, sys
        from helpers import own_helpers

        def check(chaos):
            assert abs(sys.getswitchinterval() - 1e-5) < 1e-6
            assert chaos.spec.describe() == "cpu=1,switch=1e-05,jitter=1ms,seed=77"
            assert [ppid for _, ppid in own_helpers()] == [os.getppid()]

        def test_a(chaos):
            check(chaos)

        def test_b(chaos):
            check(chaos)
        """
    )
    run = chaostester.run("-n", "2", "--poolchaos-chaos=cpu=1,switch=1e-5,jitter=1ms,seed=77")
    assert run.ret == 0, run.text()
    assert run.data is not None
    assert run.data["session"]["chaos"] == "cpu=1,switch=1e-05,jitter=1ms,seed=77"


def test_chaos_is_not_imported_when_off(chaostester):
    chaostester.pytester.makepyfile(
        """
        import sys, threading

        def test_nothing_of_chaos_loaded():
            threading.Thread(target=lambda: None).start()
            assert not [name for name in sys.modules if name.startswith("pytest_poolchaos.chaos")]
        """
    )
    run = chaostester.run(subprocess=True)
    assert run.ret == 0, run.text()
    assert run.data is not None
    assert run.data["session"]["chaos"] is None


def test_submit_noise_reaches_the_class_the_package_re_exports(chaostester, monkeypatch):
    # The submodule imported again (pytester restores sys.modules between sessions) while
    # concurrent.futures still hands out the class it cached: both must get the noise.
    import concurrent.futures
    import concurrent.futures.thread

    cached = concurrent.futures.ThreadPoolExecutor  # the package caches it on first access
    monkeypatch.setattr(concurrent.futures, "thread", concurrent.futures.thread)
    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", cached)
    monkeypatch.delitem(sys.modules, "concurrent.futures.thread")
    chaostester.pytester.makepyfile(
        """
        from concurrent.futures import ThreadPoolExecutor

        def test_submit(chaos):
            with ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(int).result(timeout=30)
            assert [d.site for d in chaos.applied] == ["submit"]
        """
    )
    run = chaostester.run("--poolchaos-chaos=jitter=1ms,seed=1")
    assert run.ret == 0, run.text()
