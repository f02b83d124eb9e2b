"""Order-dependent failures: isolated reruns, the ledger fast path, bisection and budgets."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import pytest

from pytest_poolchaos.diagnose.bisect import PolluterSearch, named_in_failure
from pytest_poolchaos.diagnose.runner import ChildRun, ChildTest
from pytest_poolchaos.model import LedgerEntry
from pytest_poolchaos.outcome import failure_kind

ISOLATED = ("--poolchaos-rerun=1", "--poolchaos-rerun-mode=isolated")

# A polluter that leaves a module-level dict changed; nothing names it in the failure.
SHARED = """
    STATE = {}
    NESTED = {"flags": {}}
"""


def _suite(count: int, polluter_at: int, state: str = "shared.NESTED['flags']") -> str:
    # By default the polluted dict sits inside another, where the ledger's fingerprint (ids of
    # module globals, lengths of the top-level containers) cannot see it: only reruns can.
    lines = ["import shared", ""]
    for index in range(count):
        body = f"{state}['dirty'] = True" if index == polluter_at else "pass"
        lines += [f"def test_{index:02d}():", f"    {body}", ""]
    lines += ["def test_victim():", f"    assert not {state}", ""]
    return "\n".join(lines)


def _search_of(run, name):
    diagnosis = run.diagnosis(name)
    return diagnosis, diagnosis["polluter_search"]


def test_polluter_in_the_same_file_found_by_bisection(chaostester):
    chaostester.pytester.makepyfile(shared=SHARED, test_order=_suite(8, polluter_at=5))
    run = chaostester.run(*ISOLATED)
    diagnosis, search = _search_of(run, "test_order.py::test_victim")
    assert diagnosis["verdict"] == "order-dependent"
    assert diagnosis["category"] == "config-pollution"
    assert diagnosis["polluter"] == "test_order.py::test_05"
    assert search["method"] == "bisect"
    assert search["runs"] <= math.ceil(math.log2(8)) + 1
    assert run.test("test_order.py::test_victim")["outcome"] == "failed"
    assert run.ret == pytest.ExitCode.TESTS_FAILED


def test_module_dict_polluter_found_by_the_ledger_without_bisection(chaostester):
    # The same suite with the dict at module level: the project-state probe saw test_05 fill
    # it, so the ledger names the polluter and one pair run confirms it.
    chaostester.pytester.makepyfile(shared=SHARED,
                                    test_order=_suite(8, polluter_at=5, state="shared.STATE"))
    run = chaostester.run(*ISOLATED)
    diagnosis, search = _search_of(run, "test_order.py::test_victim")
    assert diagnosis["verdict"] == "order-dependent"
    assert diagnosis["polluter"] == "test_order.py::test_05"
    assert search["method"] == "ledger"
    assert run.leaks("test_order.py::test_05") == []  # a lazily filled dict is no leak line


# A module-level settings object of the project; a test turns its retries off and leaves it.
SETTINGS_LIB = """
    import socket


    class Settings:
        def __init__(self):
            self.retries = 3


    SETTINGS = Settings()


    def connect(address, on_refused):
        for attempt in range(SETTINGS.retries + 1):
            try:
                return socket.create_connection(address, timeout=5)
            except ConnectionRefusedError:
                if attempt == SETTINGS.retries:
                    raise
                on_refused()  # the server gets to listen() while the client retries
"""

SETTINGS_SUITE = """
    import socket

    import client


    def test_fails_fast_without_retries():
        client.SETTINGS.retries = 0


    def test_connects_once_the_server_listens():
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        try:
            client.connect(server.getsockname(), on_refused=server.listen).close()
        finally:
            server.close()
