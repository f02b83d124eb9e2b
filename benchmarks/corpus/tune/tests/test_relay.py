from __future__ import annotations

import contextlib
import multiprocessing as mp
import threading
from concurrent.futures import ThreadPoolExecutor
from unittest.mock import patch

from relay import (
    DEFAULT_CHANNEL,
    Channel,
    Dispatcher,
    Flusher,
    Heartbeat,
    Relay,
    Sender,
    Workers,
    batches,
    collect_replies,
    gather,
    settings,
    staged,
)
from relay.child import in_background, in_process, run_helper


# Lu et al., ASPLOS 2008 (order violation): the pool thread that sends the last queued message
# closes the shared channel as soon as the queue is empty, while another pool thread that took
# an earlier, larger message is still serialising it; its send then fails on a closed socket.
def test_sender_delivers_every_message():
    channel = Channel()
    Sender(channel, workers=2).send_all(["big:daily-report", "ping"])
    assert {channel.read(), channel.read()} == {b'{"m": "big:daily-report"}', b'{"m": "ping"}'}


# Lu et al., ASPLOS 2008 (order violation; the Mozilla nsThread init case): the heartbeat thread
# starts before the constructor has set the interval it reads.
def test_heartbeat_beats_while_running():
    beat = Heartbeat(0.01)
    stopped = threading.Event()
    stopped.wait(0.2)
    beat.stop()
    assert beat.beats >= 3


# Lu et al., ASPLOS 2008 (atomicity violation): the idle watchdog reads "no job active" in the
# gap between two jobs of one dispatch and shuts the pool down under the dispatcher.
def test_dispatcher_runs_every_job():
    assert Dispatcher().dispatch_many([1, 2, 3]) == [2, 4, 6]


# Luo et al., FSE 2014 (async wait): an append may wait 100 ms for the log lock, but the flusher
# holds it through an fsync of half a second; nothing is wrong with the locking.
def test_append_waits_briefly_during_flush(tmp_path):
    flusher = Flusher(str(tmp_path / "records.log"))
    flusher.buffer = ["a", "b"]
    worker = flusher.flush_async()
    try:
        acquired = flusher.lock.acquire(timeout=0.1)
        assert acquired
        flusher.lock.release()
    finally:
        worker.join(timeout=5)


# Luo et al., FSE 2014 (async wait): the first reply is awaited for 100 ms, but the encoder takes
# 150 ms per reply.
def test_first_reply_arrives_promptly():
    replies = collect_replies(producers=2, per_producer=0.15)
    assert replies.get(timeout=0.1).startswith("reply-")


# Luo et al., FSE 2014 (async wait): both pool workers are busy with 0.6 s jobs, so the third job
# has not started when its 0.2 s result wait ends.
def test_short_job_is_not_stuck_behind_long_ones():
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = gather(pool, [0.6, 0.6, 0.01])
        assert futures[2].result(timeout=0.2) == 0.01


# Luo et al., FSE 2014 (async wait): the barrier gives every worker 0.3 s to check in; one worker
# takes 0.6 s to load its model.
def test_all_workers_check_in():
    workers = Workers(4, start_delays=[0.0, 0.0, 0.6])
    workers.start()
    workers.barrier.wait()
    assert workers.barrier.n_waiting == 0


# unittest.mock docs, "where to patch": patching threading.Thread in the module under test (to
# check the daemon flag) also turns start() into a no-op, so no result ever arrives.
def test_background_work_runs_on_a_daemon_thread():
    with patch("relay.child.threading.Thread") as thread_cls:
        results = in_background(sum, [1, 2])
        assert thread_cls.call_args.kwargs["daemon"] is True
        assert results.get(timeout=0.5) == 3


# Mock-based test that configured communicate() but not returncode: a MagicMock's returncode is
# truthy, so the helper reports a failed child that never existed.
def test_helper_output_is_parsed():
    with patch("relay.child.subprocess.Popen") as popen:
        popen.return_value.communicate.return_value = ('{"ok": true}', None)
        assert run_helper(["print(1)"]) == {"ok": True}


