from __future__ import annotations

import concurrent.futures as cf
import sys
import threading
import types
from unittest.mock import create_autospec

import pytest
from notify import (
    Batcher,
    Courier,
    Notifier,
    Outbox,
    SmtpClient,
    Upload,
    closed_port,
    deliver,
    fan_out,
    render_message,
    subject_line,
)
from notify.relay import Relay, RelayClient


def test_take_returns_queued_item():
    box = Outbox()
    box.put("m0")
    assert box.take(timeout=0.5) == "m0"


# Lost wake-up (Lu et al. ASPLOS 2008, order violation; the threading.Condition docs' "check the
# predicate under the lock"): the consumer checks for items outside the lock, the producer
# notifies before the consumer waits, and the wait sleeps through it.
def test_take_sees_item_put_while_checking():
    box = Outbox()
    producer = threading.Thread(target=box.put, args=("m1",), name="outbox-producer")

    def put_now() -> None:
        producer.start()
        producer.join(2)

    assert box.take(timeout=0.3, before_wait=put_now) == "m1"


# getsentry/snuba#1502 family, with Condition.wait_for: the acknowledgement bound is shorter
# than the peer's write; wait_for returns False.
def test_send_is_acknowledged():
    courier = Courier(ack_delay=0.6)
    try:
        assert courier.send(1, ack_timeout=0.2)
    finally:
        courier.close()


# Luo et al. FSE 2014, Concurrency (atomicity violation on a released flag): the upload and its
# watchdog both pass the "not yet released" check, and the BoundedSemaphore is released twice.
def test_slow_upload_frees_its_slot_once():
    slots = threading.BoundedSemaphore(2)
    both_checked = threading.Barrier(2, timeout=2)
    expired, overdue = threading.Event(), threading.Event()

    def before_release(who: str) -> None:
        if who == "watchdog":
            overdue.set()
        both_checked.wait()
        if who == "upload":
            expired.wait(2)

    upload = Upload(slots, deadline=0.05, before_release=before_release, on_expired=expired.set)
    overdue.wait(2)  # the transfer itself outlasts the deadline
    upload.finish()
    upload.watchdog.join(2)
    assert slots.acquire(timeout=0.1)


# Eck et al. FSE 2019 (too restrictive assertion) and Kafka's linger.ms trade-off: the batcher
# holds the first message of a batch for its linger time by design.
def test_batched_messages_arrive_quickly():
    batcher = Batcher(linger=0.1)
    for index in range(5):
        batcher.send(f"m{index}")
    batcher.close()
    assert max(batcher.latencies) < 0.05


# Luo et al. FSE 2014, Async Wait: an unbounded join on a sender that is still backing off;
# the per-test limit (signal method, marker) fires first.
@pytest.mark.timeout(0.5)
def test_webhook_is_flushed():
    notifier = Notifier(closed_port(), backoff=(0.3, 0.6))
    notifier.post()
    assert notifier.flush()


# python/cpython docs, unittest.mock "Autospeccing": attributes set in __init__ do not exist on
# an autospecced instance.
def test_deliver_uses_the_clients_retry_budget():
    client = create_autospec(SmtpClient, instance=True)
    client.send.return_value = True
    assert deliver(client, "ops@example.org", "disk full") == 1


# Luo et al. FSE 2014 (I/O, encodings): a byte limit cuts a multi-byte character in half.
def test_subject_is_cut_to_gateway_limit():
    assert subject_line("Réunion à 10h", max_bytes=10) == "Réunion "


# Lam et al. ICSE 2020 / Shi et al. FSE 2019 (iFixFlakies) polluters: a test that stubs a module
# by writing sys.modules directly leaves the stub for every later import.
def test_alert_without_template_engine():
    sys.modules["notify.templates"] = types.SimpleNamespace(render=lambda name, **fields: "-")
    assert render_message("alert", host="db1", text="disk full") == "-"


def test_alert_names_the_host():
    assert render_message("alert", host="db1", text="disk full") == "[db1] disk full"


def test_failed_delivery_is_logged(caplog):
    notifier = Notifier(closed_port(), backoff=())
    notifier.post()
    assert not notifier.flush()
    assert "delivery to 127.0.0.1" in caplog.text


def test_relay_answers_ping():
    relay = Relay().start()
    client = RelayClient(relay.address)
    try:
        assert client.ping() == b"PONG\n"
    finally:
        client.close()
        relay.stop()


# Luo et al. FSE 2014, Network, and the HTTP/1.0 "Connection: close" habit behind stale
# keep-alive reuse: the server half-closes after one reply and the client reuses the
# connection, reading end of file.
def test_relay_answers_every_ping_on_one_connection():
    relay = Relay(one_shot=True).start()
    client = RelayClient(relay.address)
    try:
        assert [client.ping(), client.ping()] == [b"PONG\n", b"PONG\n"]
    finally:
        client.close()
        relay.stop()


# concurrent.futures docs (an exception raised in a submitted call is stored on its Future and
# never shown unless result() is called): a template lookup bug, hidden by fire-and-forget.
def test_fan_out_renders_every_recipient():
    outbox: dict[str, str] = {}
    templates = {"example.org": "Hi {name}", "example.net": "Hello {name}"}
    with cf.ThreadPoolExecutor(2, thread_name_prefix="fan-out") as executor:
        fan_out(executor, ["a@example.org", "b@example.com", "c@example.net"], outbox, templates)
    assert sorted(outbox) == ["a@example.org", "b@example.com", "c@example.net"]