"""


def test_an_attribute_of_a_module_level_settings_object_is_in_the_ledger(chaostester):
    # The polluter rebinds an attribute of an instance the project keeps in a module global
    # (the global itself still names the same object): the ledger sees it, so the refused
    # connection it causes is its pollution, found without bisection, and no leak line.
    chaostester.pytester.makepyfile(client=SETTINGS_LIB, test_configured=SETTINGS_SUITE)
    run = chaostester.run(*ISOLATED)
    diagnosis, search = _search_of(run, "test_configured.py::test_connects_once_the_server_listens")
    assert diagnosis["verdict"] == "order-dependent"
    assert diagnosis["polluter"] == "test_configured.py::test_fails_fast_without_retries"
    assert search["method"] == "ledger"
    assert diagnosis["category"] == "config-pollution", diagnosis
    assert any("client.SETTINGS.retries = 0" in line for line in diagnosis["evidence"])
    assert run.leaks("test_configured.py::test_fails_fast_without_retries") == []


# A limit of the project's server module that a test lowers and leaves: the server the next
# test starts refuses its request and closes the connection.
ECHO_LIB = """
    import os
    import socket
    import threading

    MAX_REQUEST = 64


    class Server:
        def __init__(self):
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen()
            self.thread = threading.Thread(target=self.serve, daemon=True)
            self.thread.start()

        def serve(self):
            limit = READ_LIMIT
            conn, _ = self.sock.accept()
            with conn:
                data = conn.recv(1024)
                if len(data) > limit:  # closed unanswered, and the server thread dies
                    raise ValueError(f"a request of {len(data)} bytes")
                conn.sendall(data[::-1])

        def close(self):
            self.sock.close()
            self.thread.join(5)


    def call(address, data):
        with socket.create_connection(address, timeout=5) as conn:
            conn.sendall(data)
            reply = conn.recv(1024)
            if not reply:
                raise ConnectionResetError("the server closed the connection")
            return reply
"""
LIMIT_LIB = ECHO_LIB.replace("READ_LIMIT", "MAX_REQUEST")

LIMIT_SUITE = """
    import os

    import echo


    def test_small_requests_only():
        LOWER


    def test_reverse_a_word():
        server = echo.Server()
        try:
            assert echo.call(server.sock.getsockname(), b"concurrency") == b"ycnerrucnoc"
        finally:
            server.close()
