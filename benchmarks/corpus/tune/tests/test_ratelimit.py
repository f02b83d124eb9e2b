from __future__ import annotations

import threading
import time

import pytest
from ratelimit import (
    Refiller,
    SlidingWindow,
    TokenBucket,
    backoff,
    pacing,
    parse_rate,
    throttled_call,
    wait_for_token,
)
from ratelimit.testing import FakeClock


def test_bucket_grants_its_burst():
    bucket = TokenBucket(rate=1, burst=3)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]


def test_parse_rate_per_second():
    assert parse_rate("100/s") == 100.0


# Luo et al. FSE 2014 "Async Wait": a polling loop with a monotonic deadline gives up before
# the condition it waits for can become true.
def test_next_token_arrives_soon():
    bucket = TokenBucket(rate=1, burst=1)
    assert bucket.try_acquire()
    assert wait_for_token(bucket, deadline=0.3)


# dandi/dandi-cli#77 ("assert len(calls) == ncalls + 1": exact call counts that depend on
# timing): an exact number of grants from threads racing a refilling bucket.
def test_throughput_matches_configured_rate():
    bucket = TokenBucket(rate=100, burst=10)
    stop = time.monotonic() + 0.3

    def hammer() -> None:
        while time.monotonic() < stop:
            bucket.try_acquire()

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2)
    assert bucket.granted == 30


# python/cpython bpo-32692 (test_threading timing): a periodic background thread is expected to
# tick an exact number of times in a wall-clock window.
def test_refiller_ticks_every_period():
    refiller = Refiller(period=0.01, work=lambda: time.sleep(0.005))
    refiller.start()
    time.sleep(0.2)
    refiller.stop()
    assert refiller.ticks == 20


# Atomicity violation between check and act (Luo et al. FSE 2014 "Concurrency"; the clone-test
# race in lsds/sgx-lkl#359): both threads see one token left and both take it.
def test_last_token_is_granted_once(contended):
    bucket = TokenBucket(rate=0.001, burst=1)
    if contended:
        both_checked = threading.Barrier(2, timeout=2)
        bucket.before_take = both_checked.wait
    results = []

    def take() -> None:
        results.append(bucket.try_acquire())

    first, second = threading.Thread(target=take), threading.Thread(target=take)
    first.start()
    if not contended:
        first.join(2)
    second.start()
    first.join(2)
    second.join(2)
    assert results.count(True) == 1


# quodlibet/quodlibet#2603 and pymedusa/Medusa#6822: a Thread object is started a second time.
def test_refiller_picks_up_new_period():
    refiller = Refiller(period=0.05, work=lambda: None)
    refiller.start()
    refiller.restart(period=0.01)
    refiller.stop()
    assert refiller.period == 0.01


def test_window_counts_recent_events():
    window = SlidingWindow(size=10)
    for stamp in (1.0, 2.0, 3.0, 4.0):
        window.add(stamp)
    assert window.count_in_window(now=5.0) == 4


def test_backoff_doubles_from_base():
    assert backoff(1) == pytest.approx(0.1)
    assert backoff(3) == pytest.approx(0.4)


def test_parse_rate_per_minute():
    assert parse_rate("120/min") == pytest.approx(2.0)


# A hand-written fake that leaves part of the real interface unimplemented.
def test_throttled_call_waits_for_a_token():
    clock = FakeClock(start=50.0)
    bucket = TokenBucket(rate=10, burst=1)
    bucket.clock = clock
    bucket.try_acquire()
    assert throttled_call(bucket, lambda: "sent", sleep=clock.sleep) == "sent"


class StubQuota:
    """Stands in for the quota service; nobody configured a rate for it."""

    def current_rate(self) -> float:
        return 0.0


# A zero from a stub's default flows into arithmetic the real service never sees.
def test_pacing_spreads_calls_over_window():
    assert pacing(StubQuota()) > 0


# pytest-dev/pytest-mock#84 "Mocks leaking into other test functions": here a class attribute
# replaced for a frozen-time test and never put back.
def test_bucket_is_empty_when_time_is_frozen():
    TokenBucket.clock = FakeClock(start=1000.0)
    bucket = TokenBucket(rate=50, burst=1)
    assert bucket.try_acquire()
    assert not bucket.try_acquire()


def test_bucket_refills_over_time():
    bucket = TokenBucket(rate=50, burst=1)
    assert bucket.try_acquire()
    time.sleep(0.05)
    assert bucket.try_acquire()