class InlinePool:
    """Runs submitted work at once, to keep the test single-threaded."""

    def submit(self, fn, *args):
        fn(*args)


# A hand-written fake pool whose submit() returns nothing: the code under test expects a future.
def test_staged_squares_inline():
    assert staged([1, 2, 3], InlinePool()) == [1, 4, 9]


# A patch that stubs the connection out returns None, which the code then uses as a socket.
def test_forward_writes_one_line():
    with patch.object(Relay, "_connect", return_value=None):
        relay = Relay("collector.internal", 5140)
        relay.forward("hello")


def test_default_batches_hold_fifty():
    assert [len(b) for b in batches([str(i) for i in range(120)])] == [50, 50, 20]


# Polluter: sets the module-level batch size for a slow link and never puts it back.
def test_small_batches_for_slow_links():
    settings.BATCH_SIZE = 1
    assert batches(["a", "b"]) == [["a"], ["b"]]


# Victim of test_small_batches_for_slow_links (Gruber et al., ICST 2021: a module attribute
# changed by an earlier test).
def test_report_fits_three_batches():
    assert len(batches([str(i) for i in range(120)])) == 3


# Polluter: closes the module's default channel instead of a channel of its own.
def test_channel_closes_cleanly():
    DEFAULT_CHANNEL.send(b"bye")
    assert DEFAULT_CHANNEL.read() == b"bye"
    DEFAULT_CHANNEL.close()


# Victim of test_channel_closes_cleanly (iDFlakies, Lam et al. 2019: shared state left closed
# by an earlier test).
def test_default_channel_round_trip():
    DEFAULT_CHANNEL.send(b"hello")
    assert DEFAULT_CHANNEL.read() == b"hello"


def _exit_cleanly() -> None:
    pass


# Polluter: switches the process-wide start method to spawn and leaves it there.
def test_helper_runs_under_spawn():
    mp.set_start_method("spawn", force=True)
    assert in_process(_exit_cleanly) == 0


# Victim of test_helper_runs_under_spawn (pytest-dev/pytest-xdist#1108 and CPython's own test
# suite: a start method forced by an earlier test): a local function cannot be pickled for a
# spawned child.
def test_local_task_runs_in_a_process():
    def task() -> None:
        pass

    assert in_process(task) == 0


# Django docs, "database is locked" (and SQLite's busy_timeout): a connection waits 0.2 s for
# the write lock while a backlog import holds it for half a second; both do what they should.
def test_delivery_is_journaled_during_import(tmp_path):
    from relay.journal import bulk_import, connect

    path = str(tmp_path / "journal.db")
    started = threading.Event()
    importer = threading.Thread(target=bulk_import, args=(path, ["a", "b", "c", "d", "e"],
                                                          started), name="backlog-import")
    importer.start()
    try:
        assert started.wait(5)
        conn = connect(path, timeout=0.2)
        try:
            with conn:
                conn.execute("INSERT INTO sent VALUES ('live')")
        finally:
            conn.close()
    finally:
        importer.join(5)


# Luo et al., FSE 2014 (deadlock across connections): record() holds the write lock while it
# waits for the checker thread, whose own insert needs that lock.
def test_delivery_is_checked_before_commit(tmp_path):
    from relay.journal import Recorder

    recorder = Recorder(str(tmp_path / "journal.db"))
    try:
        recorder.record("m1")
    finally:
        recorder.close()


# Polluter: a strict render of a report with an empty row makes the shared pool's worker abort,
# which breaks the module's pool for every later caller.
def test_strict_render_rejects_empty_rows():
    from concurrent.futures.process import BrokenProcessPool

    from relay.render import render

    with contextlib.suppress(BrokenProcessPool):
        render(["b", ""], strict=True)


# Victim of test_strict_render_rejects_empty_rows (python/cpython#82212 and pytest-xdist
# reports: "A process in the process pool was terminated abruptly" after an earlier test
# crashed a worker of a module-level pool).
def test_report_renders_sorted():
    from relay.render import render

    assert render(["b", "a"]) == "a\nb"
