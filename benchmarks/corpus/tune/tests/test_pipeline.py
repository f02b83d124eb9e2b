from __future__ import annotations

import asyncio
from unittest.mock import Mock

from pipeline import (
    Enricher,
    Inbox,
    LineClient,
    MemoryStore,
    RunningTotals,
    Shipper,
    Sink,
    Stage,
    UpperServer,
    fetch_all,
    run_stage,
)


def test_single_add_is_persisted():
    store = MemoryStore()
    totals = RunningTotals(store)
    assert asyncio.run(totals.add("eu", 4)) == 4
    assert store.saved == {"eu": 4}


# Luo et al. FSE 2014, Concurrency (atomicity violation), asyncio flavour: a read-modify-write
# split by an await; two tasks read the same total before either writes it back.
def test_concurrent_adds_to_one_key_are_all_counted():
    totals = RunningTotals(MemoryStore())

    async def main() -> None:
        await asyncio.gather(totals.add("eu", 2), totals.add("eu", 3))

    asyncio.run(main())
    assert totals.totals["eu"] == 5


async def _with_server(body):
    server = UpperServer()
    client = await LineClient().connect(*await server.start())
    try:
        return await body(client)
    finally:
        await client.close()
        await server.stop()


def test_lookup_round_trip():
    async def body(client: LineClient) -> bytes:
        return await client.request(b"np\n")

    assert asyncio.run(_with_server(body)) == b"NP\n"


# redis/redis-py#2540 and python/asyncio#475: two coroutines read one StreamReader at once
# ("readuntil() called while another coroutine is already waiting for incoming data"); the
# client shares one connection between concurrent requests without a lock.
def test_two_lookups_share_one_connection():
    async def body(client: LineClient) -> list[bytes]:
        return list(await asyncio.gather(client.request(b"np\n"), client.request(b"in\n")))

    assert asyncio.run(_with_server(body)) == [b"NP\n", b"IN\n"]


#: The service keeps one inbox for the life of the process.
INBOX = Inbox()


async def _one_batch(item: str) -> list[str]:
    waiter = asyncio.create_task(INBOX.next_batch(1))
    await asyncio.sleep(0)
    await INBOX.put(item)
    return await waiter


# lastmile-ai/mcp-agent#163 and pytest-dev/pytest-asyncio#38: an asyncio object created once
# and used from a second event loop ("<Queue ...> is bound to a different event loop").
def test_inbox_serves_a_second_run():
    assert asyncio.run(_one_batch("first")) == ["first"]
    assert asyncio.run(_one_batch("second")) == ["second"]


# Gruber et al. 2021 (FlaPy) asyncio cases: a coroutine called from synchronous code and never
# awaited, so the flush it stands for never runs.
def test_sink_delivers_on_close():
    sink = Sink()

    async def main() -> None:
        sink.write(b"r1")
        sink.write(b"r2")
        sink.close()
        await asyncio.sleep(0.01)

    asyncio.run(main())
    assert sink.delivered == [b"r1", b"r2"]


# A background task cancelled by stop() while records are still queued; waiting for it
# afterwards raises CancelledError (python/cpython asyncio docs on Task.cancel()).
def test_shipper_drains_before_stopping():
    shipper = Shipper()

    async def main() -> list[bytes]:
        shipper.start()
        for record in (b"a", b"b", b"c"):
            shipper.queue.put_nowait(record)
        await shipper.stop()
        await shipper.wait_stopped()
        return shipper.shipped

    assert asyncio.run(main()) == [b"a", b"b", b"c"]


# dbt-labs/dbt-core#5602 and pyrogram/pyrogram#1305: a consumer that dies on one item never
# calls task_done(), so queue.join() waits until the caller's bound runs out.
def test_stage_handles_every_record():
    handled: list[bytes] = []

    async def handler(record: bytes) -> None:
        handled.append(record.decode("ascii"))

    asyncio.run(run_stage([b"alpha", b"b\xe9ta", b"gamma"], handler, timeout=0.4))
    assert sorted(handled) == ["alpha", "b\xe9ta", "gamma"]


# Luo et al. FSE 2014, Async Wait: an overall deadline that assumes every fetch runs at once,
# while the client caps concurrency at two.
def test_fetch_all_within_deadline():
    async def fetch(key: str) -> str:
        await asyncio.sleep(0.1)
        return key.upper()

    keys = ["a", "b", "c", "d", "e", "f"]
    assert asyncio.run(fetch_all(keys, fetch, limit=2, deadline=0.25)) == [k.upper() for k in keys]


# python/cpython#84586 family: a plain Mock stands in for an async client; awaiting the value
# its method returns fails.
def test_enrich_adds_country():
    geo = Mock()
    geo.lookup.return_value = "NP"
    record = asyncio.run(Enricher(geo).enrich({"ip": "203.0.113.9"}))
    assert record["country"] == "NP"


# Eck et al. FSE 2019 ("too restrictive range"): the test expects every worker busy at once,
# but the source produces records more slowly than one worker handles them.
def test_stage_keeps_all_workers_busy():
    async def source():
        for index in range(8):
            await asyncio.sleep(0.01)
            yield index

    async def handler(item: int) -> None:
        await asyncio.sleep(0)

    stage = Stage(workers=4)
    assert asyncio.run(stage.run(source(), handler)) == 8
    assert stage.peak == stage.workers
