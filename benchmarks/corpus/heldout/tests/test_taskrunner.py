from __future__ import annotations

import os
import threading
import time
import warnings
from unittest.mock import Mock

import pytest
from taskrunner import Job, Scheduler, job_summary, next_run, run_all, start_pool
from taskrunner.scheduler import expand, parse_interval
from taskrunner.signals import install_reload_handler
from taskrunner.workers import Slots, records, rotate


@pytest.fixture
def sched():
    s = Scheduler()
    yield s
    if s.is_running():
        s.stop()


def test_due_job_runs(sched):
    sched.every(0.0, lambda: None, "tick")
    sched.run_due()
    assert sched.history == ["tick"]


def test_parse_interval_minutes():
    assert parse_interval("15m") == 900


# Luo et al. FSE 2014 "Async Wait": an unbounded wait for a job that is not due during the test;
# the per-test limit of the run stops it.
@pytest.mark.timeout(0.5)
def test_nightly_job_is_reported(sched):
    sched.every(10.0, lambda: None, "nightly")
    sched.start()
    sched.wait_for("nightly")
    assert "nightly" in sched.history


# python-trio/trio#1715: the run-wide per-test limit is hit only on a busy machine.
@pytest.mark.timeout(0.6)
def test_manual_run_of_backup_job(sched, contended):
    job = Job("backup", 60.0, lambda: time.sleep(1.0 if contended else 0.05))
    sched.run_job_now(job)
    assert sched.history == ["backup"]


# getsentry/snuba#1502 review: the result of a timed wait is ignored and the test carries on as
# if the scheduler had started.
def test_heartbeat_runs_after_start():
    scheduler = Scheduler(warmup=0.3)
    scheduler.every(0.0, lambda: None, "heartbeat")
    scheduler.start()
    scheduler.started.wait(0.1)
    time.sleep(0.05)
    scheduler.stop()
    assert "heartbeat" in scheduler.history


# bpo-32692 family: join(timeout) returns while the thread is still busy, and the test asserts it
# stopped.
def test_stop_waits_for_running_job():
    scheduler = Scheduler()
    scheduler.every(0.0, lambda: time.sleep(0.5), "export")
    scheduler.start()
    time.sleep(0.05)
    scheduler.stop(join_timeout=0.1)
    assert not scheduler.is_running()


# "cannot join thread before it is started": the shutdown path runs after a failed startup.
def test_shutdown_after_failed_startup():
    scheduler = Scheduler()
    scheduler.every(1.0, lambda: None, "sync")
    scheduler.stop()
    assert not scheduler.is_running()


# python/cpython issue family "A thread initializer failed, the thread pool is not usable
# anymore" (BrokenThreadPool).
def test_pool_workers_connect_on_start():
    def connect() -> None:
        raise ConnectionRefusedError("database not reachable")

    pool = start_pool(connect)
    try:
        assert pool.submit(lambda: "ok").result(timeout=2) == "ok"
    finally:
        pool.shutdown(wait=True)


# pytest's unhandled-thread-exception reports (pyzeebe#116, cylc-flow#4706): a job raises on
# the scheduler's own thread.
def test_job_runs_on_scheduler_thread(sched):
    calls = []

    def flaky_export() -> None:
        calls.append(1)
        raise KeyError("export_dir")

    sched.every(0.0, flaky_export, "export")
    sched.start()
    deadline = time.monotonic() + 1
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert calls


# Silva et al. ICSME 2020 (Shaker): even distribution of tasks over workers asserted while one
# task is much slower than the rest.
def test_tasks_spread_evenly_over_workers():
    tasks = [lambda: time.sleep(0.2)] + [lambda: time.sleep(0.001) for _ in range(99)]
    report = run_all(tasks, workers=4)
    assert sorted(report.by_worker.values()) == [25, 25, 25, 25]


# arXiv 2310.12132 family: a success-rate floor while one dependency flaps; the runner
# isolates the failures as designed.
def test_success_rate_with_flapping_dependency():
    def make(index: int):
        def task() -> None:
            if index % 10 == 3:
                raise ConnectionResetError("dependency flapped")
        return task

    report = run_all([make(i) for i in range(50)], workers=4)
    assert report.succeeded / report.total >= 0.95


