"""What the scope saw decides the reading: asyncio tasks are concurrency (a lost update across
an await is a race; a lone coroutine under asyncio.run is none), and a resource the failing
line used after it was closed is a lifecycle fault whatever the message says."""

from __future__ import annotations

import sys
from typing import Any

import pytest


def rule_ids(diagnosis: dict[str, Any]) -> list[str]:
    """The ids of every rule that fired for a diagnosis, strongest first."""
    return [rule["id"] for rule in diagnosis["rules"]]

COUNTER = """
import asyncio


class Counter:
    def __init__(self):
        self.value = 0

    async def bump(self, step):
        current = self.value
        await step.wait()  # every task reads before any writes back: the update is lost
        self.value = current + 1


async def _bump_all(counter, tasks):
    step = asyncio.Event()
    running = [asyncio.create_task(counter.bump(step)) for _ in range(tasks)]
    await asyncio.sleep(0)
    step.set()
    await asyncio.gather(*running)


def test_two_tasks_lose_an_update():
    counter = Counter()
    asyncio.run(_bump_all(counter, 2))
    assert counter.value == 2


def test_one_coroutine_is_an_ordinary_bug():
    async def total():
        return sum([1, 1])
    assert asyncio.run(total()) == 3


def test_many_tasks_are_recorded_within_a_bound():
    counter = Counter()
    asyncio.run(_bump_all(counter, 200))
    assert counter.value == 200
"""


def test_lost_update_between_asyncio_tasks_is_a_race(chaostester):
    chaostester.pytester.makepyfile(test_counter=COUNTER)
    result = chaostester.run()
    race = result.diagnosis("test_two_tasks_lose_an_update")
    assert race["category"] == "race"
    assert "after every worker of the test had finished" in race["evidence"][0]
    assert "task 'Counter.bump' exited" in "\n".join(race["evidence"])
    assert any("asyncio.Lock" in s["text"] for s in race["suggestions"])
    # asyncio.run's own task and its shutdown steps are not concurrency
    plain = result.diagnosis("test_one_coroutine_is_an_ordinary_bug")
    assert plain["category"] == "unclassified"
    assert plain["confidence"] >= 0.75
    # 199 lost of 200 is not a count off by one or two: no lost-update claim, and the
    # evidence names at most the recorded tasks
    many = result.diagnosis("test_many_tasks_are_recorded_within_a_bound")
    assert "race.lost-update" not in rule_ids(many)
    assert result.ret == 1


CLOSED = """
import sqlite3
import threading


class Store:
    def __init__(self):
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute("create table jobs (id)")

    def stop(self):
        self.db.close()

    def add(self, job):
        self.db.execute("insert into jobs values (?)", (job,))


def test_add_after_the_service_stopped():
    store = Store()
    stopper = threading.Thread(target=store.stop)
    stopper.start()
    stopper.join()
    store.add(1)


def test_parse_after_closing_an_unrelated_file(tmp_path):
    log = open(tmp_path / "log", "w")
    log.close()
    int("seven")


def test_a_with_block_closes_its_file_on_the_way_out(tmp_path):
    import json
    (tmp_path / "conf.json").write_text("{broken")
    with open(tmp_path / "conf.json") as conf:
        json.loads(conf.read())


def test_a_finally_closes_the_connection_on_the_way_out():
    db = sqlite3.connect(":memory:")
    db.execute("create table counts (n text)")
    db.execute("insert into counts values ('x1')")
    try:
        assert int(db.execute("select n from counts").fetchone()[0]) == 1
    finally:
        db.close()
"""


def test_a_connection_used_after_another_thread_closed_it_is_lifecycle(chaostester):
    chaostester.pytester.makepyfile(test_closed=CLOSED)
    result = chaostester.run()
    closed = result.diagnosis("test_add_after_the_service_stopped")
    assert closed["category"] == "lifecycle"
    assert "self.db (Connection) was closed in add" in closed["evidence"][0]
    assert "thread 'Thread-" in closed["evidence"][0]
    for name in ("test_parse_after_closing_an_unrelated_file",
                 "test_a_with_block_closes_its_file_on_the_way_out",
                 "test_a_finally_closes_the_connection_on_the_way_out"):
        assert result.category(name) == "unclassified", name


WAITS = """
import threading


def test_lock_held_elsewhere():
    lock = threading.Lock()
    holding, release = threading.Event(), threading.Event()

    def holder():
        with lock:
            holding.set()
            release.wait(10)

    worker = threading.Thread(target=holder)
    worker.start()
    holding.wait(10)
    try:
        assert lock.acquire(timeout=0.1)
    finally:
        release.set()
        worker.join(10)


def test_permit_stored_then_checked():
    permits = threading.Semaphore(0)
    granted = permits.acquire(timeout=0.1)
    assert granted, "no permit"


def test_thread_still_running_after_a_bounded_join():
    release = threading.Event()
    worker = threading.Thread(target=release.wait, args=(10,))
    worker.start()
    worker.join(0.1)
    try:
        assert not worker.is_alive()
    finally:
        release.set()
        worker.join(10)


def test_barrier_party_never_arrives():
    meeting = threading.Barrier(2, timeout=0.1)
    meeting.wait()


class Channel:
    def __init__(self):
        self.acked = threading.Condition()

    def send(self, message, timeout=0.1):
        with self.acked:
            return self.acked.wait_for(lambda: False, timeout=timeout)


def test_send_is_acknowledged():
    channel = Channel()
    assert channel.send("ping")


def compute_nothing():
    return None


def test_a_call_that_waits_for_nothing():
    assert compute_nothing() == 3


def test_unrelated_assert_after_a_wait():
    done = threading.Event()
    done.set()
    finished = done.wait(0.1)
    items = []
    assert finished and items
"""


def test_a_wait_with_a_timeout_that_ran_out_is_a_timeout(chaostester):
    chaostester.pytester.makepyfile(test_waits=WAITS)
    result = chaostester.run()
    for name, call in (("test_lock_held_elsewhere", "`lock.acquire(timeout=0.1)`"),
                       ("test_permit_stored_then_checked", "`permits.acquire(timeout=0.1)`"),
                       ("test_thread_still_running_after_a_bounded_join", "`worker.join(0.1)`")):
        diagnosis = result.diagnosis(name)
        assert diagnosis["category"] == "timeout", name
        assert diagnosis["evidence"][0].startswith(f"{call} at line "), diagnosis["evidence"]
        assert "waited 0.1 s on a" in diagnosis["evidence"][0]
    # the wait happened inside the method the assert called: read from its code
    acked = result.diagnosis("test_send_is_acknowledged")
    assert acked["category"] == "timeout"
    assert acked["evidence"][0].startswith("channel.send() (test_waits.py:")
    assert "`self.acked.wait_for(lambda: False, timeout=timeout)`" in acked["evidence"][0]
    assert result.category("test_a_call_that_waits_for_nothing") == "unclassified"
    barrier = result.diagnosis("test_barrier_party_never_arrives")
    assert barrier["category"] == "timeout"
    assert "2 parties, default timeout 0.1" in barrier["evidence"][0]
    # the wait succeeded (the event was set): what failed is the list, not the wait
    unrelated = result.diagnosis("test_unrelated_assert_after_a_wait")
    assert "timeout.bounded-wait" not in rule_ids(unrelated)


RACES = """
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor


class Registry:
    def __init__(self, gate):
        self.items, self.gate = {}, gate

    def get_or_create(self, key):
        if key not in self.items:
            self.gate.wait(10)  # both threads have checked before either creates
            self.items[key] = object()
        return self.items[key]


class Account:
    def __init__(self, gate):
        self.balance, self.gate = 100, gate

    def withdraw(self, amount):
        if self.balance >= amount:
            self.gate.wait(10)  # both have checked the balance before either takes
            self.balance -= amount


def test_one_shared_instance():
    registry = Registry(threading.Barrier(2))
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: registry.get_or_create("conn"), range(2))
    assert first is second


def test_never_overdrawn():
    account = Account(threading.Barrier(2))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: account.withdraw(80), range(2)))
    assert account.balance >= 0


def test_connection_shared_by_threads(tmp_path):
    db = sqlite3.connect(tmp_path / "jobs.db")
    with ThreadPoolExecutor(1) as pool:
        pool.submit(db.execute, "select 1").result(10)
"""


def test_races_the_workers_left_behind_them_point_at_the_code(chaostester):
    chaostester.pytester.makepyfile(test_races=RACES)
    result = chaostester.run()
    expected = {"test_one_shared_instance": "race.duplicate-instance",
                "test_never_overdrawn": "race.broken-invariant",
                "test_connection_shared_by_threads": "race.thread-bound"}
    for name, rule in expected.items():
        diagnosis = result.diagnosis(name)
        assert diagnosis["category"] == "race", (name, diagnosis["evidence"])
        assert diagnosis["rules"][0]["id"] == rule
    overdrawn = result.diagnosis("test_never_overdrawn")
    assert "account.balance ended at -60" in overdrawn["evidence"][0]
    assert not any("timeout" in s["text"].lower() for s in overdrawn["suggestions"])


HIDDEN = """
from concurrent.futures import ThreadPoolExecutor

TEMPLATES = {"alice": "Dear {}", "bob": "Hi {}"}


def render(out, who):
    out.append(TEMPLATES[who].format(who))


def test_every_recipient_is_rendered():
    out = []
    with ThreadPoolExecutor(2) as pool:
        for who in ("alice", "bob", "carol"):
            pool.submit(render, out, who)
    assert len(out) == 3


def test_the_error_retrieved_is_not_hidden():
    with ThreadPoolExecutor(1) as pool:
        pool.submit(render, [], "carol").result(10)
"""


def test_an_error_left_on_a_future_explains_a_short_count(chaostester):
    chaostester.pytester.makepyfile(test_hidden=HIDDEN)
    result = chaostester.run()
    short = result.diagnosis("test_every_recipient_is_rendered")
    # two workers finished and one result is missing: without the future's error this reads
    # as a lost update; the error left on the future is the real cause
    assert short["category"] == "unclassified"
    assert "a task raised KeyError: 'carol', and nobody retrieved it" in short["evidence"]
    assert short["suggestions"][0]["text"].startswith("1 task(s) raised and nobody looked")
    assert not short["rules"]
    retrieved = result.diagnosis("test_the_error_retrieved_is_not_hidden")
    assert not any("never retrieved" in line for line in retrieved["evidence"])


