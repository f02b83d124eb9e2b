"""Lost wake-ups: a notification sent before the waiter waits is gone for good.

A short sleep before ``notify`` keeps the waiter ahead on an idle machine; under load the
waiter starts late, the notification is lost and the wait times out.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor


def test_flaky_pool_waiter_misses_notify():
    """Source: seo-rii/doppio#53, "a worker that has not yet entered obj.wait() can miss the
    later notifyAll()" (reproduced under eight-process CPU pressure). The waiter runs on a
    pool thread; the notification follows 20 ms after submitting it."""
    condition = threading.Condition()

    def waiter() -> bool:
        with condition:
            return condition.wait(timeout=0.3)  # no predicate: a missed notify is lost

    with ThreadPoolExecutor(max_workers=1) as pool:
        woken = pool.submit(waiter)
        time.sleep(0.02)
        with condition:
            condition.notify_all()
        assert woken.result(timeout=30), "the waiter never saw the notification"


def test_flaky_handshake_notify_too_early():
    """Source: getsentry/snuba#1502, "these tests get stuck occasionally" (Condition.wait
    without a predicate), and boostorg/thread#330, "tests assume code is executed in a
    certain time; when the host is overloaded the test will fail". Notify 3 ms after start."""
    condition = threading.Condition()
    result: list[bool] = []

    def waiter() -> None:
        with condition:
            result.append(condition.wait(timeout=0.3))

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.003)
    with condition:
        condition.notify_all()
    thread.join(timeout=30)
    assert result == [True], "the waiter never saw the notification"


def test_stable_waiter_with_a_predicate():
    condition = threading.Condition()
    state = {"ready": False}

    def waiter() -> bool:
        with condition:
            return condition.wait_for(lambda: state["ready"], timeout=30)

    with ThreadPoolExecutor(max_workers=1) as pool:
        woken = pool.submit(waiter)
        with condition:
            state["ready"] = True
            condition.notify_all()
        assert woken.result(timeout=30)


def test_stable_event_handshake():
    ready = threading.Event()
    thread = threading.Thread(target=ready.set)
    thread.start()
    assert ready.wait(30)
    thread.join(timeout=30)
