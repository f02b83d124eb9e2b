"""Probes (issue #7 section 2, leaks and the wider ledger): each built-in probe finds what a
test left behind, and its nearest negative (the same work, undone) finds nothing; a team's
own probe through ``pytest_poolchaos_probe`` works the same way.

One subprocess session serves every assertion of a group: the probes change process-wide
state on purpose (the start method, the excepthooks), which must not reach this process.
"""

from __future__ import annotations

import os

import pytest

LEFT_BEHIND = """
import asyncio
import decimal
import locale
import logging
import multiprocessing
import random
import os
import socket
import sqlite3
import sys
import threading
import time
import urllib.request

import pytest

import orders_app

KEEP = []
SHARED_PAIR = socket.socketpair()
# Made at import, as an application's modules make theirs.
LOGGERS = [logging.getLogger(name) for name in ("orders.db", "orders.queue", "orders.api")]

# -- leaks ------------------------------------------------------------------------------------

def test_socket_left_open():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    KEEP.append(server)

def test_socket_closed():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

def test_socketpair_half_closed():
    here, there = socket.socketpair()
    here.close()  # the lowest free number is back where it was; one descriptor is not
    KEEP.append(there)

def test_shared_pair_closed():
    for end in SHARED_PAIR:  # made before the session: closing it opens nothing
        end.close()

def test_file_left_open(tmp_path):
    KEEP.append(open(tmp_path / "orders.log", "w"))

def test_file_closed(tmp_path):
    with open(tmp_path / "orders.log", "w") as handle:
        handle.write("x")

@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    for task in asyncio.all_tasks(loop):
        task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()

async def drain_forever():
    await asyncio.sleep(3600)

def test_task_left_pending(loop):
    loop.create_task(drain_forever())
    loop.run_until_complete(asyncio.sleep(0))

def test_task_cancelled(loop):
    task = loop.create_task(drain_forever())
    loop.run_until_complete(asyncio.sleep(0))
    task.cancel()
    loop.run_until_complete(asyncio.gather(task, return_exceptions=True))

def test_asyncio_run_closes_its_loop():
    async def main():
        asyncio.get_running_loop().create_task(drain_forever())
    asyncio.run(main())

# -- the wider ledger -------------------------------------------------------------------------

def test_named_logger_changed():
    logging.getLogger("orders.db").setLevel(logging.ERROR)
    logging.getLogger("orders.queue").propagate = False

def test_named_logger_used():
    logging.getLogger("orders.api").info("nothing configured")

def test_locale_changed():
    current = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C" if current != "C" else "C.UTF-8")

def test_locale_read():
    locale.setlocale(locale.LC_ALL)
    locale.getpreferredencoding(False)

def test_timezone_restored(monkeypatch):
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    monkeypatch.undo()
    time.tzset()

def test_timezone_changed(monkeypatch):
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()  # the env var is put back after the test, the zone is not

def test_random_seeded():
    random.seed(1234)

def test_random_seeded_and_put_back():
    state = random.getstate()
    random.seed(1234)
    random.setstate(state)
    random.random()

def test_start_method_read():
    multiprocessing.get_start_method()

def test_loop_policy_read():
    asyncio.get_event_loop_policy()

def test_loop_policy_changed():
    class Policy(asyncio.DefaultEventLoopPolicy):
        pass
    asyncio.set_event_loop_policy(Policy())

def test_excepthook_patched(monkeypatch):
    monkeypatch.setattr(sys, "excepthook", lambda *args: None)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)

def test_excepthooks_changed():
    sys.excepthook = lambda *args: None
    threading.excepthook = lambda args: None

def test_module_global_rebound():
    orders_app.TIMEOUT = 1

def test_class_attribute_rebound():
    orders_app.Pool.size = 1
    orders_app.Single.limit = 2

def test_module_global_patched(monkeypatch):
    monkeypatch.setattr(orders_app, "RETRIES", 0)
    monkeypatch.setattr(orders_app.Pool, "name", "other")

def test_cache_filled_lazily():
    orders_app.CACHE["warm"] = True

def test_umask_tightened():
    os.umask(0o077)

def test_umask_tightened_and_put_back():
    os.umask(os.umask(0o077))

def test_switch_interval_changed():
    sys.setswitchinterval(0.001)

def test_switch_interval_put_back():
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.002)
    sys.setswitchinterval(old)

def test_decimal_precision_changed():
    decimal.getcontext().prec = 4

def test_decimal_precision_in_a_local_context():
    with decimal.localcontext() as context:
        context.prec = 4

def test_sqlite3_adapter_registered():
    sqlite3.register_adapter(decimal.Decimal, str)

class Canned(urllib.request.HTTPHandler):
    def http_open(self, req):
        raise OSError("canned")

def test_opener_installed():
    urllib.request.install_opener(urllib.request.build_opener(Canned))

def test_zz_default_opener_made_by_urlopen():
    urllib.request.install_opener(None)  # the opener the earlier test left: not this test's
    with urllib.request.urlopen("data:,x") as reply:  # builds and installs the default one
        assert reply.read() == b"x"

def test_zz_start_method_changed():
    multiprocessing.set_start_method("spawn", force=True)
"""