"""


def test_a_limit_the_polluter_left_in_the_code_that_then_broke_is_pollution(chaostester):
    # The connection reset and the server thread's death are what the lowered limit does:
    # with the polluter proved by reruns and its change in the module the failure went
    # through, not this test's own lifecycle, however many readings of it there are.
    suite = LIMIT_SUITE.replace("LOWER", "echo.MAX_REQUEST = 4")
    chaostester.pytester.makepyfile(echo=LIMIT_LIB, test_limit=suite)
    run = chaostester.run(*ISOLATED)
    diagnosis = run.diagnosis("test_limit.py::test_reverse_a_word")
    assert diagnosis["verdict"] == "order-dependent"
    assert diagnosis["polluter"] == "test_limit.py::test_small_requests_only"
    assert diagnosis["category"] == "config-pollution", diagnosis
    assert any("echo.MAX_REQUEST = 4 (was another value), and the failure went through echo"
               in line for line in diagnosis["evidence"]), diagnosis["evidence"]


ENV_LIMIT_LIB = ECHO_LIB.replace("READ_LIMIT",
                                 'int(os.environ.get("ECHO_MAX_REQUEST", "64"))')

def test_a_variable_the_polluter_left_that_the_code_reads_is_pollution(chaostester):
    # The same limit as an environment variable, read by the server thread (not by the
    # frames that failed): the module the failure went through names it in its code.
    suite = LIMIT_SUITE.replace("LOWER", 'os.environ["ECHO_MAX_REQUEST"] = "4"')
    chaostester.pytester.makepyfile(echo=ENV_LIMIT_LIB, test_limit=suite)
    run = chaostester.run(*ISOLATED)
    diagnosis = run.diagnosis("test_limit.py::test_reverse_a_word")
    assert diagnosis["verdict"] == "order-dependent"
    assert diagnosis["category"] == "config-pollution", diagnosis
    assert any("ECHO_MAX_REQUEST" in line and "a variable the code of echo reads" in line
               for line in diagnosis["evidence"]), diagnosis["evidence"]


def test_polluter_in_another_file(chaostester):
    chaostester.pytester.makepyfile(
        shared=SHARED,
        test_a="import shared\n\ndef test_clean():\n    pass\n\n"
               "def test_dirty():\n    shared.STATE['x'] = 1\n",
        test_b="import shared\n\ndef test_fine():\n    pass\n\n"
               "def test_victim():\n    assert shared.STATE == {}\n")
    run = chaostester.run(*ISOLATED)
    diagnosis = run.diagnosis("test_b.py::test_victim")
    assert diagnosis["verdict"] == "order-dependent"
    assert diagnosis["polluter"] == "test_a.py::test_dirty"
    assert any(line.startswith("polluter test_a.py::test_dirty") for line in
               diagnosis["evidence"])


def test_the_polluter_named_is_the_one_that_broke_the_test_the_way_it_failed(chaostester):
    # Two earlier tests each break the victim, each its own way, and neither leaves a change
    # the ledger can see (an item of a list, a value of a dict). In the session it failed
    # with test_04's ValueError; after test_00 alone it fails with a RuntimeError, and the
    # bisection tries test_00's half first. Seen on execnet's suite under -n 2: a test that
    # left a shared gateway busy was named for a failure an import had caused.
    chaostester.pytester.makepyfile(
        shared="SLOTS = [None]\nFLAGS = {'busy': False}\n",
        test_order="\n".join([
            "import shared", "",
            "def test_00():", "    shared.FLAGS['busy'] = True", "",
            *[line for n in (1, 2, 3) for line in (f"def test_0{n}():", "    pass", "")],
            "def test_04():", "    shared.SLOTS[0] = 'stale'", "",
            "def test_victim():",
            "    if shared.SLOTS[0] is not None:", "        raise ValueError('bad state')",
            "    if shared.FLAGS['busy']:", "        raise RuntimeError('busy')", ""]))
    run = chaostester.run(*ISOLATED)
    diagnosis, search = _search_of(run, "test_order.py::test_victim")
    assert diagnosis["verdict"] == "order-dependent"
    assert diagnosis["polluter"] == "test_order.py::test_04"
    assert search["method"] == "bisect"


def test_polluter_in_a_module_scoped_fixture(chaostester):
    # The fixture dirties the state for its module and cleans up at module end, so the victim
    # (same module, not using it) passes alone and when rerun after the session.
    chaostester.pytester.makepyfile(shared=SHARED, test_fixture="""
        import pytest
        import shared

        @pytest.fixture(scope="module")
        def dirty():
            shared.STATE["mode"] = "dirty"
            yield
            shared.STATE.clear()

        def test_first():
            pass

        def test_uses(dirty):
            pass

        def test_also_uses(dirty):
            pass

        def test_victim():
            assert "mode" not in shared.STATE
    """)
    run = chaostester.run("--poolchaos-rerun=1")
    diagnosis = run.diagnosis("test_fixture.py::test_victim")
    assert [a["mode"] for a in diagnosis["attempts"][:2]] == ["inline", "isolated"]
    assert diagnosis["attempts"][0]["outcome"] == "passed"  # fixture torn down by then
    assert diagnosis["verdict"] == "order-dependent"
    assert diagnosis["polluter"] == "test_fixture.py::test_uses"


def test_env_polluter_found_through_the_ledger(chaostester):
    chaostester.pytester.makepyfile(test_env="""
        import os

        def test_one():
            pass

        def test_sets_flag():
            os.environ["POOLCHAOS_DEMO_FLAG"] = "yes"

        def test_two():
            pass

        def test_victim():
            assert "POOLCHAOS_DEMO_FLAG" not in os.environ, "POOLCHAOS_DEMO_FLAG leaked"
    """)
    run = chaostester.run(*ISOLATED)
    diagnosis, search = _search_of(run, "test_env.py::test_victim")
    assert search["method"] == "ledger"
    assert diagnosis["polluter"] == "test_env.py::test_sets_flag"
    assert search["runs"] == 1
    # a second pass alone (one is no stable result), the pair run, then one run of the
    # cleaner search (test_one and test_two between them clean nothing)
    assert [a["mode"] for a in diagnosis["attempts"]] == ["isolated", "isolated", "pair",
                                                           "bisect"]
    assert "cleaner search" in diagnosis["attempts"][3]["message"]


def test_watched_key_named_only_in_the_failing_line_takes_the_ledger_path(chaostester):
    # The message shows values only; the key is in the source line, as in most asserts.
    chaostester.pytester.makeini("[pytest]\npoolchaos_watch = settings:CONFIG\n")
    chaostester.pytester.makepyfile(settings="CONFIG = {'pool_mode': 'basic'}\n", test_cfg="""
        import threading
        import settings

        STOP = threading.Event()

        def test_one():
            pass

        def test_switches_mode():
            settings.CONFIG["pool_mode"] = "sticky"
            threading.Thread(target=STOP.wait, name="mode-watcher", daemon=True).start()

        def test_two():
            pass

        def test_victim():
            assert settings.CONFIG["pool_mode"] == "basic"
    """)
    run = chaostester.run(*ISOLATED)
    diagnosis, search = _search_of(run, "test_cfg.py::test_victim")
    assert search["method"] == "ledger"
    assert search["runs"] == 1
    assert diagnosis["polluter"] == "test_cfg.py::test_switches_mode"
    evidence = "\n".join(diagnosis["evidence"])
    assert "settings:CONFIG['pool_mode'] = 'sticky' (was 'basic')" in evidence
    assert "test_cfg.py::test_switches_mode also left running: thread 'mode-watcher'" in evidence


def test_budget_running_out_reports_the_narrowest_range(chaostester):
    chaostester.pytester.makepyfile(shared=SHARED, test_order=_suite(8, polluter_at=1))
    run = chaostester.run(*ISOLATED, "--poolchaos-bisect-budget=1")
    diagnosis, search = _search_of(run, "test_order.py::test_victim")
    assert search["method"] == "exhausted"
    assert search["runs"] == 1
    assert search["narrowest"] == [f"test_order.py::test_{n:02d}" for n in range(4)]
    assert diagnosis["polluter"] is None
    assert diagnosis["verdict"] == "order-dependent"
    assert any("ran out of budget" in line for line in diagnosis["evidence"])


def test_no_bisect_without_the_flag(chaostester):
    chaostester.pytester.makepyfile(shared=SHARED, test_order=_suite(2, polluter_at=0))
    run = chaostester.run(*ISOLATED, "--poolchaos-no-bisect")
    diagnosis = run.diagnosis("test_order.py::test_victim")
    # passes alone twice, but without a search nothing reproduced the failing order
    assert [a["outcome"] for a in diagnosis["attempts"]] == ["passed", "passed"]
    assert diagnosis["verdict"] == "unknown"
    assert diagnosis["polluter_search"] is None
    assert diagnosis["polluter"] is None


# -- the search alone, against a simulated suite ----------------------------------------------


@dataclass
class FakeRunner:
    """The victim fails when the polluter ran before it; counts runs like the real one."""

    polluter: str | None
    runs: int = 0

    def run(self, nodeids, timeout, raise_limit=None, light=False):
        self.runs += 1
        victim = nodeids[-1]
        failed = self.polluter in nodeids[:-1]
        test = ChildTest(victim, "failed" if failed else "passed", 0.01)
        return ChildRun(tuple(nodeids), 0.01, 1 if failed else 0, tests={victim: test})


def _find(runner, candidates, ledger=(), text="", budget=20):
    return PolluterSearch(runner, budget, 60.0, {}).find("victim", candidates, ledger, text)


@pytest.mark.parametrize("count", [1, 2, 7, 50, 200, 1000])
def test_bisection_stays_within_log2_runs(count):
    candidates = [f"t{n}" for n in range(count)]
    for position in {0, count // 3, count - 1}:
        runner = FakeRunner(candidates[position])
        search = _find(runner, candidates)
        assert search.polluter == candidates[position]
        assert search.method == "bisect"
        assert search.runs == runner.runs <= math.ceil(math.log2(count)) + 1


@dataclass
class TwoWayRunner(FakeRunner):
    """``polluter`` makes the victim fail as it did in the session; ``other``, run without
    it, makes it fail another way."""

    other: str | None = None

    def run(self, nodeids, timeout, raise_limit=None, light=False):
        self.runs += 1
        victim, earlier = nodeids[-1], nodeids[:-1]
        message = ("ValueError: bad state" if self.polluter in earlier else
                   "pkg.errors.RemoteError: busy" if self.other in earlier else "")
        test = ChildTest(victim, "failed" if message else "passed", 0.01, message=message)
        return ChildRun(tuple(nodeids), 0.01, 1 if message else 0, tests={victim: test})


@pytest.mark.parametrize("other", ["t0", "t3"])
def test_a_run_failing_another_way_does_not_reproduce_the_failure(other):
    candidates = [f"t{n}" for n in range(8)]
    runner = TwoWayRunner("t5", other=other)
    search = PolluterSearch(runner, 20, 60.0, {}, crash="ValueError: bad state").find(
        "victim", candidates, (), "")
    assert (search.polluter, search.reproduced) == ("t5", True)
    # nearest negative: with the session's failure unknown, any failure counts, and the
    # bisection takes the half it tries first when that half fails
    if other == "t0":
        assert _find(TwoWayRunner("t5", other=other), candidates).polluter == "t0"


def test_failing_only_another_way_is_not_reproduced():
    runner = TwoWayRunner(None, other="t2")
    search = PolluterSearch(runner, 20, 60.0, {}, crash="assert 5 >= 10").find(
        "victim", [f"t{n}" for n in range(6)], (), "")
    assert search.polluter is None
    assert search.reproduced is False
    rejected = [a.message for a in search.attempts if "not counted" in a.message]
    assert rejected
    assert "(RemoteError, not the AssertionError of the run: not counted)" in rejected[0]


@pytest.mark.parametrize(("message", "kind"), [
    ("OSError: could not get source code", "OSError"),
    ("execnet.gateway_base.RemoteError: concurrent remote_exec", "RemoteError"),
    ("assert 5 >= 10\n +  where 5 = len([])", "AssertionError"),
    ("AssertionError: custom words", "AssertionError"),
    ("Failed: Timeout (>2.0s) from pytest-timeout.", "Failed"),
    ("KeyboardInterrupt", "KeyboardInterrupt"),
    ("[gw0] node down: Not properly terminated", None),
    ("test_x.py:12: in <module>", None),
    ("", None),
])
def test_failure_kind_reads_the_class_a_crash_message_names(message, kind):
    assert failure_kind(message) == kind


def test_bisection_without_a_polluter_says_not_reproduced():
    search = _find(FakeRunner(None), [f"t{n}" for n in range(10)])
    assert search.polluter is None
    assert search.reproduced is False


@dataclass
class SlowRunner(FakeRunner):
    """Runs of more than ``fits`` tests are killed at the time limit before the victim runs."""

    fits: int = 3

    def run(self, nodeids, timeout, raise_limit=None, light=False):
        if len(nodeids) <= self.fits:
            return super().run(nodeids, timeout, raise_limit, light)
        self.runs += 1
        return ChildRun(tuple(nodeids), timeout, None, killed=True, tests={})


def test_a_run_killed_before_the_victim_ran_proves_no_order():
    # no polluter at all; the long runs never reach the victim. Before, a killed run counted
    # as the failure reproduced: "order-dependent", and a half of harmless tests suspected.
    search = _find(SlowRunner(None), [f"t{n}" for n in range(40)])
    assert search.polluter is None
    assert search.reproduced is not True
    assert search.method == "exhausted"
    # nearest negative: the same search whose runs all finish proves there is none
    assert _find(FakeRunner(None), [f"t{n}" for n in range(40)]).reproduced is False


def test_ledger_fast_path_tries_named_leftovers_latest_first():
    candidates = ["a", "b", "c", "d"]
    ledger = [LedgerEntry("a", "env", "MY_FLAG", None, "1"),
              LedgerEntry("c", "env", "MY_FLAG", "0", "1"),
              LedgerEntry("b", "env", "OTHER_KEY", None, "x")]
    assert named_in_failure(candidates, ledger, "MY_FLAG is set") == ["c", "a"]
    runner = FakeRunner("a")
    search = _find(runner, candidates, ledger, "MY_FLAG is set")
    assert (search.method, search.polluter, search.runs) == ("ledger", "a", 2)
    assert search.left_behind == [ledger[0]]


def test_ledger_miss_falls_back_to_bisection():
    ledger = [LedgerEntry("a", "env", "MY_FLAG", None, "1")]
    search = _find(FakeRunner("c"), ["a", "b", "c", "d"], ledger, "MY_FLAG is set")
    assert (search.method, search.polluter) == ("bisect", "c")
    assert next(a.mode for a in search.attempts) == "pair"


def test_watched_keys_match_by_their_last_part():
    ledger = [LedgerEntry("a", "watched", "pkg.settings:DEBUG_MODE", "False", "True")]
    assert named_in_failure(["a"], ledger, "DEBUG_MODE must be off") == ["a"]


def test_the_victims_own_module_is_searched_first():
    # 120 earlier tests in other modules, 6 in the victim's: a polluter next to the victim
    # takes one run for the module and a bisection of 6, not of 126.
    others = [f"test_other{m}.py::t{n}" for m in range(4) for n in range(30)]
    local = [f"test_victim.py::t{n}" for n in range(6)]
    runner = FakeRunner(local[4])
    search = PolluterSearch(runner, 20, 60.0, {}).find("test_victim.py::victim",
                                                       [*others, *local], (), "")
    assert search.polluter == local[4]
    assert search.runs == runner.runs <= 1 + math.ceil(math.log2(len(local)))
    # a polluter elsewhere costs that one run more than a bisection of the rest
    runner = FakeRunner(others[7])
    search = PolluterSearch(runner, 20, 60.0, {}).find("test_victim.py::victim",
                                                       [*others, *local], (), "")
    assert search.polluter == others[7]
    assert search.runs <= 1 + math.ceil(math.log2(len(others))) + 1


UMASK = """
import os
import re