DIED = """
import asyncio


async def consume(queue, handled):
    while True:
        item = await queue.get()
        handled.append(item.decode("ascii"))  # raises on the second item: no task_done()
        queue.task_done()


async def run_stage(items, timeout):
    queue, handled = asyncio.Queue(), []
    for item in items:
        queue.put_nowait(item)
    worker = asyncio.create_task(consume(queue, handled))
    try:
        await asyncio.wait_for(queue.join(), timeout)
    finally:
        worker.cancel()


def test_stage_handles_every_record():
    asyncio.run(run_stage([b"alpha", b"b\\xe9ta", b"gamma"], timeout=0.2))
"""


def test_a_timeout_after_a_worker_task_died_is_lifecycle(chaostester):
    chaostester.pytester.makepyfile(test_died=DIED)
    result = chaostester.run()
    died = result.diagnosis("test_stage_handles_every_record")
    assert died["category"] == "lifecycle", died["evidence"]
    assert died["evidence"][0].startswith("a worker task raised UnicodeDecodeError")
    assert died["rules"][0]["id"] == "lifecycle.died-with-work"


ABORTED = """
import threading
from concurrent.futures import ThreadPoolExecutor


def run_batch(pool, stop):
    def task():
        stop.wait(20)
        raise RuntimeError("batch aborted")
    pool.submit(task)
    try:
        threading.Event().wait(20)  # the limit fires here
    except BaseException:
        stop.set()  # aborts the worker, as a pool library does when interrupted
        raise


def test_interrupted_batch():
    pool = ThreadPoolExecutor(1)
    try:
        run_batch(pool, threading.Event())
    finally:
        pool.shutdown(wait=True)


def test_worker_died_first():
    pool = ThreadPoolExecutor(1)
    pool.submit(lambda: 1 / 0).exception(10)  # waits until it has died, before the limit
    try:
        threading.Event().wait(20)
    finally:
        pool.shutdown(wait=True)
"""


# pytest-timeout arms its timer before the test's scope opens; anything between (a slow
# logstart hook, a loaded machine) must not move the moment the limit is taken to fire.
SLOW_START = """
import time

def pytest_runtest_logstart(nodeid, location):
    time.sleep(0.4)
"""


@pytest.mark.parametrize("start", ["prompt", "slow"])
def test_a_task_aborted_as_the_timeout_unwinds_did_not_die_first(chaostester, start):
    # Seen on a process-pool library's own suite: pytest-timeout's exception makes the
    # library abort its workers, whose tasks then raise; they are the timeout's doing.
    chaostester.pytester.makeini("[pytest]\ntimeout = 1\n")
    chaostester.pytester.makepyfile(test_aborted=ABORTED)
    if start == "slow":
        chaostester.pytester.makeconftest(SLOW_START)
    result = chaostester.run()
    result.result.assert_outcomes(failed=2)
    aborted = result.diagnosis("test_interrupted_batch")
    assert aborted["category"] == "timeout", aborted["evidence"]
    assert "lifecycle.died-with-work" not in rule_ids(aborted)
    first = result.diagnosis("test_worker_died_first")
    assert "lifecycle.died-with-work" in rule_ids(first), first["rules"]


DIED_OF_A_DOUBLE = """
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from unittest import mock


def poll(fetch, out):
    while True:
        item = fetch()
        if item is None:
            return
        out.put(item)


def test_pool_tasks_deliver_every_reply():
    fetch = mock.Mock(side_effect=[1, 2])  # three jobs, two canned replies
    out = queue.Queue()
    with ThreadPoolExecutor(3) as pool:
        for _ in range(3):
            pool.submit(lambda: out.put(fetch()))
        got = [out.get(timeout=0.3) for _ in range(3)]
    assert sorted(got) == [1, 2, 3]


def test_poller_delivers_until_none():
    fetch = mock.Mock(side_effect=[b"a", b"b"])  # the final None was forgotten
    out = queue.Queue()
    threading.Thread(target=poll, args=(fetch, out)).start()
    assert [out.get(timeout=0.3) for _ in range(3)] == [b"a", b"b", b"c"]


def test_poller_on_a_specced_client():
    client = mock.Mock(spec=["fetch"])
    out = queue.Queue()
    threading.Thread(target=poll, args=(client.fetch_next, out)).start()
    assert out.get(timeout=0.3) == b"a"


def test_pool_task_given_a_failure_to_simulate():
    fetch = mock.Mock(side_effect=ConnectionError("collector down"))
    out = queue.Queue()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: out.put(fetch()))
        assert out.get(timeout=0.3) == 1
"""


def test_a_worker_that_died_of_its_test_double_is_the_mock_gap(chaostester):
    # The double itself raised on a worker (its side_effect list ran out, its spec lacks
    # the attribute): the wait that then ran out, and the worker's death, are its
    # consequences.
    chaostester.pytester.makepyfile(test_doubles=DIED_OF_A_DOUBLE)
    result = chaostester.run()
    pooled = result.diagnosis("test_pool_tasks_deliver_every_reply")
    assert pooled["category"] == "mock-gap", pooled
    assert pooled["rules"][0]["id"] == "mock-gap.side-effect-exhausted"
    assert "StopIteration raised by a test double called at `pool.submit(" in \
        pooled["evidence"][0]
    polled = result.diagnosis("test_poller_delivers_until_none")
    assert polled["category"] == "mock-gap", polled
    assert "`item = fetch()` in poll (test_doubles.py:" in polled["evidence"][0]
    specced = result.diagnosis("test_poller_on_a_specced_client")
    assert specced["category"] == "mock-gap", specced
    assert specced["rules"][0]["id"] == "mock-gap.spec-attribute"
    # nearest negative: a failure the test gave the double to simulate killed the task
    simulated = result.diagnosis("test_pool_task_given_a_failure_to_simulate")
    assert simulated["rules"][0]["id"] == "lifecycle.died-with-work", simulated


SPAWNED_JOBS = """
import os


def device_ready():
    return False  # no device on a test machine


def crunch(number):
    if not device_ready():
        os._exit(3)  # the native library aborts without a device
    return number * number


def crash(number):
    os._exit(3)
"""

SPAWNED = """
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from unittest import mock

import jobs


def _spawned():
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))


def test_crunch_on_a_patched_device():
    with mock.patch("jobs.device_ready", return_value=True), _spawned() as pool:
        assert list(pool.map(jobs.crunch, [1, 2])) == [1, 4]


def test_a_worker_that_crashes_beside_a_patch_the_test_used():
    with mock.patch("jobs.device_ready", return_value=True), _spawned() as pool:
        assert jobs.device_ready()
        assert list(pool.map(jobs.crash, [1])) == [1]
"""


def test_a_patch_the_spawned_workers_never_saw_is_the_mock_gap(chaostester):
    # A pool started by 'spawn' runs its tasks in fresh interpreters that import the module
    # without the test's patch: the real code ran there and broke the pool.
    chaostester.pytester.makepyfile(jobs=SPAWNED_JOBS, test_spawned=SPAWNED)
    result = chaostester.run()
    unseen = result.diagnosis("test_crunch_on_a_patched_device")
    assert unseen["category"] == "mock-gap", unseen
    assert rule_ids(unseen)[0] == "mock-gap.missed-patch"
    assert "jobs.device_ready was patched and its double never called, while the test ran " \
           "its work in ProcessPoolExecutor processes started by 'spawn'" in unseen["evidence"][0]
    # nearest negative: the double was called, and the worker crashed on its own
    crashed = result.diagnosis("test_a_worker_that_crashes_beside_a_patch_the_test_used")
    assert crashed["category"] == "lifecycle", crashed
    assert rule_ids(crashed)[0] == "lifecycle.broken-executor"


POOL_EXIT = """
import multiprocessing

CONTEXT = multiprocessing.get_context("fork")
NEVER = CONTEXT.Event()  # never set: a page is still rendering when the pool is terminated


def render(page):
    NEVER.wait(10)
    return f"page-{page}"


def quick(page):
    return page


def render_all(pages):
    with CONTEXT.Pool(2) as pool:
        pending = [pool.apply_async(render, (page,)) for page in pages]
    return [result.get(timeout=0.5) for result in pending]


def test_render_all_pages():
    assert render_all([1, 2]) == ["page-1", "page-2"]


def test_a_with_block_still_open_closes_on_the_way_out():
    with CONTEXT.Pool(1) as pool:
        pool.apply_async(quick, (1,)).get(timeout=10)
        raise TimeoutError("a wait of the test's own, inside the block")
"""


def test_results_fetched_after_the_pools_with_block_are_lifecycle(chaostester):
    chaostester.pytester.makepyfile(test_pool_exit=POOL_EXIT)
    result = chaostester.run()
    late = result.diagnosis("test_render_all_pages")
    assert late["category"] == "lifecycle", late["evidence"]
    # (the comprehension is a frame of its own before Python 3.12: the pool is reached
    # through each result there)
    assert "(Pool) was shut down in" in late["evidence"][0]
    # inside the block the pool was running when the error was raised: its exit on the way
    # out is not what happened
    inside = result.diagnosis("test_a_with_block_still_open_closes_on_the_way_out")
    assert "lifecycle.waited-on-shut-pool" not in rule_ids(inside)


STATES = """
import subprocess
import sys
import threading


def test_joined_before_it_started():
    worker = threading.Thread(target=print)
    worker.join()


def test_child_exits_with_a_failure():
    subprocess.run([sys.executable, "-c", "raise SystemExit(3)"], check=True)


def test_the_projects_own_runtime_error():
    raise RuntimeError("cannot join thread before it is started")
"""