ORDERS_APP = """
TIMEOUT = 30
RETRIES = 3
CACHE = {}

class Pool:
    size = 4
    name = "orders"

class Single:
    limit = 1  # a namespace of one value
"""

FOUND = [
    ("test_socket_left_open", "socket", "inet 127.0.0.1:"),
    ("test_socketpair_half_closed", "socket", "socketpair"),
    ("test_file_left_open", "file", "orders.log"),
    ("test_task_left_pending", "asyncio-task", "drain_forever()"),
    ("test_named_logger_changed", "logger", "logging.getLogger('orders.db') = level=ERROR"),
    ("test_locale_changed", "locale", "locale.setlocale(LC_ALL)"),
    ("test_timezone_changed", "timezone", "EST"),
    ("test_random_seeded", "random", "seeded with 1234"),
    ("test_loop_policy_changed", "asyncio-policy", "Policy"),
    ("test_excepthooks_changed", "excepthook", "sys.excepthook"),
    ("test_zz_start_method_changed", "mp-start-method", "spawn"),
    ("test_umask_tightened", "global", "os.umask() = 0o77"),
    ("test_switch_interval_changed", "global", "sys.setswitchinterval() = 0.001"),
    ("test_decimal_precision_changed", "global", "decimal.getcontext() = prec=4"),
    ("test_sqlite3_adapter_registered", "global", "sqlite3.register_adapter(Decimal) = str"),
    ("test_opener_installed", "global", "an opener with Canned"),
    ("test_module_global_rebound", "module-state", "orders_app.TIMEOUT = 1"),
    ("test_class_attribute_rebound", "module-state", "orders_app.Pool.size = 1"),
    ("test_class_attribute_rebound", "module-state", "orders_app.Single.limit = 2"),
]
NOTHING = ["test_socket_closed", "test_shared_pair_closed", "test_file_closed",
           "test_task_cancelled",
           "test_asyncio_run_closes_its_loop", "test_named_logger_used", "test_locale_read",
           "test_timezone_restored", "test_random_seeded_and_put_back", "test_start_method_read",
           "test_loop_policy_read", "test_excepthook_patched", "test_module_global_patched",
           "test_cache_filled_lazily", "test_umask_tightened_and_put_back",
           "test_switch_interval_put_back", "test_decimal_precision_in_a_local_context",
           "test_zz_default_opener_made_by_urlopen"]


@pytest.fixture(scope="module")
def left_behind(tmp_path_factory):
    # One session for every case below; pytester is function-scoped, so run it by hand.
    import json
    import subprocess
    import sys

    path = tmp_path_factory.mktemp("probes")
    (path / "test_left_behind.py").write_text(LEFT_BEHIND)
    (path / "pytest.ini").write_text("[pytest]\n")
    (path / "orders_app.py").write_text(ORDERS_APP)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "poolchaos", "-p", "no:randomly",
                           "-p", "no:cacheprovider", "-p", "no:rerunfailures", "-q",
                           "--poolchaos-json=poolchaos.json"], cwd=path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    data = json.loads((path / "poolchaos.json").read_text())
    return {test["nodeid"].split("::")[-1]: test["leaks"] for test in data["tests"]}


