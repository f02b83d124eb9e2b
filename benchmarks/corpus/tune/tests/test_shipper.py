from __future__ import annotations

import asyncio
import concurrent.futures as cf
import threading
import time
from collections.abc import Sequence
from unittest.mock import Mock

from shipper import (
    Forwarder,
    Record,
    Shipper,
    Spool,
    chunks,
    post_batches,
    render,
    ship_all,
    timed_uploads,
)


def records(n: int, level: str = "info") -> list[Record]:
    return [{"level": level, "msg": f"line {i}"} for i in range(n)]


def accept(batch: Sequence[Record]) -> None:
    pass


def test_even_split_into_batches():
    assert [len(batch) for batch in chunks(records(4), 2)] == [2, 2]


def test_one_batch_is_acknowledged():
    shipper = Shipper(accept)
    try:
        shipper.submit("b1", records(3)).result(timeout=1)
    finally:
        shipper.join()
    assert shipper.sent == ["b1"]


# An ordinary bug (sequential code): the range stops one batch early, so a short last batch is
# dropped.
def test_short_last_batch_is_kept():
    assert [len(batch) for batch in chunks(records(5), 2)] == [2, 2, 1]


# Python docs, Executor.shutdown(wait=False) (returns at once, running work carries on) and Luo
# et al. FSE 2014, Async Wait: the shipper tallies its report right after telling the pool to
# stop, while the second batch is still being uploaded.
def test_close_reports_every_batch():
    release = threading.Event()

    def upload(batch: Sequence[Record]) -> None:
        if batch[0]["msg"] == "second":
            release.wait(1)

    shipper = Shipper(upload)
    try:
        shipper.submit("b1", [{"level": "info", "msg": "first"}]).result(timeout=1)
        shipper.submit("b2", [{"level": "info", "msg": "second"}])
        report = shipper.close()
    finally:
        release.set()
        shipper.join()
    assert report.sent == 2


# Python docs, Future.add_done_callback (a callback added after completion is called at once),
# which a hand-rolled listener list does not do: the batch is acknowledged before the test
# registers its listener, and the listener never hears of it.
def test_listener_hears_of_acknowledged_batch():
    heard: list[str] = []
    shipper = Shipper(accept)
    try:
        shipper.submit("b1", records(2)).result(timeout=1)
        shipper.on_done(heard.append)
    finally:
        shipper.join()
    assert heard == ["b1"]


# Python docs, threading (an exception that escapes a thread's work ends that thread) and Gruber
# et al. ICST 2021 (concurrency): the spool's consumer stops at a malformed record, and the
# records queued after it are never uploaded.
def test_spool_skips_a_malformed_record():
    uploaded: list[str] = []
    spool = Spool(uploaded.append).start()
    try:
        spool.put({"level": "info", "msg": "a"})
        spool.put({"level": "warn"})
        spool.put({"level": "info", "msg": "b"})
        spool.put({"level": "info", "msg": "c"})
    finally:
        spool.close()
    assert uploaded == ["info: a", "info: b", "info: c"]


# Python docs, io readline (an empty string at end of file) and subprocess (a child's pipes
# outlive it): the forwarder child acknowledges one line and exits, and the next
# acknowledgement is read from a closed stream.
def test_forwarder_acknowledges_every_line():
    forwarder = Forwarder()
    try:
        lines = ["info: a", "info: bb", "info: ccc"]
        for line in lines:
            forwarder.send(line)
        acks = [forwarder.ack() for _ in lines]
    finally:
        forwarder.close()
    assert acks == [7, 8, 9]


# Luo et al. FSE 2014, Async Wait (a bounded wait whose outcome is not checked): wait_flushed()
# gives up after 0.1 s and says so in its return value, which the test ignores.
def test_flush_then_everything_is_sent():
    release = threading.Event()

    def upload(batch: Sequence[Record]) -> None:
        if batch[0]["level"] == "debug":
            release.wait(1)

    shipper = Shipper(upload)
    try:
        shipper.submit("b1", records(2))
        shipper.submit("b2", records(2, level="debug"))
        shipper.wait_flushed(0.1)
        assert sorted(shipper.sent) == ["b1", "b2"]
    finally:
        release.set()
        shipper.join()


# Eck et al. FSE 2019 (test case timeout) and the retry-budget shape of many flaky-test fixes: a
# collector that refuses its first five connections while it warms up, a shipper that tries
# three times.
def test_upload_survives_a_cold_collector():
    refusals = [5]

    def upload(batch: Sequence[Record]) -> None:
        if refusals[0]:
            refusals[0] -= 1
            raise ConnectionRefusedError("collector warming up")

    shipper = Shipper(upload, attempts=3)
    try:
        assert shipper.submit("b1", records(2)).result(timeout=1) == 2
    finally:
        shipper.join()