def test_the_machinery_refusing_a_call_in_the_wrong_state_is_lifecycle(chaostester):
    chaostester.pytester.makepyfile(test_states=STATES)
    result = chaostester.run()
    joined = result.diagnosis("test_joined_before_it_started")
    assert joined["category"] == "lifecycle"
    assert "threading refused the call in its object's current state" in joined["evidence"][0]
    child = result.diagnosis("test_child_exits_with_a_failure")
    assert child["category"] == "lifecycle"
    assert "the child process exited with status 3" in child["evidence"][0]
    # the same words raised by the test's own code: nothing refused anything
    assert result.category("test_the_projects_own_runtime_error") == "unclassified"


MAGIC = """
from unittest.mock import MagicMock


class Book:
    def __init__(self):
        self.conn = None

    def balance(self):
        row = self.conn.execute("SELECT balance").fetchone()
        return int(row[0])


def test_balance_of_a_double_set_up_for_another_call():
    book = Book()
    try:
        book.conn = MagicMock(name="conn")
        book.conn.execute.return_value.fetchall.return_value = [(250,)]
        assert book.balance() == 250
    finally:
        book.conn = None  # the double is gone by the time the failure is read


def test_a_conversion_of_a_double_that_is_not_the_value_asserted():
    assert int(MagicMock()) == 1
    assert len([1, 2]) == 3
"""


def test_a_magicmock_default_that_reached_the_assert_is_a_mock_gap(chaostester):
    chaostester.pytester.makepyfile(test_book=MAGIC)
    result = chaostester.run()
    gap = result.diagnosis("test_balance_of_a_double_set_up_for_another_call")
    assert gap["category"] == "mock-gap", gap
    assert "int() of conn.execute().fetchone().__getitem__() gave 1" in gap["evidence"][0]
    assert any("create_autospec" in s["text"] for s in gap["suggestions"])
    # int() of a double was taken, but the assert saw 2 against 3: not the double's default
    other = result.diagnosis("test_a_conversion_of_a_double_that_is_not_the_value_asserted")
    assert other["category"] == "unclassified", other


MOMENT = """
import threading
import time
from concurrent.futures import ThreadPoolExecutor


class Worker:
    def __init__(self, job):
        self.thread = threading.Thread(target=job, name="worker-w1")

    def start(self):
        self.thread.start()

    def stop(self, join_timeout=2.0):
        self.thread.join(join_timeout)


def test_stop_gives_up_on_a_busy_worker():
    release = threading.Event()
    worker = Worker(lambda: release.wait(5))
    worker.start()
    try:
        worker.stop(join_timeout=0.05)
        assert not worker.thread.is_alive()
    finally:
        release.set()  # the worker ends here, before the failure is read
        worker.thread.join(5)


def test_stop_that_finished_is_no_timeout():
    worker = Worker(lambda: None)
    worker.start()
    worker.stop(join_timeout=5)
    assert worker.thread.name == "worker-w2"


def wait_idle(pending, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not pending:
            return
        time.sleep(0.01)
    raise RuntimeError(f"still busy after {seconds} s ({len(pending)} outstanding)")


def test_polling_helper_gives_up():
    wait_idle(["page"], 0.05)


def crawl(urls):
    seen = []
    with ThreadPoolExecutor(2, thread_name_prefix="crawl") as pool:
        for url in pool.map(str.upper, urls):
            seen.append(url)
    return seen


def test_pool_made_and_shut_inside_a_call_still_counts():
    assert crawl(["a", "b"]) == ["A", "B", "C"]


class Budgeted:
    def __init__(self, slow):
        self.slow = slow

    def run(self, budget):
        import concurrent.futures as cf

        missing = []
        release = threading.Event()
        with cf.ThreadPoolExecutor(1) as pool:
            future = pool.submit(release.wait, self.slow)
            done, _ = cf.wait([future], timeout=budget)
            if future not in done:
                missing.append("slow")
            release.set()
        return missing


class NotReady(Exception):
    pass


def fire_when_ready(ready, checks=3, pause=0.01):
    for _ in range(checks):
        if ready():
            return
        time.sleep(pause)
    raise NotReady(f"precondition false on all {checks} checks")


def parse_all(lines):
    for index in range(len(lines)):
        if not lines[index]:
            raise ValueError(f"line {index} is empty")


def test_retry_budget_runs_out():
    fire_when_ready(threading.Event().is_set)


def test_a_plain_loop_that_raises_is_no_retry():
    parse_all(["a", ""])


def test_result_of_a_budgeted_call_read_a_line_later():
    missing = Budgeted(5).run(budget=0.05)
    assert missing == []
"""


def test_evidence_reads_workers_as_they_were_when_the_assert_failed(chaostester):
    chaostester.pytester.makepyfile(test_moment=MOMENT)
    result = chaostester.run()
    busy = result.diagnosis("test_stop_gives_up_on_a_busy_worker")
    assert busy["category"] == "timeout", busy
    text = "\n".join(busy["evidence"])
    assert "returns after `self.thread.join(join_timeout)` on a Thread" in text
    # read after the finally, the worker would be long gone; at the assert it was busy
    assert "thread 'worker-w1' busy" in text
    # the same wait that the worker outran is no timeout
    done = result.diagnosis("test_stop_that_finished_is_no_timeout")
    assert done["category"] != "timeout", done
    polled = result.diagnosis("test_polling_helper_gives_up")
    assert polled["category"] == "timeout", polled
    assert "wait_idle() polls until a clock deadline" in polled["evidence"][0]
    # the pool is collected by the assert; its threads still say work ran concurrently
    pooled = result.diagnosis("test_pool_made_and_shut_inside_a_call_still_counts")
    assert pooled["category"] != "unclassified", pooled
    retried = result.diagnosis("test_retry_budget_runs_out")
    assert retried["category"] == "timeout", retried
    assert "fire_when_ready() tries a fixed number of times with a pause between" in \
        retried["evidence"][0]
    assert result.diagnosis("test_a_plain_loop_that_raises_is_no_retry")["category"] != "timeout"
    budget = result.diagnosis("test_result_of_a_budgeted_call_read_a_line_later")
    assert budget["category"] == "timeout", budget
    assert "Budgeted(...).run() (test_moment.py" in budget["evidence"][0]


def test_a_patch_the_code_never_saw_is_a_mock_gap(chaostester):
    chaostester.pytester.makepyfile(
        health="""
        from os import getloadavg


        def shed_load(threshold):
            one_minute, _, _ = getloadavg()
            return one_minute > threshold
        """,

        test_health="""
        from unittest.mock import patch

        import health


        def test_patched_where_defined():
            with patch("os.getloadavg", return_value=(5000.0, 0.0, 0.0)):
                assert health.shed_load(threshold=1000.0)


        def test_patched_where_used_but_wrong_threshold():
            with patch("health.getloadavg", return_value=(5.0, 0.0, 0.0)):
                assert health.shed_load(threshold=1000.0)
        """,
    )
    result = chaostester.run()
    missed = result.diagnosis("test_patched_where_defined")
    assert missed["category"] == "mock-gap", missed
    assert "health.getloadavg still holds the original" in missed["evidence"][0]
    assert "patch('health.getloadavg')" in missed["suggestions"][0]["text"]
    # the patch reached the code (its double was called): whatever failed, it was not missed
    used = result.diagnosis("test_patched_where_used_but_wrong_threshold")
    assert not any("still holds the original" in line for line in used["evidence"]), used


def test_another_test_modules_copy_of_a_patched_name_is_no_missed_patch(chaostester):
    # Seen on a file-watching library's suite: a test patched time.sleep, the code failed on a
    # missing module before its first sleep, and another test file had done
    # `from time import sleep`. That file is no code this test runs.
    chaostester.pytester.makepyfile(
        cfgload="""
        import time


        def run(path):
            raise LookupError(f"no loader for {path}")  # before its first time.sleep
            time.sleep(1)
        """,
        test_cfgload="""
        from unittest.mock import patch

        import cfgload


        def test_run_stops_when_told():
            with patch("time.sleep", side_effect=KeyboardInterrupt):
                cfgload.run("tricks.yaml")
        """,
        test_polling="""
        from time import sleep


        def test_a_pause():
            sleep(0)
        """,
    )
    result = chaostester.run()
    failed = result.diagnosis("test_run_stops_when_told")
    assert failed["category"] != "mock-gap", failed
    assert "mock-gap.missed-patch" not in rule_ids(failed)


def test_one_named_event_code_for_another_is_not_a_count_of_events(chaostester):
    # Seen on a scheduler's suite: `assert event.code == event_code` got EVENT_JOB_MISSED
    # (16384) where EVENT_JOB_ERROR (8192) was expected, and was read as a count off by 8192.
    chaostester.pytester.makepyfile(
        dispatch="""
        from concurrent.futures import ThreadPoolExecutor

        EVENT_JOB_EXECUTED = 4096
        EVENT_JOB_ERROR = 8192
        EVENT_JOB_MISSED = 16384
        JOBS_PER_BATCH = 4


        def outcome(job):
            with ThreadPoolExecutor(1) as pool:
                return pool.submit(lambda: EVENT_JOB_MISSED if job < 0 else
                                   EVENT_JOB_EXECUTED).result(10)


        def run_batch(jobs):
            with ThreadPoolExecutor(2) as pool:
                return sum(1 for code in pool.map(outcome, jobs) if code == EVENT_JOB_EXECUTED)
        """,
        test_dispatch="""
        from dispatch import EVENT_JOB_ERROR, JOBS_PER_BATCH, outcome, run_batch


        def test_a_failing_job_reports_an_error():
            assert outcome(-1) == EVENT_JOB_ERROR


        def test_every_job_of_the_batch_runs():
            assert run_batch([1, 2, -3, 4]) == JOBS_PER_BATCH
        """,
    )
    result = chaostester.run()
    code = result.diagnosis("test_a_failing_job_reports_an_error")
    assert "expectation.exact-count" not in rule_ids(code), code
    assert code["category"] != "expectation", code
    assert not any("off by" in line for line in code["evidence"]), code["evidence"]
    # nearest negative: a count compared with a named constant is still a count
    counted = result.diagnosis("test_every_job_of_the_batch_runs")
    assert "expectation.exact-count" in rule_ids(counted), counted