@pytest.mark.parametrize(("test", "kind", "words"), FOUND)
def test_probe_finds_what_the_test_left(left_behind, test, kind, words):
    leaks = left_behind[test]
    assert [leak for leak in leaks if leak["kind"] == kind and words in leak["detail"]], leaks


@pytest.mark.parametrize("test", NOTHING)
def test_the_same_work_undone_leaves_nothing(left_behind, test):
    assert left_behind[test] == []


def test_each_case_reports_only_its_own_kind(left_behind):
    extra = {test: [leak for leak in left_behind[test] if leak["kind"] != kind]
             for test, kind, _ in FOUND}
    # A named logger's two changes and the two excepthooks are one kind each.
    assert not any(extra.values()), extra


SQLALCHEMY = """
import sys

KEEP = []

def test_plugin_never_imports_sqlalchemy():
    assert "sqlalchemy" not in sys.modules

def test_connection_never_returned():
    import sqlalchemy
    engine = sqlalchemy.create_engine("sqlite://")
    KEEP.append(engine.connect())

def test_connection_returned():
    import sqlalchemy
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect() as connection:
        connection.exec_driver_sql("select 1")
"""


def test_sqlalchemy_connection_checked_out_and_never_returned(chaostester):
    pytest.importorskip("sqlalchemy")
    chaostester.pytester.makepyfile(test_db=SQLALCHEMY)
    run = chaostester.run(subprocess=True)
    run.result.assert_outcomes(passed=3)
    leaks = run.leaks("test_connection_never_returned")
    assert [leak["kind"] for leak in leaks] == ["db-connection"], leaks
    assert "never returned" in leaks[0]["detail"]
    assert run.leaks("test_connection_returned") == []


LATE_TASK = """
import asyncio
import sys
import threading
import time

GATE = threading.Event()

async def heartbeat():
    while True:
        await asyncio.sleep(0.05)

def open_gate_once_the_runner_joins(runner):
    # The loop may go on only once the test's thread waits in a join: the scope's settle
    # wait, after its first read of the pending tasks.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(runner)
        while frame is not None:
            if frame.f_code.co_name == "join" and frame.f_globals.get("__name__") == "threading":
                GATE.set()
                return
            frame = frame.f_back
        time.sleep(0.001)

def test_heartbeat_scheduled_from_another_thread():
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="heartbeat-loop", daemon=True).start()
    # The loop is held, as a busy CI machine holds it: the task run_coroutine_threadsafe asks
    # for is made only after the test has returned.
    loop.call_soon_threadsafe(GATE.wait, 30)
    asyncio.run_coroutine_threadsafe(heartbeat(), loop)
    threading.Thread(target=open_gate_once_the_runner_joins, args=(threading.get_ident(),),
                     daemon=True).start()
"""


def test_a_task_a_left_loop_makes_after_the_test_returned_is_found(chaostester):
    # Found on a quiet machine, missed under load: the scope read the pending tasks before
    # it gave what the test left running its settle time. Here the loop makes the task only
    # once the scope waits, so without a read after the wait the task is never there.
    chaostester.pytester.makepyfile(test_late_task=LATE_TASK)
    run = chaostester.run()
    run.result.assert_outcomes(passed=1)
    leaks = run.leaks("test_heartbeat_scheduled_from_another_thread")
    kinds = sorted(leak["kind"] for leak in leaks)
    assert "thread" in kinds, kinds
    task = [leak for leak in leaks if leak["kind"] == "asyncio-task"]
    assert len(task) == 1, kinds
    assert "heartbeat()" in task[0]["detail"], task


OWN_PROBE = """
import pytest_poolchaos

CLIENTS = []  # a team's client registry, e.g. Redis clients

class RedisClients(pytest_poolchaos.Probe):
    kind = "redis-client"

    def take(self):
        return tuple(CLIENTS)

    def diff(self, before, after):
        return [pytest_poolchaos.Held(self.kind, f"redis client {name!r} was never closed",
                                      close=lambda name=name: CLIENTS.remove(name))
                for name in after if name not in before]

class Broken(pytest_poolchaos.Probe):
    kind = "broken"

    def take(self):
        raise RuntimeError("probe bug")

def pytest_poolchaos_probe(config):
    return [RedisClients(), Broken()]
"""