def test_secrets_are_private(tmp_path):
    os.umask(0o077)  # tightened for the whole process, never put back
    (tmp_path / "key").write_text("k")


def test_spool_is_group_readable(tmp_path):
    spool = tmp_path / "spool"
    spool.write_text("x")
    assert spool.stat().st_mode & 0o040
"""


def test_diagnostic_runs_start_with_the_sessions_umask_not_the_leftover(chaostester):
    # The confirming subprocess is started by the pytest process whose umask the polluter
    # tightened: inherited, it would make the victim fail "alone" too and clear the polluter.
    saved = os.umask(0o022)
    try:
        chaostester.pytester.makepyfile(test_umask=UMASK)
        run = chaostester.run("--poolchaos-confirm=auto", "--poolchaos-confirm-seconds=60")
    finally:
        os.umask(saved)
    diagnosis = run.diagnosis("test_spool_is_group_readable")
    assert diagnosis["verdict"] == "order-dependent", diagnosis["evidence"]
    assert diagnosis["polluter"] == "test_umask.py::test_secrets_are_private"


SHUT_DOWN = """
from concurrent.futures import ThreadPoolExecutor

import shared_pool


def test_a_drains_the_shared_pool():
    assert shared_pool.SHARED.submit(pow, 3, 2).result(10) == 9
    shared_pool.SHARED.shutdown(wait=True)