def test_a_patch_a_default_argument_bound_first_is_a_mock_gap(chaostester):
    chaostester.pytester.makepyfile(
        loadcheck="""
        import os


        def busy(threshold, load=os.getloadavg):
            return load()[0] > threshold
        """,
        test_loadcheck="""
        from unittest.mock import patch

        import loadcheck


        def test_default_bound_before_the_patch():
            with patch("os.getloadavg", return_value=(5000.0, 0.0, 0.0)):
                assert loadcheck.busy(threshold=1000.0)
        """,
    )
    bound = chaostester.run().diagnosis("test_default_bound_before_the_patch")
    assert bound["category"] == "mock-gap", bound
    assert "loadcheck.busy still holds the original it replaced as a default argument" in \
        bound["evidence"][0]
    assert "pass the double explicitly" in bound["suggestions"][0]["text"]


def test_a_task_cut_off_by_its_timeout_is_read_as_late_work(chaostester):
    chaostester.pytester.makepyfile(
        """
        import asyncio


        async def run_jobs(jobs, limit):
            async def one(name, job):
                try:
                    await asyncio.wait_for(job(), limit)
                    return name, "ok"
                except asyncio.TimeoutError:
                    return name, "skipped"
            return dict(await asyncio.gather(*(one(n, j) for n, j in jobs.items())))


        def test_every_job_runs():
            async def quick():
                await asyncio.sleep(0)

            async def export():
                await asyncio.sleep(5)  # cut off by the limit long before

            statuses = asyncio.run(run_jobs({"quick": quick, "export": export}, limit=0.05))
            assert statuses == {"quick": "ok", "export": "ok"}
        """
    )
    # its own process: after earlier in-process sessions that ran asyncio (pytester drops and
    # re-imports modules between them), wait_for's cancellation reached the test itself as
    # CancelledError; a fresh process runs it as a user's suite would
    late = chaostester.run(subprocess=True).diagnosis("test_every_job_runs")
    assert late["category"] == "timeout", late
    assert "task 'test_every_job_runs.<locals>.export' cancelled before it finished" in \
        late["evidence"][0]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout() is new in 3.11")
def test_work_cut_off_by_an_asyncio_timeout_block_is_read_as_late_work(chaostester):
    # asyncio.timeout() cancels the work inside the waiting task itself (wait_for does the
    # same from Python 3.12 on): no task of its own is cancelled, the block's expiry is seen.
    chaostester.pytester.makepyfile(
        """
        import asyncio


        async def export():
            await asyncio.sleep(5)  # cut off by the limit long before


        async def run_export(limit):
            try:
                async with asyncio.timeout(limit):
                    await export()
                return "ok"
            except TimeoutError:
                return "skipped"


        def test_export_runs():
            assert asyncio.run(run_export(0.05)) == "ok"
        """
    )
    late = chaostester.run(subprocess=True).diagnosis("test_export_runs")
    assert late["category"] == "timeout", late
    assert "task 'export' cancelled before it finished" in late["evidence"][0]


SHARES = """
import threading


class Totals:
    def __init__(self):
        self.sent = 0

    def add(self, size, both_read):
        current = self.sent
        both_read.wait()  # both workers read the total before either writes it back
        self.sent = current + size


def _run(sizes):
    totals, both_read = Totals(), threading.Barrier(len(sizes), timeout=30)
    workers = [threading.Thread(target=totals.add, args=(size, both_read)) for size in sizes]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return totals.sent


def test_two_workers_lose_a_whole_share():
    assert _run([300, 300]) == 600


def test_a_total_off_by_no_share():
    assert _run([300, 300]) == 650


def test_bytes_of_two_batches_with_one_lost():
    batch = "abc"
    size = len(batch)
    assert _run([size, size]) == 2 * len(batch)  # a len() in the expected total, not items
"""


def test_a_total_short_by_one_workers_share_after_all_finished_is_a_lost_update(chaostester):
    chaostester.pytester.makepyfile(test_shares=SHARES)
    result = chaostester.run()
    lost = result.diagnosis("test_two_workers_lose_a_whole_share")
    assert lost["category"] == "race"
    assert lost["rules"][0]["id"] == "race.lost-update"
    assert "one of 2 equal shares is missing" in lost["evidence"][0]
    assert result.diagnosis("test_bytes_of_two_batches_with_one_lost")["category"] == "race"
    # nearest negative: the same workers, a total no share explains
    other = result.diagnosis("test_a_total_off_by_no_share")
    assert "race.lost-update" not in rule_ids(other)


LATE_SHARE = """
import queue
import threading


class Uploader:
    def __init__(self, sizes, held):
        self.sent, self.total = 0, sum(sizes)
        self._lock = threading.Lock()
        self.release, self.all_sent = threading.Event(), threading.Event()
        self.workers = [threading.Thread(target=self._send, args=(size, index in held))
                        for index, size in enumerate(sizes)]
        for worker in self.workers:
            worker.start()

    def _send(self, size, held):
        if held:
            self.release.wait(30)  # a collector that answers late
        with self._lock:
            self.sent += size
            if self.sent == self.total:
                self.all_sent.set()

    def flush(self, timeout):
        for worker in self.workers:
            worker.join(timeout)
        return self.sent

    def close(self):
        self.release.set()
        for worker in self.workers:
            worker.join(30)


def collect(items, count, per_item):
    got = []
    for _ in range(count):
        try:
            got.append(items.get(timeout=per_item))
        except queue.Empty:
            break
    return got


def test_flush_reports_every_byte():
    uploader = Uploader([300, 300], held={1})
    sent = uploader.flush(timeout=0.1)
    uploader.close()  # the held worker ends now: every worker has ended at the assert
    assert sent == 600


def test_sent_read_before_the_workers_were_joined():
    uploader = Uploader([300, 300], held={1})
    uploader.workers[0].join(30)
    sent = uploader.sent
    uploader.release.set()
    for worker in uploader.workers:
        worker.join(30)
    assert sent == 600


def test_progress_read_after_a_dropped_wait():
    uploader = Uploader([300, 300], held={1})
    uploader.all_sent.wait(0.1)
    sent = uploader.sent
    uploader.close()
    assert sent == 600


def test_collect_every_acknowledgement():
    acks, release = queue.Queue(), threading.Event()

    def acknowledge():
        acks.put(1)
        acks.put(1)
        release.wait(30)
        acks.put(1)

    producer = threading.Thread(target=acknowledge)
    producer.start()
    got = collect(acks, 3, 0.1)
    release.set()
    producer.join(30)  # its last item is still queued: nobody took it
    assert sum(got) == 3


class Totals:
    def __init__(self):
        self.sent = 0

    def add(self, size, both_read):
        current = self.sent
        both_read.wait()  # both workers read the total before either writes it back
        self.sent = current + size


def test_loaded_once_by_two_workers():
    calls, cache, both_checked = [], {}, threading.Barrier(2, timeout=30)

    def load(key):
        if key not in cache:
            both_checked.wait()  # both have checked before either loads
            calls.append(key)
            cache[key] = key * 2

    workers = [threading.Thread(target=load, args=("k",)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert calls == ["k"]  # a list made before the join, read at the assert


def test_total_after_a_pause_and_a_join():
    totals, both_read = Totals(), threading.Barrier(2, timeout=30)
    workers = [threading.Thread(target=totals.add, args=(300, both_read)) for _ in range(2)]
    for worker in workers:
        worker.start()
    pause = threading.Event()
    pause.wait(0.05)  # only paces the test: the workers are joined before the total is read
    for worker in workers:
        worker.join(30)
    assert totals.sent == 600


def test_total_after_a_bounded_join_that_returned_in_time():
    totals, both_read = Totals(), threading.Barrier(2, timeout=30)
    expected = 2 * 300  # worked out before the workers start: no reading of theirs
    workers = [threading.Thread(target=totals.add, args=(300, both_read)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert totals.sent == expected
"""


def test_a_count_read_when_a_wait_of_the_test_ran_out_is_a_timeout(chaostester):
    # Every worker has ended by the time the failure is read, but the count was taken when
    # a wait of the test's thread ran out (seen running out): late work, not a lost update.
    chaostester.pytester.makepyfile(test_late=LATE_SHARE)
    result = chaostester.run()
    flushed = result.diagnosis("test_flush_reports_every_byte")
    assert flushed["category"] == "timeout", flushed
    assert "race.lost-update" not in rule_ids(flushed)
    assert "uploader.flush() (test_late.py:" in flushed["evidence"][0]
    assert "ran out (test_late.py:" in flushed["evidence"][0]
    assert "`worker.join(timeout)`" in flushed["evidence"][0]
    # no wait ran out: the value was only taken before the test joined the workers
    early = result.diagnosis("test_sent_read_before_the_workers_were_joined")
    assert early["category"] == "timeout", early
    assert "race.lost-update" not in rule_ids(early)
    assert "`sent = uploader.sent` at line " in early["evidence"][0]
    dropped = result.diagnosis("test_progress_read_after_a_dropped_wait")
    assert dropped["category"] == "timeout", dropped
    assert dropped["rules"][0]["id"] == "timeout.dropped-wait"
    assert "race.lost-update" not in rule_ids(dropped)
    # the consumer that left an item queued was the test's own call, which gave up waiting
    collected = result.diagnosis("test_collect_every_acknowledgement")
    assert collected["category"] == "timeout", collected
    assert "lifecycle.abandoned-queue" not in rule_ids(collected)
    # nearest negative: a bounded join that returned in time, and an update really lost
    lost = result.diagnosis("test_total_after_a_bounded_join_that_returned_in_time")
    assert lost["category"] == "race"
    assert lost["rules"][0]["id"] == "race.lost-update"
    paced = result.diagnosis("test_total_after_a_pause_and_a_join")
    assert paced["rules"][0]["id"] == "race.lost-update", paced
    twice = result.diagnosis("test_loaded_once_by_two_workers")
    assert twice["category"] == "race", twice
    assert "timeout.work-in-progress" not in rule_ids(twice)


