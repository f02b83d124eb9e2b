"""Worker lifecycle: state transitions, configuration, named pools, the affinity helper."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from poolsvc import WorkerPool, WorkerStateMachine, configure
from poolsvc.affinity import AffinityClient


def test_worker_state_machine_handles_all_transitions():
    sm = WorkerStateMachine()
    sm.to("ready")
    with ThreadPoolExecutor(1, thread_name_prefix="task") as runner:  # as the pool runs tasks
        runner.submit(sm.run_one_task).result(timeout=2)
    assert sm.health_check()
    sm.to("stopping")
    sm.to("stopped")

    # starting->ready, ready->busy, busy->ready, ready->stopping, stopping->stopped, plus the
    # health check the author counted; but run_one_task runs a health check of its own.
    assert len(sm.transition_history) == 6


def test_pool_with_session_affinity(make_pool):
    configure(session_affinity=True)  # changes the default for every later pool, too
    pool = make_pool("sticky", adapter=None)

    assert pool.status()["session_affinity"] == {"sessions": 0, "hits": 0, "misses": 0}


def test_pool_can_be_configured_with_basic_workers(make_pool):
    basic = make_pool("basic")

    assert basic.status()["session_affinity"] == {}


def test_session_bindings_are_shared(affinity_service):
    affinity_service.start()
    client = AffinityClient(affinity_service.address)

    assert client.bind("s1", worker=1) == 1
    assert client.bind("s1", worker=0) == 1


def test_handles_affinity_errors_gracefully(affinity_service):
    # The service fixture reserves the address; this test forgot to start() it.
    client = AffinityClient(affinity_service.address)

    assert client.bind("s2", worker=0) == 0


def test_worker_drains_on_shutdown(shared_worker):
    assert shared_worker.call("echo", value="last")["value"] == "last"

    assert shared_worker.stop() == 0


def test_worker_answers_requests(shared_worker):
    assert shared_worker.call("echo", value=42)["value"] == 42


def test_orders_pool_serves_requests():
    pool = WorkerPool("orders", size=2).start()

    assert pool.execute("echo", value="order-1")["value"] == "order-1"
    # no pool.stop(): the name stays registered and both workers keep running


def test_orders_pool_restarts_cleanly():
    pool = WorkerPool("orders", size=2).start()
    try:
        assert pool.execute("echo", value="order-2")["value"] == "order-2"
    finally:
        pool.stop()