# A double release of a bounded slot (check-then-act between a worker and a watchdog thread).
def test_watchdog_frees_stuck_slot():
    slots = Slots(1)
    probe_started, worker_done = threading.Event(), threading.Event()

    def job() -> None:
        probe_started.wait(1)

    def worker() -> None:
        slots.run("export", job)
        worker_done.set()

    thread = threading.Thread(target=worker)
    thread.start()
    deadline = time.monotonic() + 1
    while "export" not in slots.running and time.monotonic() < deadline:
        time.sleep(0.005)
    slots.watchdog("export", lambda: (probe_started.set(), worker_done.wait(1)))
    thread.join(2)
    assert slots.running == set()


# Time-of-check to time-of-use on a file (openfollowapp/openfollow#62 shape): two rotations
# started together both see the log and both try to move it.
def test_concurrent_rotation(tmp_path, contended):
    log = tmp_path / "app.log"
    log.write_text("line\n")
    start = threading.Barrier(2, timeout=2)
    errors: list[BaseException] = []

    def rotator() -> None:
        if contended:
            start.wait()
        try:
            rotate(log)
        except OSError as error:
            errors.append(error)

    first, second = threading.Thread(target=rotator), threading.Thread(target=rotator)
    first.start()
    if not contended:
        first.join(2)
    second.start()
    first.join(2)
    second.join(2)
    if errors:
        raise errors[0]
    assert (tmp_path / "app.log.1").exists()


# python/cpython#98362 (PEP 479): a side_effect list runs out inside a generator and surfaces
# as "generator raised StopIteration".
def test_records_reads_every_page():
    reader = Mock()
    reader.read.side_effect = [["a", "b"], ["c"]]
    assert list(records(reader)) == ["a", "b", "c"]


def test_job_summary_mentions_last_run():
    assert job_summary({"name": "sync", "last_run_at": 12.0}) == "sync (last run 12s ago)"


def test_next_run_adds_interval():
    assert next_run(Job("sync", 60.0, lambda: None, last=100.0)) == 160.0


def test_parse_interval_compound():
    assert parse_interval("1h30m") == 5400


def test_every_fifteen_minutes_fires_four_times_an_hour():
    assert len(expand("*/15")) == 4


def test_detached_job_runs_on_its_own_thread(sched):
    job = Job("report", 1.0, lambda: "done")
    sched.run_detached(job).join(2)
    assert sched.history == ["report"]


# A scheduler started by a test and never stopped.
def test_scheduler_keeps_ticking():
    scheduler = Scheduler(tick=0.02).start()
    scheduler.every(0.0, lambda: None, "noop")
    time.sleep(0.1)
    assert "noop" in scheduler.history


# A SIGHUP handler installed and not restored.
def test_reload_handler_on_sighup():
    reloads = []
    install_reload_handler(lambda: reloads.append(1))
    os.kill(os.getpid(), __import__("signal").SIGHUP)
    deadline = time.monotonic() + 1
    while not reloads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reloads == [1]


# A warnings filter added for the rest of the process.
def test_resource_warnings_are_ignored_for_sockets():
    warnings.filterwarnings("ignore", category=ResourceWarning)


# An environment variable set for the node name and left.
def test_node_name_from_environment():
    os.environ["TASKRUNNER_NODE"] = "node-7"
    assert os.environ["TASKRUNNER_NODE"] == "node-7"


# A process-wide excepthook installed once by the first scheduler that asks for crash reports:
# later schedulers' crashes go to the first one's list.
def test_crash_reports_are_collected():
    scheduler = Scheduler(report_crashes=True)
    job = Job("explode", 1.0, lambda: 1 / 0)
    scheduler.run_detached(job).join(2)
    assert len(scheduler.crashes) == 1


def test_second_scheduler_reports_its_own_crash():
    scheduler = Scheduler(report_crashes=True)
    job = Job("corrupt", 1.0, lambda: [][1])
    scheduler.run_detached(job).join(2)
    assert [type(error) for error in scheduler.crashes] == [IndexError]
