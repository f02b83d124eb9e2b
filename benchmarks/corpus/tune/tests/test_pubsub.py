from __future__ import annotations

import asyncio
import logging
import socket
import threading
from unittest.mock import AsyncMock

import broker
import pytest
from broker import (
    AsyncBroker,
    Bridge,
    Broker,
    BrokerClient,
    Message,
    Receipt,
    RemoteSubscriber,
    Subscriber,
    default_broker,
    topic_matches,
    write_frame,
)


@pytest.fixture
def hub():
    bus = Broker()
    yield bus
    bus.close()


def test_subscriber_gets_published_message(hub):
    sub = hub.subscribe(Subscriber("orders.*"))
    hub.publish("orders.eu", "o-1")
    assert sub.next(timeout=1) == ("orders.eu", "o-1")


def test_exact_pattern_matches_its_topic():
    assert topic_matches("orders.eu", "orders.eu")


# Lu et al. ASPLOS 2008 (atomicity violation, lost update) and Luo et al. FSE 2014, Concurrency:
# the dispatcher thread reads the queued count, delivers, and writes back its stale value over
# the publisher's increment.
def test_queued_count_returns_to_zero():
    reading, second_published = threading.Event(), threading.Event()
    first = [True]

    def on_dispatch(payload: str) -> None:
        if first[0]:
            first[0] = False
            reading.set()
            second_published.wait(1)

    bus = Broker(on_dispatch=on_dispatch)
    try:
        sub = bus.subscribe(Subscriber("orders.*"))
        bus.publish("orders.eu", "o-1")
        reading.wait(1)
        bus.publish("orders.eu", "o-2")
        second_published.set()
        assert [sub.next(timeout=1)[1], sub.next(timeout=1)[1]] == ["o-1", "o-2"]
        bus.close()  # the dispatcher has finished its bookkeeping
        assert bus.stats["queued"] == 0
    finally:
        bus.close()