PIPE = """
import multiprocessing
import time

CTX = multiprocessing.get_context("fork")


def _export(rows, out):
    out.put(["row-%06d" % index for index in range(rows)])


def export(rows, timeout):
    out = CTX.Queue()
    proc = CTX.Process(target=_export, args=(rows, out))
    proc.start()
    proc.join(timeout)  # before reading: the child cannot exit while the pipe is full
    if proc.is_alive():
        proc.kill()
        proc.join()
        raise TimeoutError(f"export worker still running after {timeout}s")
    return out.get(timeout=5)


def test_join_before_draining_the_queue():
    assert len(export(100_000, 0.5)) == 100_000


def test_child_slower_than_the_wait():
    out = CTX.Queue()
    proc = CTX.Process(target=time.sleep, args=(30,))
    proc.start()
    proc.join(0.3)
    if proc.is_alive():
        proc.kill()
        proc.join()
        raise TimeoutError("sleeper still running after 0.3s")
    out.get(timeout=1)
"""


def test_joining_a_child_before_reading_its_queue_is_a_deadlock_race(chaostester):
    chaostester.pytester.makepyfile(test_pipe=PIPE)
    result = chaostester.run(subprocess=True)
    stuck = result.diagnosis("test_join_before_draining_the_queue")
    assert stuck["category"] == "race"
    assert stuck["rules"][0]["id"] == "race.undrained-pipe"
    assert "out (Queue) had data in its pipe that nobody read" in stuck["evidence"][0]
    assert "drained" in stuck["suggestions"][0]["text"]
    # nearest negative: the child was slow and had sent nothing
    slow = result.diagnosis("test_child_slower_than_the_wait")
    assert slow["category"] == "timeout"
    assert "race.undrained-pipe" not in rule_ids(slow)


LOCKS = """
import queue
import threading
from concurrent.futures import ThreadPoolExecutor


class Account:
    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()


def transfer(first, second, both_hold, both_tried):
    with first.lock:
        both_hold.wait(10)  # each thread holds its first lock before it wants the second
        locked = second.lock.acquire(timeout=0.2)
        both_tried.wait(10)  # neither lets go before the other gave up: both give up
        if not locked:
            raise TimeoutError(f"timed out locking {second.name}")
        second.lock.release()


def test_transfers_both_ways():
    alice, bob = Account("alice"), Account("bob")
    both_hold, both_tried = threading.Barrier(2), threading.Barrier(2)
    with ThreadPoolExecutor(2) as pool:
        there = pool.submit(transfer, alice, bob, both_hold, both_tried)
        back = pool.submit(transfer, bob, alice, both_hold, both_tried)
        there.result(10)
        back.result(10)


def test_consumer_gets_an_item():
    jobs = queue.Queue()
    produced = threading.Event()

    def producer():
        produced.wait(10)  # set only after the consumer gave up
        jobs.put("job")

    helper = threading.Thread(target=producer)
    helper.start()
    try:
        with ThreadPoolExecutor(2) as pool:
            assert pool.submit(jobs.get, timeout=0.1).result(10) == "job"
    finally:
        produced.set()
        helper.join(10)
"""


def test_locks_a_library_object_takes_inside_its_own_calls_are_not_held(chaostester):
    chaostester.pytester.makepyfile(test_locks=LOCKS)
    result = chaostester.run()
    deadlock = result.diagnosis("test_transfers_both_ways")
    assert deadlock["category"] == "race"
    assert "lock first.lock, lock second.lock" in deadlock["evidence"][0]
    assert "another worker gave up the same way (TimeoutError: timed out locking" in \
        deadlock["evidence"][1]
    # the other worker's error is the same wait giving up, not a task that died with work
    assert "lifecycle.died-with-work" not in rule_ids(deadlock)
    # A Queue's mutex and conditions are reachable from the frame that called get(), but
    # get() gave them back before it raised: a consumer that gave up waited, it held nothing.
    consumer = result.diagnosis("test_consumer_gets_an_item")
    assert consumer["category"] == "timeout"
    assert [rule for rule in rule_ids(consumer) if rule.startswith("race.")] == []


FLAGS = """
from unittest import mock


class Connection:
    def __init__(self, sock):
        self.sock = sock

    def send(self, data):
        if self.sock.closed:
            raise ConnectionError("connection closed by peer")
        return self.sock.send(data)


def test_send_through_a_double():
    sock = mock.Mock()
    sock.send.return_value = 1
    assert Connection(sock).send(b"x") == 1


def test_send_on_a_double_the_test_closed():
    sock = mock.Mock()
    sock.closed = True  # set by the test: the refusal is what it asked for
    assert Connection(sock).send(b"x") == 1


def read_output(command):
    import subprocess

    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = child.communicate(timeout=5)
    return out


def test_output_through_a_patched_popen():
    with mock.patch("subprocess.Popen"):
        assert read_output(["worker"]) == b""
"""


def test_a_mock_attribute_nobody_set_that_decided_a_raise_is_a_mock_gap(chaostester):
    chaostester.pytester.makepyfile(test_flags=FLAGS)
    result = chaostester.run()
    gap = result.diagnosis("test_send_through_a_double")
    assert gap["category"] == "mock-gap"
    assert "`self.sock.closed` in send (test_flags.py:" in gap["evidence"][0]
    assert "an attribute a Mock made itself (a Mock: true, equal to no real value" in \
        gap["evidence"][0]
    assert any("double.closed = False" in s["text"] for s in gap["suggestions"])
    closed = result.diagnosis("test_send_on_a_double_the_test_closed")
    assert "mock-gap.unset-attribute" not in rule_ids(closed)
    # unpacking what an unset call returned: iterating a MagicMock gives nothing
    unpacked = result.diagnosis("test_output_through_a_patched_popen")
    assert unpacked["category"] == "mock-gap"
    assert "`child.communicate(timeout=5)` in read_output" in unpacked["evidence"][0]


READS = """
from unittest import mock


class Client:
    def __init__(self, sock):
        self.sock = sock

    def read_line(self):
        chunk = self.sock.recv(4096)
        if len(chunk) == 0:
            raise ConnectionResetError("peer closed the connection")
        return chunk.rstrip(b"\\n")


def test_reply_through_a_misspelt_double():
    sock = mock.MagicMock()
    sock.recv.return_vale = b"pong\\n"
    assert Client(sock).read_line() == b"pong"


def test_reply_from_a_double_that_really_ended():
    sock = mock.MagicMock()
    sock.recv.return_value = b""  # set by the test: the end of stream is what it asked for
    assert Client(sock).read_line() == b"pong"
"""


def test_a_double_value_that_decided_a_connection_error_is_a_mock_gap(chaostester):
    # The code raised "peer closed" because len() of what recv() returned was 0: recv() was
    # never set up (return_vale), so it returned a MagicMock of its own. No connection was
    # there to close: the lifecycle reading of the error only supports.
    chaostester.pytester.makepyfile(test_reads=READS)
    result = chaostester.run()
    gap = result.diagnosis("test_reply_through_a_misspelt_double")
    assert gap["category"] == "mock-gap", gap
    assert "`len(chunk) == 0` in read_line (test_reads.py:" in gap["evidence"][0]
    assert "read chunk, a MagicMock that mock.recv() gave on its own" in gap["evidence"][0]
    assert {r["id"]: r["score"] for r in gap["rules"]}["lifecycle.connection"] == 0.3
    # nearest negative: the test set the empty read itself
    ended = result.diagnosis("test_reply_from_a_double_that_really_ended")
    assert "mock-gap.unset-attribute" not in rule_ids(ended)
    assert ended["category"] == "lifecycle", ended


MUTATED = """
import queue
import threading
from concurrent.futures import ThreadPoolExecutor


def test_total_while_registering():
    registry = {number: number for number in range(100)}
    totals = queue.Queue()
    iterating, added = threading.Event(), threading.Event()

    def total():
        running = 0
        for key in registry:
            running += registry[key]
            if key == 10:  # the other worker adds while this one is mid-iteration
                iterating.set()
                added.wait(10)
        totals.put(running)

    def register():
        iterating.wait(10)
        registry[500] = 1
        added.set()

    with ThreadPoolExecutor(2) as pool:
        pool.submit(total)
        pool.submit(register)
        assert totals.get(timeout=1) > 0
"""


def test_a_task_that_died_of_another_threads_write_is_a_race_not_lifecycle(chaostester):
    chaostester.pytester.makepyfile(test_mutated=MUTATED)
    result = chaostester.run()
    race = result.diagnosis("test_total_while_registering")
    assert race["category"] == "race"
    assert race["evidence"][0].startswith(
        "a worker task raised RuntimeError: dictionary changed size during iteration")
    assert "lifecycle.died-with-work" not in rule_ids(race)


FROZEN = """
import itertools
import multiprocessing
import time
from unittest import mock

import pytest


def wait_ready(check, timeout=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def run_worker():
    worker = multiprocessing.Process(target=print)
    worker.start()
    worker.join(timeout=1)
    if worker.is_alive():
        raise RuntimeError("worker hung")
    return worker.exitcode


@pytest.mark.timeout(1)
def test_ready_while_time_stands_still():
    with mock.patch("time.monotonic", return_value=100.0):
        assert wait_ready(lambda: False) is False


def test_ready_on_a_clock_that_moves():
    with mock.patch("time.monotonic", side_effect=itertools.count(100.0, 0.2)):
        assert wait_ready(lambda: False)


def test_worker_through_a_patched_process():
    with mock.patch("multiprocessing.Process"):
        assert run_worker() == 0


def test_worker_whose_double_says_it_ended():
    with mock.patch("multiprocessing.Process") as process:
        process.return_value.is_alive.return_value = False
        assert run_worker() == 0
"""


def test_a_double_that_stops_time_or_says_alive_is_the_mock_gap(chaostester):
    chaostester.pytester.makepyfile(test_frozen=FROZEN)
    result = chaostester.run()
    frozen = result.diagnosis("test_ready_while_time_stands_still")
    assert frozen["category"] == "mock-gap"
    assert frozen["evidence"][0].startswith("time.monotonic was patched with a double that "
                                            "gave 100.0 on each of its ")
    # the same wait on a patched clock that advances: the deadline passed, a timeout
    moving = result.diagnosis("test_ready_on_a_clock_that_moves")
    assert moving["category"] == "timeout"
    assert "mock-gap.frozen-clock" not in rule_ids(moving)
    alive = result.diagnosis("test_worker_through_a_patched_process")
    assert alive["category"] == "mock-gap"
    assert "worker.is_alive(), a call a MagicMock answered with a Mock of its own" in \
        alive["evidence"][0]
    configured = result.diagnosis("test_worker_whose_double_says_it_ended")
    assert "mock-gap.unset-attribute" not in rule_ids(configured)