def test_b_uses_the_shared_pool():
    assert shared_pool.SHARED.submit(pow, 4, 2).result(10) == 16


def test_c_uses_its_own_pool_after_closing_it():
    pool = ThreadPoolExecutor(1)
    pool.shutdown()
    assert pool.submit(pow, 5, 2).result(10) == 25
"""


CLOSED_CHANNEL = """
import socket

import channel


def test_a_closes_the_shared_channel():
    channel.SHARED.sendall(b"bye")
    channel.SHARED.close()


def test_b_sends_on_the_shared_channel():
    channel.SHARED.sendall(b"hello")


def test_c_sends_on_its_own_closed_channel():
    own, _peer = socket.socketpair()
    own.close()
    own.sendall(b"hello")
"""


BROKEN_POOL = """
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.thread import BrokenThreadPool

import pytest

import shared_pool


def test_a_breaks_the_shared_pool():
    shared_pool.SETTINGS["ready"] = False  # never put back
    with pytest.raises(BrokenThreadPool):
        shared_pool.POOL.submit(pow, 2, 2).result(10)


def test_b_uses_the_shared_pool():
    assert shared_pool.POOL.submit(pow, 3, 2).result(10) == 9


def test_c_breaks_its_own_pool():
    def refuse():
        raise RuntimeError("no worker today")

    pool = ThreadPoolExecutor(1, initializer=refuse)
    assert pool.submit(pow, 4, 2).result(10) == 16