# Double-checked locking done without the lock (Schmidt & Harrison, "Double-Checked Locking",
# PLoP 1996; Lu et al. ASPLOS 2008): two threads both find no default broker and each builds one.
def test_default_broker_is_shared(monkeypatch):
    both_checked = threading.Barrier(2, timeout=2)
    monkeypatch.setattr(broker, "_before_create", both_checked.wait)
    got: list[Broker] = []
    threads = [threading.Thread(target=lambda: got.append(default_broker()), name=f"boot-{n}")
               for n in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(2)
        assert got[0] is got[1]
    finally:
        for bus in {id(bus): bus for bus in got}.values():
            bus.close()
        broker._default = None


# python/cpython asyncio docs ("asyncio is not thread-safe, but state can still change at every
# await") and Gruber et al. ICST 2021 (concurrency): two gathered tasks both see the topic
# missing, both await the announcement, and the second replaces the first's subscriber list.
def test_concurrent_subscribers_are_both_kept():
    async def main() -> list[str]:
        bus = AsyncBroker()
        await asyncio.gather(bus.subscribe("prices", "alice"), bus.subscribe("prices", "bob"))
        return sorted(bus.topics["prices"])

    assert asyncio.run(main()) == ["alice", "bob"]


# Luo et al. FSE 2014, Network, and the recv() contract (an orderly shutdown by the peer reads
# as b""): the publisher closes its sending side after one frame; the reader expects two.
def test_remote_subscriber_reads_two_frames():
    near, far = socket.socketpair()
    try:
        write_frame(far, b"tick-1")
        far.shutdown(socket.SHUT_WR)  # the publisher's idle close
        assert RemoteSubscriber(near).receive(2) == [b"tick-1", b"tick-2"]
    finally:
        near.close()
        far.close()


# python/cpython asyncio docs (Future.result() raises InvalidStateError if the future is not
# done) and the "Event loop is closed" issue family: the client closes its loop before the loop
# ever ran the callback that acknowledges the publish.
def test_publish_receipt_counts_bytes():
    client = BrokerClient()
    receipt = client.publish("orders.eu", "hello")
    client.close()
    assert receipt.result() == 5


# Head-of-line blocking (Luo et al. FSE 2014, Async Wait): a synchronous handler on another topic
# holds the only dispatcher thread, and a queue.get with a bound gives up first.
def test_orders_arrive_while_audit_is_slow(hub):
    release, in_audit = threading.Event(), threading.Event()

    def audit(topic: str, payload: str) -> None:
        in_audit.set()
        release.wait(2)

    hub.subscribe(Subscriber("audit.*", handler=audit))
    orders = hub.subscribe(Subscriber("orders.*"))
    try:
        hub.publish("audit.login", "a-1")
        in_audit.wait(1)
        hub.publish("orders.eu", "o-1")
        assert orders.next(timeout=0.2) == ("orders.eu", "o-1")
    finally:
        release.set()


# python/asyncio#75 family (asyncio.wait_for deadline): the publisher task sends after 0.5 s and
# the receiver waits 0.1 s.
def test_receive_gets_the_delayed_message():
    async def main() -> str:
        bus = AsyncBroker()
        publisher = asyncio.create_task(bus.publish("prices", "p-1", delay=0.5))
        try:
            return await bus.receive("prices", within=0.1)
        finally:
            publisher.cancel()

    assert asyncio.run(main()) == "p-1"


# Gruber et al. ICST 2021 / Eck et al. FSE 2019 (order of concurrent events assumed): each
# subscriber keeps its own order, but two subscriber threads do not take turns.
def test_subscribers_take_turns(hub):
    seen: list[str] = []
    lock = threading.Lock()
    a_done = threading.Event()

    def handler_a(topic: str, payload: str) -> None:
        with lock:
            seen.append(f"a:{payload}")
        if payload == "m3":
            a_done.set()

    def handler_b(topic: str, payload: str) -> None:
        a_done.wait(1)  # b's thread is simply scheduled later
        with lock:
            seen.append(f"b:{payload}")

    sub_a = hub.subscribe(Subscriber("t", handler_a, threaded=True, name="a"))
    sub_b = hub.subscribe(Subscriber("t", handler_b, threaded=True, name="b"))
    for payload in ("m1", "m2", "m3"):
        hub.publish("t", payload)
    hub.close()
    sub_a.close()
    sub_b.close()
    assert seen == ["a:m1", "b:m1", "a:m2", "b:m2", "a:m3", "b:m3"]


# Eck et al. FSE 2019 (test assumes thread start order is execution order): two publishers,
# started one after the other, do not publish in that order.
def test_publishers_arrive_in_start_order(hub):
    sub = hub.subscribe(Subscriber("t"))
    second_done = threading.Event()

    def first() -> None:
        second_done.wait(1)
        hub.publish("t", "from-1")

    def second() -> None:
        hub.publish("t", "from-2")
        second_done.set()

    threads = [threading.Thread(target=first, name="publisher-1"),
               threading.Thread(target=second, name="publisher-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2)
    assert [sub.next(timeout=1)[1] for _ in range(2)] == ["from-1", "from-2"]


# python/cpython docs, unittest.mock.AsyncMock (every method of an unspecced AsyncMock is async):
# the real flush() is synchronous, so the bridge gets a coroutine instead of the receipt.
def test_bridge_reports_forwarded_count():
    transport = AsyncMock()
    transport.flush.return_value = Receipt(3)
    assert Bridge(transport).forward(["a", "b", "c"]) == 3


# Gruber et al. ICST 2021 (FlaPy) polluter: a named logger switched off to keep a noisy
# benchmark quiet and never switched back on.
def test_unrouted_burst_is_quick(hub):
    logging.getLogger("broker").disabled = True
    for n in range(200):
        hub.publish(f"nowhere.{n}", "x")
    assert hub.stats["queued"] == 0


def test_unrouted_message_is_logged(hub, caplog):
    caplog.set_level(logging.INFO, logger="broker")
    hub.publish("nowhere.at.all", "x")
    assert "no subscriber for nowhere.at.all" in caplog.text


# An ordinary bug (sequential code): zip() stops at the shorter list, so a one-segment wildcard
# also matches deeper topics.
def test_wildcard_matches_one_segment_only():
    assert not topic_matches("orders.*", "orders.eu.paris")


# Luo et al. FSE 2014, Time: the expiry is computed from a truncated clock reading, so a message
# published late in a second lives up to a second less than its TTL.
def test_message_lives_for_its_ttl(contended):
    published = 1000.9 if contended else 1000.2
    message = Message.make("t", "x", ttl=2, clock=lambda: published)
    assert message.alive(published + 1.5)
