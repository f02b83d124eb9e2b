from __future__ import annotations

import email.message
import http.server
import io
import os
import signal
import subprocess
import sys
import threading
import urllib.request
import urllib.response
from pathlib import Path
from unittest.mock import MagicMock, patch

import pytest
import supervisor
from supervisor import (
    ChildWorker,
    Host,
    ProcessWorker,
    RestartingWorker,
    Supervisor,
    Worker,
    backoff,
    probe,
    remote_status,
    start_heartbeat,
)
from supervisor.health import shed_load

TUNE_ROOT = Path(supervisor.__file__).resolve().parent.parent
SLEEPER = [sys.executable, "-c", "import time; time.sleep(3)"]


def idle_job(stop: threading.Event) -> supervisor.Job:
    return lambda: stop.wait(0.01)


@pytest.fixture
def status_server():
    class Status(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"workers=3"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Status)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="status-server")
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/status"
    server.shutdown()
    thread.join(2)
    server.server_close()


def test_worker_starts_and_stops():
    worker = Worker("w1", idle_job(threading.Event()))
    worker.start()
    worker.stop()
    assert worker.state == "stopped"
    assert not worker.thread.is_alive()


def test_capacity_of_a_real_host():
    assert Supervisor().capacity(Host("db1", cpus=[0, 1, 2, 3])) == 8


# Lu et al. ASPLOS 2008 (deadlock, lock-order inversion) and the Python threading docs
# (Lock.acquire(timeout=)): the supervisor takes registry then worker, the worker reports with
# worker then registry; each side holds its first lock and gives up on the second.
def test_restart_while_worker_reports():
    sup = Supervisor(lock_wait=0.3)
    worker = sup.add(Worker("w1", idle_job(threading.Event())))
    both_hold_one = threading.Barrier(2, timeout=2)
    errors: list[BaseException] = []

    def run(call: supervisor.Job) -> None:
        try:
            call()
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, name="supervisor-side", args=(
            lambda: sup.mark_restarting("w1", between=both_hold_one.wait),)),
        threading.Thread(target=run, name="worker-side", args=(
            lambda: sup.report(worker, "checkpoint", between=both_hold_one.wait),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2)
    if errors:
        raise errors[0]
    assert worker.state == "restarting"


# Python threading docs (start() "must be called at most once per thread object") and the
# issue threads that hit "threads can only be started once" when restarting a worker object.
def test_worker_can_be_restarted():
    worker = Worker("w1", idle_job(threading.Event()))
    worker.start()
    try:
        worker.restart()
        assert worker.state == "running"
    finally:
        worker.stop()


# Python multiprocessing docs (Process.terminate: exit handlers and finally clauses are not run;
# a queue the process was using may lose data): stopping kills the child before it writes its
# final checkpoint, and the parent then reads the queue.
def test_final_checkpoint_is_collected():
    child = ProcessWorker()
    child.start()
    try:
        assert child.wait_ready(2)
        child.stop()
        assert child.drain() == ["final: 3 jobs"]
    finally:
        child.close()


# Python threading docs ("daemon threads are abruptly stopped at shutdown; their resources may
# not be released properly"): the heartbeat lines sit in the buffer of a daemon flusher when the
# process exits.
def test_heartbeat_is_on_disk_after_exit(tmp_path):
    log = tmp_path / "heartbeat.log"
    script = ("import sys, pathlib; from supervisor import HeartbeatLog; "
              "HeartbeatLog(pathlib.Path(sys.argv[1]), interval=5).beat('started')")
    env = {**os.environ, "PYTHONPATH": str(TUNE_ROOT)}
    subprocess.run([sys.executable, "-c", script, str(log)], env=env, timeout=5, check=True)
    assert log.exists()
    assert log.read_text() == "started\n"


# Luo et al. FSE 2014, Async Wait (join with a bound, then the thread is assumed gone): the
# worker is inside a job that does not look at the stop flag, and join(0.1) returns first.
def test_stop_ends_the_worker_thread():
    release = threading.Event()
    worker = Worker("w1", lambda: release.wait(2))
    worker.start()
    try:
        worker.stop(join_timeout=0.1)
        assert not worker.thread.is_alive()
    finally:
        release.set()
        worker.thread.join(2)


# python/cpython docs, Popen.communicate(timeout=) (the child is not killed by the expiry; the
# caller must kill it) and Eck et al. FSE 2019 (test case timeout): a health-check command that
# warms up for longer than the probe allows.
def test_health_probe_answers():
    cmd = [sys.executable, "-c", "import time; time.sleep(3); print('ok')"]
    assert probe(cmd, within=0.2) == "ok"


# Eck et al. FSE 2019 (too restrictive range): the supervisor waits its restart delay (50 ms) by
# design; the test allows 5 ms from crash to restart.
def test_crashed_worker_is_restarted_at_once():
    calls = [0]

    def job() -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise OSError("worker lost its connection")

    worker = RestartingWorker(job, delay=0.05)
    worker.run()
    assert worker.started_at[1] - worker.crashed_at[0] < 0.005


# python/cpython docs, unittest.mock ("MagicMock ... __len__: 0"): the host double is configured
# through a method the supervisor does not call, and len() of the attribute it reads is 0.
def test_capacity_is_two_per_cpu():
    host = MagicMock(name="host")
    host.cpu_count.return_value = 4
    assert Supervisor().capacity(host) == 8


# python/cpython docs, unittest.mock "Where to patch": health.py imported getloadavg by name, so
# patching os.getloadavg leaves the real function in place and the real load is read.
def test_overloaded_host_sheds_load():
    with patch("os.getloadavg", return_value=(5000.0, 0.0, 0.0)):
        assert shed_load(threshold=1000.0)


# Lam et al. ISSTA 2019 (iDFlakies) polluter: a test stubs the network by installing a global
# urllib opener and never uninstalls it.
def test_status_page_parsing_without_network():
    class Canned(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> object:
            reply = urllib.response.addinfourl(io.BytesIO(b"workers=0"),
                                               email.message.Message(), req.full_url, 200)
            reply.msg = "OK"
            return reply

    urllib.request.install_opener(urllib.request.build_opener(Canned))
    assert remote_status("http://status.invalid/") == "workers=0"


def test_status_page_reports_workers(status_server):
    assert remote_status(status_server) == "workers=3"


# An ordinary bug (sequential code): the exponent is the 1-based attempt, so the first restart
# already waits twice the base delay.
def test_first_restart_waits_the_base_delay():
    assert backoff(1, base=0.1) == pytest.approx(0.1)


# CPython regrtest env-changed check (Lib/test/libregrtest): a daemon heartbeat thread started and
# never stopped.
def test_heartbeat_thread_runs():
    thread = start_heartbeat(period=60.0)
    assert thread.is_alive()
    assert thread.daemon


# Lam et al. ISSTA 2019 polluter: SIGTERM ignored for a reload test and never restored; an
# ignored signal stays ignored in every child started afterwards.
def test_reload_survives_a_stray_term():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.kill(os.getpid(), signal.SIGTERM)
    assert Supervisor().workers == {}


def test_child_worker_stops_on_request():
    child = ChildWorker(SLEEPER)
    assert child.stop(grace=0.3) == "terminated"