"""

SHARED_POOL = """
from concurrent.futures import ThreadPoolExecutor

SETTINGS = {"ready": True}


def _check():
    if not SETTINGS["ready"]:
        raise RuntimeError("worker not configured")


POOL = ThreadPoolExecutor(1, initializer=_check)
"""


CLOSED_LOOP = """
import asyncio

from shared_loop import LOOP


async def ping():
    await asyncio.sleep(0)
    return "pong"


def test_a_closes_the_shared_loop():
    assert LOOP.run_until_complete(ping()) == "pong"
    LOOP.close()


def test_b_uses_the_shared_loop():
    coroutine = ping()
    try:
        assert LOOP.run_until_complete(coroutine) == "pong"
    finally:
        coroutine.close()  # never started: no "never awaited" warning


def test_c_uses_its_own_closed_loop():
    loop = asyncio.new_event_loop()
    loop.close()
    coroutine = ping()
    try:
        assert loop.run_until_complete(coroutine) == "pong"
    finally:
        coroutine.close()
"""

SHUT_DOWN_POOL = ("from concurrent.futures import ThreadPoolExecutor\n"
                  "SHARED = ThreadPoolExecutor(1)\n")
SHARED_CHANNEL = "import socket\nSHARED, PEER = socket.socketpair()\n"


@pytest.mark.parametrize(("module", "tests", "words"), [
    pytest.param(("shared_pool", SHUT_DOWN_POOL), SHUT_DOWN,
                 "refused the call in a state an earlier test left it in", id="shut-down"),
    pytest.param(("channel", SHARED_CHANNEL), CLOSED_CHANNEL,
                 "the socket or file it used had been closed by then", id="closed"),
    pytest.param(("shared_pool", SHARED_POOL), BROKEN_POOL,
                 "the pool it used had lost a worker by then", id="broken"),
    pytest.param(("shared_loop", "import asyncio\nLOOP = asyncio.new_event_loop()\n"),
                 CLOSED_LOOP, "refused the call in a state an earlier test left it in",
                 id="closed-loop"),
])
def test_a_shared_object_an_earlier_test_ended_is_pollution_not_this_tests_lifecycle(
        chaostester, module, tests, words):
    name, source = module
    chaostester.pytester.makepyfile(**{name: source, "test_shared": tests})
    # the confirming run (on by default, off in this suite) proves the order dependence
    run = chaostester.run("--poolchaos-confirm=auto")
    test_a, test_b, test_c = re.findall(r"^def (test_\w+)", tests, re.MULTILINE)
    victim = run.diagnosis(f"test_shared.py::{test_b}")
    assert victim["verdict"] == "order-dependent"
    assert victim["category"] == "config-pollution"
    assert victim["polluter"] == f"test_shared.py::{test_a}"
    assert any(words in line for line in victim["evidence"])
    # the same refusal by an object the test made and ended itself: its own lifecycle
    own = run.diagnosis(f"test_shared.py::{test_c}")
    assert own["category"] == "lifecycle"
    assert own["polluter"] is None



SHARED_DATABASE = """
import sqlite3
import threading