STOOD_IN = """
import queue
import threading
import time
from threading import Thread
from unittest import mock


def in_background(fn, *args):
    results = queue.Queue()
    Thread(target=lambda: results.put(fn(*args)), daemon=True).start()
    return results


def test_result_of_a_patched_thread():
    with mock.patch(__name__ + ".Thread") as thread_cls:
        results = in_background(sum, [1, 2])
        assert thread_cls.call_args.kwargs["daemon"] is True
        assert results.get(timeout=0.3) == 3


def test_result_of_a_slow_real_thread_beside_the_patch():
    with mock.patch(__name__ + ".Thread"):
        in_background(sum, [1, 2])
        results = queue.Queue()
        release = threading.Event()
        worker = threading.Thread(target=lambda: (release.wait(5), results.put(3)))
        worker.start()
        try:
            assert results.get(timeout=0.3) == 3
        finally:
            release.set()
            worker.join(5)
"""


def test_a_wait_for_work_a_patched_thread_never_did_is_the_mock_gap(chaostester):
    chaostester.pytester.makepyfile(test_stood_in=STOOD_IN)
    result = chaostester.run()
    stood_in = result.diagnosis("test_result_of_a_patched_thread")
    assert stood_in["category"] == "mock-gap"
    assert rule_ids(stood_in)[0] == "mock-gap.patched-worker"
    assert stood_in["evidence"][0].startswith(
        "test_stood_in.Thread was patched with a MagicMock that the code called 1 time(s): "
        "the thread it asked for never ran")
    # the same patch, but the wait was for a real thread that was slow: a timeout
    real = result.diagnosis("test_result_of_a_slow_real_thread_beside_the_patch")
    assert real["category"] == "timeout"
    assert "mock-gap.patched-worker" not in rule_ids(real)



PATCHED_START = """
import threading
from unittest import mock


class Heartbeat:
    def __init__(self):
        self.thread = threading.Thread(target=lambda: None, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.thread.join(1)


def test_stop_after_a_patched_start():
    with mock.patch("threading.Thread.start"):
        beat = Heartbeat()
        beat.start()
        beat.stop()


def test_stop_without_a_start():
    Heartbeat().stop()
"""


def test_a_join_refused_because_a_patch_stood_in_for_the_start_is_the_mock_gap(chaostester):
    # threading.Thread.start is wrapped by the scope itself: the patch's original is that
    # wrapper, and what it wraps is what the patch replaced
    chaostester.pytester.makepyfile(test_patched_start=PATCHED_START)
    result = chaostester.run()
    stood_in = result.diagnosis("test_stop_after_a_patched_start")
    assert stood_in["category"] == "mock-gap"
    assert rule_ids(stood_in)[0] == "mock-gap.patched-worker"
    assert "Thread.start was patched with a MagicMock" in stood_in["evidence"][0]
    # the same refusal with no patch: the code joined a thread it never started
    unstarted = result.diagnosis("test_stop_without_a_start")
    assert unstarted["category"] == "lifecycle"
    assert "mock-gap.patched-worker" not in rule_ids(unstarted)

NONE_FROM_DOUBLE = """
from unittest import mock


def squares(items, pool):
    futures = [pool.submit(pow, item, 2) for item in items]
    return [future.result(timeout=2) for future in futures]


def first_words(lines, lookup):
    return [lookup.get(line).split()[0] for line in lines]


class Relay:
    def __init__(self):
        self.sock = self._connect()

    def _connect(self):
        raise OSError("no network in tests")

    def forward(self, line):
        self.sock.sendall(line.encode())


class Settings:
    def __init__(self):
        self.values = {}

    def host(self):
        return self.values.get("host").strip()


class InlinePool:
    def submit(self, fn, *args):
        fn(*args)


class FakeLookup:
    def get(self, key):
        return {"a": "alpha one"}.get(key)


def test_squares_on_an_inline_pool():
    assert squares([1, 2], InlinePool()) == [1, 4]


def test_words_from_a_fake_lookup_missing_a_key():
    assert first_words(["a", "b"], FakeLookup()) == ["alpha", "beta"]


def test_forward_with_the_connection_patched_out():
    with mock.patch.object(Relay, "_connect", return_value=None):
        Relay().forward("hello")


def test_settings_without_a_host_beside_the_patch():
    with mock.patch.object(Relay, "_connect", return_value=None):
        Relay()
        assert Settings().host() == "localhost"
"""


def test_a_none_a_double_gave_the_code_is_the_mock_gap(chaostester):
    chaostester.pytester.makepyfile(test_none=NONE_FROM_DOUBLE)
    result = chaostester.run()
    inline = result.diagnosis("test_squares_on_an_inline_pool")
    assert inline["category"] == "mock-gap"
    assert rule_ids(inline)[0] == "mock-gap.none-from-double"
    assert "pool.submit() of the test-defined InlinePool returns nothing" in \
        inline["evidence"][0]
    # a fake whose method returns a value: the None is the code's own (a missing key)
    lookup = result.diagnosis("test_words_from_a_fake_lookup_missing_a_key")
    assert "mock-gap.none-from-double" not in rule_ids(lookup)
    patched = result.diagnosis("test_forward_with_the_connection_patched_out")
    assert patched["category"] == "mock-gap"
    assert "Relay._connect was patched to return None" in patched["evidence"][0]
    # the same patch, but the None was looked up in code of another class
    other = result.diagnosis("test_settings_without_a_host_beside_the_patch")
    assert "mock-gap.none-from-double" not in rule_ids(other)


CLOSED_UNDER_LIB = """
import threading
from concurrent.futures import ThreadPoolExecutor


class Dispatcher:
    # a watchdog thread shuts the pool down when it sees no job running: between two jobs
    # of one run_all (made certain here with events)

    def __init__(self):
        self.pool = ThreadPoolExecutor(1)
        self.between = threading.Event()
        self.shut = threading.Event()
        threading.Thread(target=self.watchdog, name="watchdog").start()

    def watchdog(self):
        self.between.wait(5)
        self.pool.shutdown(wait=False)
        self.shut.set()

    def run_all(self, jobs):
        results = []
        for job in jobs:
            results.append(self.pool.submit(job).result(5))
            self.between.set()
            self.shut.wait(5)  # reading the next job's input
        return results


def close_when_drained(sock, drained):
    sock.close()
    drained.set()


def send_after(sock, drained, data):
    drained.wait(5)
    sock.sendall(data)
"""

CLOSED_UNDER = """
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from dispatch import Dispatcher, close_when_drained, send_after


def test_pool_shut_down_by_a_watchdog_thread():
    assert Dispatcher().run_all([int, float]) == [0, 0.0]


def test_pool_shut_down_by_a_watchdog_before_the_test_used_it():
    dispatcher = Dispatcher()
    dispatcher.between.set()
    assert dispatcher.shut.wait(5)
    dispatcher.run_all([int])


def test_socket_closed_by_a_sibling_task():
    here, there = socket.socketpair()
    drained = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        sending = pool.submit(send_after, here, drained, b"x")
        pool.submit(close_when_drained, here, drained)
        try:
            sending.result(5)
        finally:
            there.close()


def test_pool_shut_down_by_the_tests_own_thread():
    pool = ThreadPoolExecutor(1)
    stopped = threading.Event()

    def stop():
        pool.shutdown(wait=False)
        stopped.set()

    threading.Thread(target=stop).start()
    assert stopped.wait(5)
    pool.submit(pow, 2, 2)


def test_socket_closed_by_an_earlier_task_on_the_same_thread():
    here, there = socket.socketpair()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(here.close).result(5)
        try:
            pool.submit(here.sendall, b"x").result(5)
        finally:
            there.close()
"""


def test_what_another_thread_of_the_test_closed_under_a_user_is_a_race(chaostester):
    chaostester.pytester.makepyfile(dispatch=CLOSED_UNDER_LIB, test_closed_under=CLOSED_UNDER)
    result = chaostester.run()
    watchdog = result.diagnosis("test_pool_shut_down_by_a_watchdog_thread")
    assert watchdog["category"] == "race"
    assert rule_ids(watchdog)[0] == "race.closed-under-use"
    assert "self.pool (ThreadPoolExecutor) was shut down by thread 'watchdog' while thread " \
           "'MainThread' was using it" in watchdog["evidence"][0]
    sibling = result.diagnosis("test_socket_closed_by_a_sibling_task")
    assert sibling["category"] == "race"
    assert "(socket) was closed by thread 'ThreadPoolExecutor-" in sibling["evidence"][0]
    # the same shutdown by a thread of the test's own code, and a close by the thread that
    # then used it: their own lifecycle
    # a shutdown while nobody was using the pool: the use after it is the lifecycle mistake
    for own in ("test_pool_shut_down_by_the_tests_own_thread",
                "test_pool_shut_down_by_a_watchdog_before_the_test_used_it",
                "test_socket_closed_by_an_earlier_task_on_the_same_thread"):
        diagnosis = result.diagnosis(own)
        assert diagnosis["category"] == "lifecycle", (own, diagnosis)
        assert "race.closed-under-use" not in rule_ids(diagnosis)


PRODUCER_LIB = """
import threading
from concurrent.futures import ThreadPoolExecutor


class Forwarder:
    def __init__(self):
        self.sent = []
        self.stopping = False
        self.pool = ThreadPoolExecutor(1)

    def start(self, items):
        producer = threading.Thread(target=self.produce, args=(iter(items),),
                                    name="producer")
        producer.start()
        return producer

    def produce(self, items):
        while not self.stopping:
            item = next(items, None)
            if item is None:
                return
            self.pool.submit(self.sent.append, item)

    def stop(self):
        self.stopping = True
        self.pool.shutdown(wait=True)
"""