# Python docs, asyncio.wait(timeout=) ("does not raise TimeoutError"; unfinished tasks come back
# in the second set), which ship_all drops: one upload takes 0.5 s against a 0.1 s bound.
def test_async_uploads_all_return_receipts():
    async def upload(name: str, delay: float) -> str:
        await asyncio.sleep(delay)
        return name

    async def main() -> list[str]:
        return await ship_all([upload("a", 0), upload("b", 0.01), upload("c", 0.5)], within=0.1)

    assert asyncio.run(main()) == ["a", "b", "c"]


# Luo et al. FSE 2014, Async Wait (sleep chosen for the usual speed of the worker): the upload
# is held, as a slow collector would hold it, for longer than the test's 50 ms nap.
def test_spool_uploads_in_background():
    gate = threading.Event()
    uploaded: list[str] = []

    def upload(line: str) -> None:
        gate.wait(1)
        uploaded.append(line)

    spool = Spool(upload).start()
    try:
        spool.put({"level": "info", "msg": "a"})
        spool.put({"level": "info", "msg": "b"})
        time.sleep(0.05)
        assert uploaded == ["info: a", "info: b"]
    finally:
        gate.set()
        spool.close()


# Gruber et al. ICST 2021 (concurrency: assumptions about scheduling): three pool workers finish
# in any order; the first batch is held until the other two are acknowledged.
def test_batches_are_acknowledged_in_submission_order():
    others = threading.Event()
    count = [0]
    lock = threading.Lock()

    def upload(batch: Sequence[Record]) -> None:
        if batch[0]["msg"] == "b0":
            others.wait(1)
            return
        with lock:
            count[0] += 1
            if count[0] == 2:
                others.set()

    shipper = Shipper(upload, workers=3)
    try:
        for name in ("b0", "b1", "b2"):
            shipper.submit(name, [{"level": "info", "msg": name}])
    finally:
        shipper.join()
    assert shipper.sent == ["b0", "b1", "b2"]


# Eck et al. FSE 2019 (too restrictive range) and Silva et al. ICSME 2020 (Shaker): a 99th
# percentile of 5 ms against a simulated collector round trip of 20 ms; the uploads are fine.
def test_upload_latency_p99():
    def upload(batch: Sequence[Record]) -> None:
        time.sleep(0.02)  # the simulated round trip

    timing = timed_uploads(upload, [records(2) for _ in range(8)], workers=4)
    assert timing.percentile(99) < 0.005


# Lu et al. ASPLOS 2008 (atomicity violation, lost update): two pool workers read the byte
# total, both add their batch, and the second write overwrites the first.
def test_byte_total_counts_every_batch():
    both_read = threading.Barrier(2, timeout=2)

    def between(where: str) -> None:
        if where == "bytes":
            both_read.wait()

    shipper = Shipper(accept, workers=2, between=between)
    batch = records(3)
    try:
        shipper.submit("b1", batch)
        shipper.submit("b2", batch)
    finally:
        shipper.join()
    assert shipper.bytes_sent == 2 * sum(len(render(record)) for record in batch)


# Lu et al. ASPLOS 2008 (multi-variable atomicity violation): the worker has counted the records
# of a batch but not yet the batch itself when the status thread reads the pair.
def test_stats_snapshot_is_consistent():
    halfway, resume = threading.Event(), threading.Event()

    def between(where: str) -> None:
        if where == "stats":
            halfway.set()
            resume.wait(1)

    shipper = Shipper(accept, between=between)
    try:
        shipper.submit("b1", records(10))
        halfway.wait(1)
        batches, counted = shipper.snapshot()
    finally:
        resume.set()
        shipper.join()
    assert counted == 10 * batches


# Python docs (a dict changed in size during iteration raises RuntimeError) and Luo et al. FSE
# 2014, Concurrency: the status page walks the in-flight batches while a pool worker registers
# a new one.
def test_status_page_lists_inflight_batches():
    walking, second_started, resume, release = (threading.Event() for _ in range(4))

    def upload(batch: Sequence[Record]) -> None:
        if batch[0]["msg"] == "second":
            second_started.set()
        release.wait(1)

    def fmt(name: str, count: int) -> str:
        walking.set()
        resume.wait(1)
        return f"{name}={count}"

    shipper = Shipper(upload, workers=2)
    try:
        with cf.ThreadPoolExecutor(1, thread_name_prefix="status") as status_pool:
            shipper.submit("b1", [{"level": "info", "msg": "first"}])
            status = status_pool.submit(shipper.pending_summary, fmt)
            walking.wait(1)
            shipper.submit("b2", [{"level": "info", "msg": "second"}])
            second_started.wait(1)
            resume.set()
            lines = status.result(timeout=1)
    finally:
        resume.set()
        release.set()
        shipper.join()
    assert lines[0] == "b1=1"


# python/cpython docs, unittest.mock (an attribute of a Mock is another Mock; autospec
# rejects methods the real object lacks): the double configures upload(), the code posts,
# and the Mock's status is never 202.
def test_post_batches_counts_accepted():
    client = Mock(name="client")
    client.upload.return_value.status = 202
    with cf.ThreadPoolExecutor(2, thread_name_prefix="post") as pool:
        accepted = post_batches(client, [records(1), records(2)], pool)
    assert accepted == 2
