from __future__ import annotations

import threading
import time
from unittest.mock import patch

import kvstore
import pytest
from kvstore import Follower, Store
from kvstore.store import ReplicationStalled, push_snapshot, top_keys
from kvstore.testing import FakeBackend, export_prefix


@pytest.fixture
def store():
    return Store()


def test_put_then_get(store):
    store.put("a", 1)
    assert store.get("a") == 1


def test_versions_increase(store):
    assert [store.put("k", i) for i in range(3)] == [1, 2, 3]


def _wait(predicate, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


# Luo et al. FSE 2014, "Async Wait": the test waits, without a bound of its own, for a version
# the writer never reaches; the per-test limit of the run ends it.
@pytest.mark.timeout(0.5)
def test_reader_sees_fifth_version(store):
    writer = threading.Thread(target=lambda: [store.put("cfg", i) for i in range(3)])
    writer.start()
    writer.join(1)
    assert store.wait_for_version(5)


# Eck et al. FSE 2019, asynchronous wait: a timed get on a change feed is shorter than the
# producer's delay.
def test_change_feed_delivers_import():
    store = Store()
    feed = store.subscribe()

    def importer() -> None:
        time.sleep(0.5)
        store.put("sku-1", {"price": 3})

    threading.Thread(target=importer, name="importer", daemon=True).start()
    assert feed.get(timeout=0.2) == ("sku-1", {"price": 3})


# UnplugAI/Unplug#144 and awslabs/mcp#4366: a latency percentile bound that holds only when no
# background maintenance shares the lock.
def test_get_latency_p95_during_compaction(store):
    follower = Follower(store)
    compactor = threading.Thread(target=follower.compact, args=(0.03, 8))
    compactor.start()
    latencies = []
    for _ in range(40):
        latencies.append(store.timed_get("user"))
        time.sleep(0.005)
    compactor.join(5)
    latencies.sort()
    assert latencies[int(len(latencies) * 0.95)] < 0.005


# Shaker (ICSME 2020): a replication-lag threshold that holds on an idle machine.
def test_follower_lag_stays_low(store, contended):
    follower = Follower(store, delay=0.15 if contended else 0.0).start()
    try:
        for index in range(3):
            store.put(f"k{index}", index)
        assert _wait(lambda: len(follower.replica) == 3)
        assert max(follower.lags) < 0.05
    finally:
        follower.stop()


# "Queue never grows past N" asserted while four producers burst into one consumer.
def test_change_feed_stays_shallow(store):
    follower = Follower(store, delay=0.005).start()
    start = threading.Barrier(4, timeout=2)

    def producer(index: int) -> None:
        start.wait()
        for n in range(25):
            store.put(f"p{index}-{n}", n)

    threads = [threading.Thread(target=producer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    follower.stop()
    assert store.max_feed_depth <= 10


# microsoft/omi#310 and apache/paimon#8942 ("prevent lost updates"): read-modify-write of a
# counter from two threads.
def test_concurrent_increments_are_all_counted(store):
    both_read = threading.Barrier(2, timeout=2)
    store.on_write = lambda key, current: both_read.wait()
    threads = [threading.Thread(target=store.incr, args=("hits",)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(3)
    assert store.get("hits") == 2


# 1jehuang/jcode#875 and futuregene/future-os#252 (lock-order inversion): the follower's
# reconcile and the leader's push take the same two locks in opposite orders.
def test_reconcile_and_push_run_together(store):
    store.put("a", 1)
    follower = Follower(store)
    both_hold_one = threading.Barrier(2, timeout=2)
    errors: list[BaseException] = []

    def run(fn) -> None:
        try:
            fn()
        except ReplicationStalled as error:
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=(lambda: follower.reconcile(0.5, both_hold_one.wait),)),
        threading.Thread(target=run,
                         args=(lambda: push_snapshot(store, follower, 0.5, both_hold_one.wait),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(3)
    if errors:
        raise errors[0]
    assert follower.replica == {"a": 1}


# Check-then-act (Luo et al. FSE 2014, Concurrency; lsds/sgx-lkl#359): two callers both find the
# key absent and both create a value; one of them is silently replaced.
def test_get_or_create_returns_one_session(store):
    start = threading.Barrier(2, timeout=2)
    results: list[object] = []

    def factory() -> object:
        time.sleep(0.1)
        return object()

    def caller() -> None:
        start.wait()
        results.append(store.get_or_create("session", factory))

    threads = [threading.Thread(target=caller) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(3)
    assert results[0] is results[1]


# A fake backend that leaves one operation unimplemented.
def test_export_prefix_reads_all_rows():
    backend = FakeBackend()
    backend.write("user:1", "ada")
    backend.write("user:2", "grace")
    assert export_prefix(backend, "user:") == {"user:1": "ada", "user:2": "grace"}


def test_top_keys_are_the_busiest():
    assert top_keys({"a": 5, "b": 50, "c": 20}, 2) == ["b", "c"]


# A follower thread started for a test and never stopped.
def test_follower_applies_writes(store):
    follower = Follower(store).start()
    store.put("x", 1)
    assert _wait(lambda: follower.replica.get("x") == 1)


# pytest-dev/pytest-mock#84 family: a class attribute set to speed up an expiry test and never
# restored.
def test_default_ttl_expires_quickly():
    Store.default_ttl = 0.01
    store = Store()
    store.put("tmp", 1)
    time.sleep(0.02)
    with pytest.raises(KeyError):
        store.get("tmp")


def test_values_without_ttl_persist(store):
    store.put("profile", {"name": "ada"})
    time.sleep(0.05)
    assert store.get("profile") == {"name": "ada"}


# ansible/awx#1094 and certbot/certbot#7763 ("more robustly stop patches"): a patcher started
# with .start() and no stop().
def test_clock_can_be_frozen():
    patch.object(kvstore.clock, "now", return_value=100.0).start()
    assert kvstore.clock.now() == 100.0


def test_entries_expire_after_ttl(store):
    store.put("otp", "123456", ttl=0.05)
    time.sleep(0.1)
    with pytest.raises(KeyError):
        store.get("otp")