def test_a_teams_own_probe_reports_through_the_hook(chaostester):
    chaostester.pytester.makeconftest(OWN_PROBE)
    chaostester.pytester.makepyfile(
        """
        from conftest import CLIENTS

        def test_opens_a_client():
            CLIENTS.append("cache")

        def test_opens_and_closes_a_client():
            CLIENTS.append("queue")
            CLIENTS.remove("queue")

        def test_fails():
            assert 1 == 2
        """
    )
    run = chaostester.run("--poolchaos-leaks=cleanup")
    run.result.assert_outcomes(passed=2, failed=1)
    leaks = run.leaks("test_opens_a_client")
    assert leaks == [{"kind": "redis-client", "key": "redis-client",
                      "detail": "redis client 'cache' was never closed (cleaned up)"}], leaks
    assert run.leaks("test_opens_and_closes_a_client") == []
    # The broken probe is switched off and said once; it changes no outcome.
    problems = [p for p in run.data["session"]["problems"] if "probe bug" in p]
    assert len(problems) == 1, run.data["session"]["problems"]


def test_a_snapshot_sees_environb_writes_and_fchdir_moves(tmp_path):
    # The snapshot copies the environment and reads the directory only after a counted
    # write or move: os.environb and os.fchdir must be counted like os.environ and os.chdir.
    import os

    from pytest_poolchaos import sanitize
    from pytest_poolchaos.worker.scope import globals as state

    sanitize.watch_environ()
    state.CHDIRS.install()
    old = os.getcwd()
    try:
        before = state.builtin_snapshot()
        assert state.builtin_snapshot()[0] is before[0]  # nothing written: the same copy
        os.environb[b"POOLCHAOS_ENVIRONB_PROBE"] = b"1"
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            os.fchdir(fd)
        finally:
            os.close(fd)
        after = state.builtin_snapshot()
    finally:
        os.chdir(old)
        os.environb.pop(b"POOLCHAOS_ENVIRONB_PROBE", None)
        state.CHDIRS.uninstall()
        sanitize.unwatch_environ()
    assert after[0].get(b"POOLCHAOS_ENVIRONB_PROBE") == b"1"
    assert after[1] == os.path.realpath(tmp_path)


def _open_files_probe():
    from pytest_poolchaos.worker.scope.leaks import OpenFiles

    probe = OpenFiles()
    if probe.dir != "/proc/self/fd" or os.stat(probe.dir).st_size == 0:
        probe.close()
        pytest.skip("the descriptor count needs Linux 6.2 or later")  # CI runs such a kernel
    return probe


def test_a_file_kept_above_a_closed_one_is_found_by_the_count(tmp_path):
    # The lowest free number is the same after the test as before: only the count moved.
    probe = _open_files_probe()
    try:
        before = probe.take()
        lower = os.open(tmp_path / "lower", os.O_CREAT | os.O_WRONLY)
        kept = os.open(tmp_path / "kept", os.O_CREAT | os.O_WRONLY)
        os.close(lower)
        try:
            [held] = probe.diff(before, probe.take())
        finally:
            os.close(kept)
        assert f"(fd {kept})" in held.detail
        assert "kept" in held.detail
    finally:
        probe.close()


def test_the_held_descriptor_closed_under_the_probe_is_not_closed_again(tmp_path):
    probe = _open_files_probe()
    assert probe._held is not None
    fd = probe._held[0]
    os.close(fd)  # as a test that closes every descriptor it did not open would
    reused = os.open(tmp_path / "reused", os.O_CREAT | os.O_WRONLY)
    try:
        assert reused == fd
        probe.take()  # counts by the path again
        assert probe._held is None
        probe.close()
        os.fstat(reused)  # still open: not the probe's to close
    finally:
        os.close(reused)


def test_a_forked_child_does_not_count_by_the_parents_descriptor():
    probe = _open_files_probe()
    try:
        pid = os.fork()
        if pid == 0:  # the child: leave at once, whatever happens
            try:
                probe.take()
                os._exit(0 if probe._held is None else 1)
            finally:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert probe._held is not None  # the parent keeps its own
    finally:
        probe.close()