CONN = sqlite3.connect(":memory:", check_same_thread=False)
CONN.execute("create table kv (k text primary key, v text)")
LOCK = threading.Lock()


def put(key, value):
    with LOCK:
        CONN.execute("insert or replace into kv values (?, ?)", (key, value))


def shutdown():
    CONN.close()
"""

CLOSED_DATABASE = """
from concurrent.futures import ThreadPoolExecutor

import store


def test_a_shuts_the_store_down():
    store.put("a", "1")
    store.shutdown()


def test_b_puts_from_pool_threads():
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: store.put(f"k{i}", str(i)), range(8)))
"""

OWN_CLOSED_DATABASE = """
import store


def test_puts_after_its_own_shutdown():
    store.shutdown()
    store.put("b", "2")
"""


@pytest.mark.parametrize(("tests", "category"), [
    pytest.param(CLOSED_DATABASE, "config-pollution", id="closed-by-an-earlier-test"),
    pytest.param(OWN_CLOSED_DATABASE, "lifecycle", id="closed-by-the-test"),
])
def test_a_modules_connection_found_closed_is_read_from_the_module_global(
        chaostester, tests, category):
    # A connection that refuses everyone because it is closed is no thread-bound misuse,
    # even when pool threads made the call: the module global the failing line used says so.
    chaostester.pytester.makepyfile(store=SHARED_DATABASE, test_store=tests)
    run = chaostester.run("--poolchaos-confirm=auto")
    name = re.findall(r"^def (test_\w+)", tests, re.MULTILINE)[-1]
    diagnosis = run.diagnosis(f"test_store.py::{name}")
    assert diagnosis["category"] == category
    assert not [rule for rule in diagnosis["rules"] if rule["category"] == "race"]
    if category == "config-pollution":
        assert diagnosis["polluter"] == "test_store.py::test_a_shuts_the_store_down"


INHERITED = """
import resource
import signal
import socket
import subprocess
import sys


