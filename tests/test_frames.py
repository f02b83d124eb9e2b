"""Facts read from live frames and threads at a failure, in-process: each fact and its
nearest negative, and that reading them runs no user code."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import types
import unittest
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import pytest

from pytest_poolchaos.worker import frames
from pytest_poolchaos.worker.scope.spawn import Started

ROOT = str(Path(__file__).parent)


def raised(func, *args):
    try:
        func(*args)
    except BaseException as error:  # any failure is what is inspected
        return error
    raise AssertionError("expected a failure")


def kinds(error: BaseException) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for fact in frames.frame_facts([error], ROOT):
        found.setdefault(fact.kind, []).append(fact.detail)
    return found


class Lease:
    def __init__(self) -> None:
        self.slot = threading.RLock()

    def give_back(self) -> None:
        self.slot.release()


def test_a_lock_released_on_a_pool_thread_is_seen_with_the_thread_crossing():
    lease = Lease()
    with ThreadPoolExecutor(1) as pool:
        error = raised(lambda: pool.submit(lease.give_back).result(timeout=2))
    facts = kinds(error)
    assert any(d.startswith("RLock self.slot in give_back") for d in facts["lock"])
    assert facts["worker-thread"]
    # nearest negative: the same release on this thread crosses no worker
    assert "worker-thread" not in kinds(raised(Lease().give_back))


class Observed:
    """Attribute access and len() have effects (a lazy query)."""

    calls: list[str] = []

    def __getattr__(self, name):
        Observed.calls.append(name)
        raise AttributeError(name)

    def __len__(self):
        Observed.calls.append("len")
        return 1


def test_reading_frames_runs_no_user_code():
    def fails(observed):
        raise ValueError("boom")

    Observed.calls.clear()
    kinds(raised(fails, Observed()))
    assert Observed.calls == []


class FakeClock:
    def now(self) -> float:
        raise NotImplementedError


def test_doubles_are_found_by_their_class_and_where_they_raised():
    def divide(quota):
        return 1 / quota.size

    facts = kinds(raised(divide, mock.Mock(size=0)))
    assert any("quota is a Mock" in d for d in facts["double-at-raise"])
    facts = kinds(raised(FakeClock().now))
    assert any("self is a test-defined FakeClock" in d for d in facts["double"])
    # nearest negative: a plain object of the standard library is no double
    assert "double" not in kinds(raised(divide, types.SimpleNamespace(size=0)))


class TestWithSelf(unittest.TestCase):
    """A test class as unittest and pytest run it: its instance is the running test."""

    def compute(self):
        return pool_decorated(1, 1)  # the registered function of another module: one arg


class TestPlain:
    def compute(self):
        return pool_decorated(1, 1)


def pool_decorated(_argument):
    return _argument


def test_the_running_tests_own_instance_is_no_double():
    # Seen on a worker-pool library's suite: a TypeError raised in a unittest test method was
    # read as "a double's default flowed into a computation" because of `self`.
    for case in (TestWithSelf("compute"), TestPlain()):
        facts = kinds(raised(case.compute))
        assert "double-at-raise" not in facts
        assert "double" not in facts
    # nearest negative: a fake the test module defines (not named as a test class) still is
    facts = kinds(raised(FakeClock().now))
    assert any("self is a test-defined FakeClock" in d for d in facts["double"])


def test_a_wait_whose_result_was_dropped_is_read_from_the_test_frame():
    def dropped():
        ready = threading.Event()
        ready.wait(0.01)
        assert ready.is_set()

    def checked():
        ready = threading.Event()
        assert ready.wait(0.01)

    assert any("ready.wait(0.01)" in d for d in kinds(raised(dropped))["dropped-wait"])
    assert "dropped-wait" not in kinds(raised(checked))


def poll_until(check, deadline: float):
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        if check():
            return True
        time.sleep(0.005)
    return None


def first_try(check, deadline: float):
    return check() or None


def test_a_call_on_the_failing_line_that_polls_a_clock_is_a_deadline():
    def polled():
        assert poll_until(lambda: False, deadline=0.01)

    def tried():
        assert first_try(lambda: False, deadline=0.01)

    assert any("poll_until() polls" in d for d in kinds(raised(polled))["deadline"])
    assert "deadline" not in kinds(raised(tried))



def test_retries_with_a_pause_are_read_from_the_raising_functions_own_lines():
    def raises_at_once():  # the function after it retries: not this one's loop
        raise RuntimeError("refused")

    def retries_then_raises():
        for _ in range(3):
            time.sleep(0.001)
        raise RuntimeError("gave up")

    found = kinds(raised(retries_then_raises))["deadline"]
    assert any("retries_then_raises() tries a fixed number of times" in d for d in found)
    assert "deadline" not in kinds(raised(raises_at_once))


def test_a_failed_child_the_raising_frame_read_is_an_exit_checked_fact():
    def sh(code):
        child = subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"])
        child.wait(timeout=30)
        if child.returncode != 1:
            raise RuntimeError(f"exit {child.returncode}")

    found = kinds(raised(sh, 2))["exit-checked"]
    assert any("`child` in sh (test_frames.py:" in d and "exited with 2" in d for d in found)
    assert "exit-checked" not in kinds(raised(sh, 0))  # it raised, but the child succeeded


def test_a_loop_of_the_failing_frame_that_polled_a_clock_before_its_assert_is_a_deadline():
    def collected_by_deadline():
        got: list[int] = []
        give_up = time.monotonic() + 0.01
        while time.monotonic() < give_up:
            time.sleep(0.005)
        assert len(got) == 3

    def collected_three_times():
        got: list[int] = []
        for _ in range(3):
            time.sleep(0.001)
        assert len(got) == 3

    def counted_in_a_window():  # works until the time is up: a throughput bound
        count = 0
        stop = time.monotonic() + 0.01
        while time.monotonic() < stop:
            count += 1
        assert count < 0

    def worked_in_threads_for_a_window():  # the clock loop is the threads', not this frame's
        stop = time.monotonic() + 0.01
        done = []

        def hammer():
            while time.monotonic() < stop:
                time.sleep(0.001)
            done.append(1)

        hammer()
        assert done == []

    found = kinds(raised(collected_by_deadline))["deadline"]
    assert any("collected_by_deadline() polls until a clock deadline" in d for d in found)
    for negative in (collected_three_times, counted_in_a_window, worked_in_threads_for_a_window):
        assert "deadline" not in kinds(raised(negative)), negative.__name__

def test_workers_are_busy_idle_or_exited():
    release = threading.Event()
    busy = threading.Thread(target=release.wait, args=(5,), name="busy-one")
    done = threading.Thread(target=int, name="done-one")
    busy.start()
    done.start()
    done.join()
    pool = ThreadPoolExecutor(1, thread_name_prefix="idle")
    pool.submit(int).result()
    try:
        started = [Started(kind, weakref.ref(obj), "", "x", "call")
                   for kind, obj in (("thread", busy), ("thread", done), ("pool", pool))]
        states = {w.name: w.state for w in frames.workers(started)}
    finally:
        release.set()
        busy.join(5)
        pool.shutdown(wait=True)
    assert states == {"busy-one": "busy", "done-one": "exited", "idle_0": "idle"}


@pytest.mark.parametrize("nested", [False, True])
def test_modules_used_where_it_failed_name_their_file(nested):
    def uses_a_module():
        return frames.no_such_name if not nested else frames.workers.no_such_attribute

    facts = kinds(raised(uses_a_module)).get("module", [])
    assert any(d.startswith("frames ") and d.endswith("frames.py") for d in facts)


def test_unittest_assert_methods_give_their_operands():
    import unittest

    from pytest_poolchaos.worker import evidence

    case = unittest.TestCase()
    equal = evidence._unittest(raised(case.assertEqual, 2, 3))
    assert equal is not None
    assert (equal.comparison.op, equal.comparison.left_value,
            equal.comparison.right_value) == ("==", 2.0, 3.0)
    lists = evidence._unittest(raised(case.assertEqual, [2, 1], [1, 2]))
    assert lists is not None
    assert lists.reordered
    bound = evidence._unittest(raised(case.assertGreaterEqual, 5, 10))
    assert bound is not None
    assert bound.comparison.op == ">="
    # nearest negative: assertTrue compares nothing
    assert evidence._unittest(raised(case.assertTrue, 0)) is None


def read_limit():
    import os

    return int(os.environ.get("FRAMES_TEST_LIMIT", "3"))


def uses_the_limit():
    raise RuntimeError(f"over {read_limit()}")


def test_the_code_on_the_failing_path_and_what_it_calls_is_read():
    reads = kinds(raised(uses_the_limit))["reads"]
    assert any(d.startswith("read_limit: ") and "FRAMES_TEST_LIMIT" in d.split() for d in reads)
    assert any(d.startswith("uses_the_limit: ") for d in reads)


class Pool:
    def prune(self) -> int:
        return len([c for c in range(2) if read_limit() > 5])


def test_methods_the_failing_frame_calls_on_its_objects_are_read():
    def fails():
        pool = Pool()
        assert pool.prune() == 1

    reads = kinds(raised(fails))["reads"]
    assert any(d.startswith("Pool.prune: ") and "read_limit" in d.split() for d in reads)


def test_closed_state_is_read_from_the_resource_itself(tmp_path):
    import concurrent.futures
    import socket
    import sqlite3

    from pytest_poolchaos.worker.frames import closed_state

    opened = [open(tmp_path / "f", "w"),  # noqa: SIM115 (closed below, then inspected)
              socket.socket(), sqlite3.connect(":memory:"),
              concurrent.futures.ThreadPoolExecutor(1)]
    try:
        assert [closed_state(obj) for obj in opened] == ["", "", "", ""]
    finally:
        for obj in opened[:3]:
            obj.close()
        opened[3].shutdown()
    assert [closed_state(obj) for obj in opened] == ["closed", "closed", "closed", "shut down"]

    class Client:
        def __init__(self):
            self._closed = True

    class Lazy:
        @property
        def closed(self):  # a project's property is never run to find out
            raise AssertionError("ran user code")

    assert closed_state(Client()) == "closed"
    assert closed_state(Lazy()) == ""


def test_an_object_still_being_built_is_not_read_as_closed():
    # a spawner marks itself closed until its child runs, and its constructor raises when the
    # command is missing: it never started, so nothing "stopped under" the code
    class Spawner:
        def __init__(self, command):
            self.closed = True
            if command == "missing":
                self._refuse(command)
            self.closed = False

        def _refuse(self, command):
            raise LookupError(f"command not found: {command}")

        def send(self):
            raise LookupError("send on a stopped spawner")

    assert "closed" not in kinds(raised(Spawner, "missing"))
    stopped = Spawner("sh")
    stopped.closed = True
    assert any("was closed in send" in d for d in kinds(raised(stopped.send))["closed"])


def test_a_future_stranded_on_a_closed_loop_reads_as_closed():
    import asyncio

    from pytest_poolchaos.worker.frames import closed_state

    loop = asyncio.new_event_loop()
    stranded, settled = loop.create_future(), loop.create_future()
    settled.set_result(5)
    assert closed_state(stranded) == ""  # pending on a live loop: it may still be set
    loop.close()
    assert closed_state(stranded) == "left pending on a closed event loop"
    assert closed_state(settled) == ""  # done before the loop closed: nothing was lost



def test_cancelled_futures_are_read_from_their_state():
    import asyncio
    import concurrent.futures

    from pytest_poolchaos.worker.frames import _cancelled

    pending, cancelled, done = (concurrent.futures.Future() for _ in range(3))
    cancelled.cancel()
    done.set_result(1)
    assert [_cancelled(f) for f in (pending, cancelled, done)] == [False, True, False]
    loop = asyncio.new_event_loop()
    try:
        task_future = loop.create_future()
        assert not _cancelled(task_future)
        task_future.cancel()
        assert _cancelled(task_future)
    finally:
        loop.close()

    class Future:  # a project's own class of that name is never asked
        _state = "CANCELLED"

    assert not _cancelled(Future())


def test_a_double_set_up_for_one_method_while_the_code_called_another():
    from unittest.mock import Mock

    from pytest_poolchaos.worker.frames import _set_up_elsewhere

    client = Mock(name="client")
    client.upload.return_value.status = 202
    assert _set_up_elsewhere(client) == ""  # nothing called yet
    assert client.post().status != 202
    assert _set_up_elsewhere(client) == (
        "was set up for upload(), which the code never called; the code called post(), "
        "which was not set up")
    matched = Mock(name="client")
    matched.upload.return_value.status = 202
    matched.close.return_value = None
    matched.upload()
    assert _set_up_elsewhere(matched) == ""  # close() unused, but every call was set up


def test_items_left_in_a_queue_are_counted_without_its_lock():
    import queue

    from pytest_poolchaos.worker.frames import _queued

    waiting = queue.Queue()
    assert _queued(waiting) == 0
    waiting.put("b")
    waiting.put("c")
    assert _queued(waiting) == 2
    assert _queued([1, 2]) == 0  # a list is not a queue of work