PRODUCER = """
import threading

from forwarding import Forwarder


def test_stop_while_the_producer_runs():
    forwarder = Forwarder()

    def feed():
        yield 1
        stopper = threading.Thread(target=forwarder.stop, name="stopper")
        stopper.start()
        stopper.join(5)
        yield 2

    forwarder.start(feed()).join(5)
    assert forwarder.sent == [1]


def test_producer_started_after_the_stop():
    forwarder = Forwarder()
    stopper = threading.Thread(target=forwarder.stop, name="stopper")
    stopper.start()
    stopper.join(5)
    forwarder.stopping = False
    forwarder.start([1]).join(5)
"""


def test_a_thread_that_died_of_a_pool_another_thread_shut_down_under_it_is_a_race(chaostester):
    # The producer thread died (pytest reports its exception) on a submit to a pool that the
    # stopper thread shut down while the producer was already in its loop: the scope knows
    # the thread and when it died, as for a pool task's error.
    chaostester.pytester.makepyfile(forwarding=PRODUCER_LIB, test_producer=PRODUCER)
    result = chaostester.run("-W", "error::pytest.PytestUnhandledThreadExceptionWarning")
    raced = result.diagnosis("test_stop_while_the_producer_runs")
    assert raced["category"] == "race", raced
    assert rule_ids(raced)[0] == "race.closed-under-use"
    assert "self.pool (ThreadPoolExecutor) was shut down by thread 'stopper' while thread " \
           "'producer' was using it" in raced["evidence"][0]
    assert {r["id"]: r["score"] for r in raced["rules"]}["lifecycle.unhandled-thread"] == 0.3
    # nearest negative: the pool was shut down before the producer thread started
    own = result.diagnosis("test_producer_started_after_the_stop")
    assert own["category"] == "lifecycle", own
    assert "race.closed-under-use" not in rule_ids(own)


POOL_CLOSED_UNDER_LIB = """
from multiprocessing.pool import ThreadPool


class Squarer:
    def __init__(self):
        self.pool = ThreadPool(2)

    def squares(self, numbers, pause=lambda: None):
        pool = self.pool
        pause()  # between taking the pool and using it
        return pool.map(abs, numbers)

    def reset(self):
        old, self.pool = self.pool, ThreadPool(2)
        old.close()
        old.join()

    def close(self):
        self.pool.close()
        self.pool.join()
"""

POOL_CLOSED_UNDER = """
import threading

from squaring import Squarer


def test_squares_while_another_thread_resets_the_pool():
    squarer, holding, reset = Squarer(), threading.Event(), threading.Event()

    def pause():
        holding.set()
        reset.wait(5)

    def resetter():
        holding.wait(5)
        squarer.reset()
        reset.set()

    thread = threading.Thread(target=resetter, name="resetter")
    thread.start()
    try:
        assert squarer.squares([-1, -2], pause) == [1, 2]
    finally:
        thread.join(5)
        squarer.close()


def test_squares_after_the_test_closed_the_pool():
    squarer = Squarer()
    squarer.pool.close()
    try:
        squarer.squares([-1])
    finally:
        squarer.pool.join()
"""


def test_a_multiprocessing_pool_another_thread_closed_under_a_user_is_a_race(chaostester):
    # multiprocessing's Pool (and its ThreadPool) refuses work after close() or terminate()
    # ("Pool not running"): the scope tells who closed it, as for the executors' shutdown.
    chaostester.pytester.makepyfile(squaring=POOL_CLOSED_UNDER_LIB,
                                    test_pool_closed=POOL_CLOSED_UNDER)
    result = chaostester.run()
    raced = result.diagnosis("test_squares_while_another_thread_resets_the_pool")
    assert raced["category"] == "race", raced
    assert rule_ids(raced)[0] == "race.closed-under-use"
    assert "pool (ThreadPool) was closed by thread 'resetter' while thread 'MainThread' was " \
           "using it" in raced["evidence"][0]
    # nearest negative: the test closed it itself, then used it
    own = result.diagnosis("test_squares_after_the_test_closed_the_pool")
    assert own["category"] == "lifecycle", own
    assert "race.closed-under-use" not in rule_ids(own)


STOPPED_UNDER_LIB = """
import asyncio
import subprocess
import sys
import threading

UPPER = "import sys\\nfor line in sys.stdin: print(line.strip().upper(), flush=True)"


class LoopThread:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro, pause=lambda: None):
        loop = self.loop
        pause()  # between taking the loop and scheduling on it
        return asyncio.run_coroutine_threadsafe(coro, loop).result(5)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Child:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", UPPER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def ask(self, text, pause=lambda: None):
        proc = self.proc
        pause()  # between taking the child and writing to it
        proc.stdin.write(text + "\\n")
        proc.stdin.flush()
        return proc.stdout.readline().strip()

    def restart(self):
        old, self.proc = self.proc, subprocess.Popen(self.proc.args, stdin=subprocess.PIPE,
                                                     stdout=subprocess.PIPE, text=True)
        old.kill()
        old.wait()
        old.stdin.close()
        old.stdout.close()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(5)
        self.proc.stdout.close()
"""

STOPPED_UNDER = """
import threading

from stopping import Child, LoopThread


async def answer():
    return 42


def _while_another_thread(action, name):
    holding, done = threading.Event(), threading.Event()

    def pause():
        holding.set()
        done.wait(5)

    def other():
        holding.wait(5)
        action()
        done.set()

    thread = threading.Thread(target=other, name=name)
    thread.start()
    return pause, thread


def test_call_while_another_thread_stops_the_loop():
    loop = LoopThread()
    pause, thread = _while_another_thread(loop.stop, "stopper")
    coro = answer()
    try:
        assert loop.call(coro, pause) == 42
    finally:
        thread.join(5)
        coro.close()


def test_ask_while_another_thread_restarts_the_child():
    child = Child()
    pause, thread = _while_another_thread(child.restart, "restarter")
    try:
        assert child.ask("hi", pause) == "HI"
    finally:
        thread.join(5)
        child.close()


def test_call_after_the_test_stopped_the_loop():
    loop = LoopThread()
    loop.stop()
    coro = answer()
    try:
        loop.call(coro)
    finally:
        coro.close()
"""


def test_a_loop_or_child_another_thread_stopped_under_a_user_is_a_race(chaostester):
    # An event loop closed, or a child process killed, by one thread of the test while
    # another had taken it and was about to use it: the scope tells who stopped it.
    chaostester.pytester.makepyfile(stopping=STOPPED_UNDER_LIB, test_stopped=STOPPED_UNDER)
    result = chaostester.run()
    loop = result.diagnosis("test_call_while_another_thread_stops_the_loop")
    assert loop["category"] == "race", loop
    assert rule_ids(loop)[0] == "race.closed-under-use"
    assert "(_UnixSelectorEventLoop) was closed by thread 'stopper'" in loop["evidence"][0]
    child = result.diagnosis("test_ask_while_another_thread_restarts_the_child")
    assert child["category"] == "race", child
    assert "proc (Popen) was stopped by thread 'restarter' while thread 'MainThread' was " \
           "using it" in child["evidence"][0]
    # nearest negative: the test stopped the loop itself before using it
    own = result.diagnosis("test_call_after_the_test_stopped_the_loop")
    assert own["category"] == "lifecycle", own
    assert "race.closed-under-use" not in rule_ids(own)


LAZY_START_LIB = """
import queue
import threading


class Flusher:
    # starts its thread on first use, without a lock around the check and the start

    def __init__(self):
        self._items = queue.Queue()
        self.running = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flusher", daemon=True)
        self._started = False

    def _run(self):
        self.running.set()
        while self._items.get() is not None:
            pass

    def send(self, item, pause=lambda: None):
        if not self._started:
            pause()  # between the check and the start
            self._thread.start()
            self._started = True
        self._items.put(item)

    def stop(self):
        self._items.put(None)
        self._thread.join(5)
        self._started = False
"""

LAZY_START = """
import threading
from concurrent.futures import ThreadPoolExecutor

from flushing import Flusher


def test_two_senders_start_the_flusher_once():
    flusher, both = Flusher(), threading.Barrier(2, timeout=5)

    def second():
        both.wait()
        flusher.running.wait(5)  # the first sender has started it

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(flusher.send, 1, both.wait)
        again = pool.submit(flusher.send, 2, second)
        first.result(5)
        again.result(5)


def test_the_flusher_sends_again_after_a_stop():
    flusher = Flusher()
    flusher.send(1)
    flusher.stop()
    flusher.send(2)
"""


def test_a_thread_two_threads_of_the_test_both_started_is_a_race(chaostester):
    # The machinery refused the second start ("threads can only be started once") of a
    # thread that another thread of the test had started and that still ran: both passed a
    # not-started check. Restarting a thread whose run ended is the lifecycle mistake.
    chaostester.pytester.makepyfile(flushing=LAZY_START_LIB, test_lazy=LAZY_START)
    result = chaostester.run()
    raced = result.diagnosis("test_two_senders_start_the_flusher_once")
    assert raced["category"] == "race", raced
    assert rule_ids(raced)[0] == "race.started-twice"
    assert "thread 'flusher' was started by thread 'ThreadPoolExecutor-" in \
        raced["evidence"][0]
    restarted = result.diagnosis("test_the_flusher_sends_again_after_a_stop")
    assert restarted["category"] == "lifecycle", restarted
    assert rule_ids(restarted)[0] == "lifecycle.already-started"
    assert "race.started-twice" not in rule_ids(restarted)


SET_LATE_LIB = """
import threading


class Beat:
    def __init__(self, read):
        self.beats = 0
        self._read = read
        self._thread = threading.Thread(target=self._run, name="beat")
        self._thread.start()
        self._read.wait(5)  # the order the race takes when it goes wrong, made certain
        self.interval = 0.01

    def _run(self):
        try:
            self.beats += int(1 / self.interval)
        finally:
            self._read.set()


class Typo(Beat):
    def _run(self):
        try:
            self.beats += int(1 / self.intervall)
        finally:
            self._read.set()
"""

