"""How long the scope waits for what a test left running before calling it a leak.

A thread that waits, with no timeout, on a condition nobody has notified cannot end on its
own: once the shortest settle has passed it is reported without the rest of the linger. Any
thread that may still end (a timer, a sleeper, one already notified) keeps the whole wait.
Every wait here is bounded; the deadlines are far beyond what any of them needs, so a run
that waited for a deadline shows as a wrong answer, not as a slow test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from pytest_poolchaos import clock
from pytest_poolchaos.worker.scope.resources import _all_parked, _settled

FAR = 60.0  # a deadline no answer here may wait for


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of each test: every thread started here ends then."""
    event = threading.Event()
    yield event
    event.set()


def _start(target: Callable[..., object], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the thread never got where the test needs it"
        time.sleep(0.005)


def test_a_thread_parked_on_an_unset_event_is_reported_without_the_whole_wait(release):
    parked = _start(release.wait)
    _until(lambda: _all_parked([parked]))
    began = clock.monotonic()
    assert _settled([parked], began + FAR) == [parked]
    assert clock.monotonic() - began < FAR / 2  # it did not wait for the deadline


def test_a_queue_consumer_waiting_for_work_is_parked(release):
    import queue

    work: queue.Queue[object] = queue.Queue()
    consumer = _start(work.get)
    _until(lambda: _all_parked([consumer]))
    work.put(None)
    consumer.join(10)
    assert not consumer.is_alive()


def test_a_parked_thread_another_thread_will_wake_is_waited_for(release):
    wake = threading.Event()
    parked = _start(wake.wait)
    _until(lambda: _all_parked([parked]))
    # a timer waits with a timeout: it may end (and wake the other) on its own
    timer = threading.Timer(0.2, wake.set)
    timer.start()
    assert _settled([parked, timer], clock.monotonic() + FAR) == []


def test_a_notified_waiter_is_not_parked(release):
    condition = threading.Condition()
    woken: list[bool] = []

    def waiter() -> None:
        with condition:
            woken.append(condition.wait())

    thread = _start(waiter)
    _until(lambda: _all_parked([thread]))
    with condition:
        condition.notify()
        # it cannot run on while this thread holds the lock, yet nobody has to wake it again
        assert not _all_parked([thread])
    thread.join(10)
    assert woken == [True]


@pytest.mark.parametrize("blocked", ["sleep", "timed wait"])
def test_a_thread_that_may_end_on_its_own_keeps_the_whole_wait(release, blocked):
    target = (lambda: time.sleep(0.2)) if blocked == "sleep" else (lambda: release.wait(0.2))
    thread = _start(target)
    assert not _all_parked([thread])
    assert _settled([thread], clock.monotonic() + FAR) == []


def test_cleanup_does_not_wait_its_grace_for_parked_threads(release):
    from pytest_poolchaos.worker.scope.resources import Alive, Stopping

    parked = _start(release.wait)
    _until(lambda: _all_parked([parked]))
    stopping = Stopping([Alive("thread", "thread 'parked' is still running", "t", obj=parked)],
                        grace=FAR)
    began = clock.monotonic()
    stopping.begin()
    assert stopping.finish() == ["thread 'parked' is still running"]
    assert clock.monotonic() - began < FAR / 2


def test_cleanup_waits_for_a_thread_that_is_ending(release):
    from pytest_poolchaos.worker.scope.resources import Alive, Stopping

    sleeper = _start(lambda: time.sleep(0.2))
    stopping = Stopping([Alive("thread", "thread 'sleeper' is still running", "t",
                               obj=sleeper)], grace=FAR)
    stopping.begin()
    assert stopping.finish() == []