def test_a_reaper_ignores_its_children():
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # never put back
    subprocess.Popen([sys.executable, "-c", "pass"]).wait()


def test_b_child_exit_status_is_read():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert child.wait() == 3


def test_c_caps_open_files():
    resource.setrlimit(resource.RLIMIT_NOFILE,
                       (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))  # never put back


def test_d_many_connections():
    sockets = [socket.socket() for _ in range(80)]
    for sock in sockets:
        sock.close()
"""


def test_diagnostic_runs_start_without_the_signals_and_limits_a_test_left(chaostester):
    # An ignored signal stays ignored across exec and limits are inherited: a confirming
    # run started with what the polluters left fails "alone" too and clears them. In a
    # subprocess: the 64-descriptor cap would otherwise count this process's own files.
    chaostester.pytester.makepyfile(test_inherited=INHERITED)
    run = chaostester.run("--poolchaos-confirm=auto", "--poolchaos-confirm-seconds=60",
                          subprocess=True)
    reaped = run.diagnosis("test_b_child_exit_status_is_read")
    assert reaped["verdict"] == "order-dependent", reaped["evidence"]
    assert reaped["polluter"] == "test_inherited.py::test_a_reaper_ignores_its_children"
    # a Popen's wait() compared with a status is no event left unset
    assert "timeout.event-wait" not in [r["id"] for r in reaped["rules"]]
    capped = run.diagnosis("test_d_many_connections")
    assert capped["verdict"] == "order-dependent", capped["evidence"]
    assert capped["polluter"] == "test_inherited.py::test_c_caps_open_files"
    # the session itself is left as the tests left it: only the children start clean
    assert run.test("test_inherited.py::test_d_many_connections")["outcome"] == "failed"