SET_LATE = """
import threading

from beat import Beat, Typo


class Probe:
    def __init__(self, read):
        self.ticks = 0
        self._read = read
        self._thread = threading.Thread(target=self._run, name="probe")
        self._thread.start()
        self._read.wait(5)
        self.interval = 0.01

    def _run(self):
        try:
            self.ticks += int(1 / self.interval)
        finally:
            self._read.set()


def test_beats_once_started():
    beat = Beat(threading.Event())
    beat._thread.join(5)
    assert beat.beats >= 1


def test_beats_with_a_misspelt_attribute():
    beat = Typo(threading.Event())
    beat._thread.join(5)
    assert beat.beats >= 1


def test_the_tests_own_thread_reads_too_early():
    probe = Probe(threading.Event())
    probe._thread.join(5)
    assert probe.ticks >= 1
"""


def test_a_thread_that_read_what_its_owner_set_later_is_a_race(chaostester):
    chaostester.pytester.makepyfile(beat=SET_LATE_LIB, test_set_late=SET_LATE)
    result = chaostester.run()
    late = result.diagnosis("test_beats_once_started")
    assert late["category"] == "race"
    assert late["evidence"][0].startswith("thread 'beat' died reading Beat.interval while "
                                          "thread 'MainThread' was still in its __init__; the "
                                          "object has it now")
    # the same death on an attribute nobody ever sets: not an order between threads
    typo = result.diagnosis("test_beats_with_a_misspelt_attribute")
    assert "race.set-late" not in rule_ids(typo)
    # the same order in the test's own code: the test's mistake, not the code's race
    own = result.diagnosis("test_the_tests_own_thread_reads_too_early")
    assert "race.set-late" not in rule_ids(own)


SQLITE_LOCKED_LIB = """
import queue
import sqlite3
import threading


def connect(path):
    conn = sqlite3.connect(path, timeout=0.2, check_same_thread=False)
    conn.execute("CREATE TABLE IF NOT EXISTS rows (v TEXT)")
    conn.commit()
    return conn


class Recorder:
    def __init__(self, path):
        self.conn = connect(path)
        self.checks = queue.Queue()
        self.checker = threading.Thread(target=self.check_loop, args=(path,), daemon=True)
        self.checker.start()

    def check_loop(self, path):
        conn = connect(path)
        while (item := self.checks.get()) is not None:
            value, done, errors = item
            try:
                with conn:
                    conn.execute("INSERT INTO rows VALUES (?)", (value + ":checked",))
            except sqlite3.Error as error:
                errors.append(error)
            done.set()

    def record(self, value):
        with self.conn:
            self.conn.execute("INSERT INTO rows VALUES (?)", (value,))
            done, errors = threading.Event(), []
            self.checks.put((value, done, errors))
            done.wait(5)
            if errors:
                raise errors[0]


def hold_lock(path, locked, release):
    conn = connect(path)
    with conn:
        conn.execute("INSERT INTO rows VALUES ('import')")
        locked.set()
        release.wait(5)  # a long import, made certain
    conn.close()
"""

SQLITE_LOCKED = """
import threading

from store import Recorder, connect, hold_lock


def test_write_while_the_recorder_waits_for_its_checker(tmp_path):
    recorder = Recorder(str(tmp_path / "db.sqlite"))
    recorder.record("m1")


def test_write_while_an_import_holds_the_lock(tmp_path):
    path = str(tmp_path / "db.sqlite")
    connect(path).close()
    locked, release = threading.Event(), threading.Event()
    importer = threading.Thread(target=hold_lock, args=(path, locked, release))
    importer.start()
    try:
        assert locked.wait(5)
        conn = connect(path)
        with conn:
            conn.execute("INSERT INTO rows VALUES ('live')")
    finally:
        release.set()
        importer.join(5)
"""


def test_database_locked_is_a_race_only_when_the_waiter_held_the_lock_itself(chaostester):
    chaostester.pytester.makepyfile(store=SQLITE_LOCKED_LIB, test_locked=SQLITE_LOCKED)
    result = chaostester.run()
    held = result.diagnosis("test_write_while_the_recorder_waits_for_its_checker")
    assert held["category"] == "race"
    assert "`with self.conn:` in record (store.py:" in held["evidence"][0]
    # the same lock wait behind another writer's long transaction: its busy timeout ran out
    behind = result.diagnosis("test_write_while_an_import_holds_the_lock")
    assert behind["category"] == "timeout"
    assert rule_ids(behind)[0] == "timeout.busy-timeout"


EARLY = """
import asyncio


def test_result_checked_before_the_task_finished():
    async def main():
        task = asyncio.create_task(asyncio.sleep(10))
        await asyncio.sleep(0)
        try:
            assert task.done()
        finally:
            task.cancel()
    asyncio.run(main())


def test_consumer_waiting_for_work_is_idle():
    async def main():
        jobs = asyncio.Queue()

        async def consume():
            while True:
                await jobs.get()

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0)
        try:
            assert jobs.qsize() == 1
        finally:
            consumer.cancel()
    asyncio.run(main())


def test_results_after_the_consumer_was_stopped():
    async def main():
        jobs, done = asyncio.Queue(), []

        async def consume():
            while True:
                done.append(await jobs.get())

        consumer = asyncio.create_task(consume())
        consumer.cancel()  # before the work arrives
        await asyncio.sleep(0)
        jobs.put_nowait("job")
        await asyncio.sleep(0)
        assert len(done) == 1
    asyncio.run(main())
"""


def test_a_task_of_asyncio_sleep_the_test_made_is_work_in_progress(chaostester):
    chaostester.pytester.makepyfile(test_early=EARLY)
    result = chaostester.run()
    early = result.diagnosis("test_result_checked_before_the_task_finished")
    assert early["category"] == "timeout"
    assert "task 'sleep' busy was still at work" in early["evidence"][0]
    # before: the AssertionError was read as asyncio refusing a call (its module was last)
    assert "lifecycle.refused-by-state" not in rule_ids(early)
    # a task waiting on a queue for work is idle, as a pool thread is: not work in progress
    idle = result.diagnosis("test_consumer_waiting_for_work_is_idle")
    assert "timeout.work-in-progress" not in rule_ids(idle)
    # ... nor is it a cancelled one: the finally: that cancelled it ran after the assert
    assert "lifecycle.cancelled" not in rule_ids(idle)
    stopped = result.diagnosis("test_results_after_the_consumer_was_stopped")
    assert stopped["category"] == "lifecycle"
    assert "lifecycle.cancelled" in rule_ids(stopped)


REENTERED = """
import threading

import pytest


class Registry:
    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, item):
        with self.lock:
            self._store(item)

    def _store(self, item):
        with self.lock:  # taken again by the thread that holds it
            self.items.append(item)


@pytest.mark.timeout(1)
def test_add_from_the_test_thread():
    registry = Registry()
    registry.add(1)


@pytest.mark.timeout(1)
def test_add_from_a_worker_thread():
    registry = Registry()
    worker = threading.Thread(target=registry.add, args=(1,), daemon=True)
    worker.start()
    worker.join()


@pytest.mark.timeout(1)
def test_add_while_another_thread_holds_the_lock():
    registry = Registry()
    holding, release = threading.Event(), threading.Event()

    def hold():
        with registry.lock:
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    holding.wait(10)
    try:
        with registry.lock:
            registry.items.append(1)
    finally:
        release.set()
"""


def test_a_thread_waiting_for_a_lock_it_holds_itself_is_a_race(chaostester):
    chaostester.pytester.makepyfile(test_reentered=REENTERED)
    result = chaostester.run()
    for name in ("test_add_from_the_test_thread", "test_add_from_a_worker_thread"):
        stuck = result.diagnosis(name)
        assert stuck["category"] == "race", name
        assert stuck["evidence"][0].startswith("`with self.lock:` in _store (test_reentered.py:"), \
            stuck["evidence"]
        assert "already holds at `with self.lock:` in add" in stuck["evidence"][0]
        assert any("RLock" in s["text"] for s in stuck["suggestions"])
    # the lock is held by another thread, which would let go: a wait that ran out
    held = result.diagnosis("test_add_while_another_thread_holds_the_lock")
    assert held["category"] == "timeout"
    assert "race.self-deadlock" not in rule_ids(held)


def test_a_connection_to_the_tests_own_server_is_not_a_missed_patch(chaostester):
    # A test that patches one method and talks to a server it runs in-process connects to
    # itself; a connection to a port nobody here listens on is the real service the double
    # did not stand in for.
    chaostester.pytester.makepyfile(
        test_served="""
        import socket
        import unittest
        from unittest import mock

        import pytest

        class Handler:
            def get(self):
                return "real"

        @pytest.fixture
        def server():
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            yield listener
            listener.close()

        def test_own_server(server):
            with mock.patch.object(Handler, "get", return_value="double"):
                socket.create_connection(server.getsockname(), timeout=5).close()
                assert Handler().get() == "real"

        class TestServed(unittest.TestCase):  # tearDown closes it before the failure is read
            def setUp(self):
                self.listener = socket.socket()
                self.listener.bind(("127.0.0.1", 0))
                self.listener.listen()

            def tearDown(self):
                self.listener.close()

            def test_fetch(self):
                with mock.patch.object(Handler, "get", return_value="double"):
                    socket.create_connection(self.listener.getsockname(), timeout=5).close()
                    self.assertEqual(Handler().get(), "real")

        def test_service_elsewhere():
            unused = socket.socket()
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
            unused.close()
            with mock.patch.object(Handler, "get", return_value="double"):
                with pytest.raises(ConnectionRefusedError):
                    socket.create_connection(("127.0.0.1", port), timeout=5)
                assert Handler().get() == "real"
        """
    )
    run = chaostester.run("-p", "no:randomly")
    run.result.assert_outcomes(failed=3)
    for name in ("::test_own_server", "::TestServed::test_fetch"):
        own = [rule["id"] for rule in run.diagnosis(name)["rules"]]
        assert "mock-gap.real-resources" not in own, name
    elsewhere = [rule["id"] for rule in run.diagnosis("::test_service_elsewhere")["rules"]]
    assert "mock-gap.real-resources" in elsewhere
