"""The demo: every example in examples/ gets the label it was written to show.

The examples run as their users would run them: a fresh ``python -m pytest`` over a copy of
the directory, its own pytest.ini and conftest, real worker processes and sockets.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pytest_poolchaos.model import Category

EXAMPLES = Path(__file__).parent.parent / "examples"

LABELS = {
    "test_pool_chaos.py::test_sustained_load_after_worker_restart": "timeout",
    "test_pool_chaos.py::test_worker_failures_during_concurrent_operations": "expectation",
    "test_worker_lifecycle.py::test_worker_state_machine_handles_all_transitions": "expectation",
    "test_worker_lifecycle.py::test_pool_can_be_configured_with_basic_workers":
        "config-pollution",
    "test_worker_lifecycle.py::test_handles_affinity_errors_gracefully": "lifecycle",
    "test_worker_lifecycle.py::test_worker_answers_requests": "lifecycle",
    "test_worker_lifecycle.py::test_orders_pool_restarts_cleanly": "lifecycle",
    "test_multi_layer.py::test_pool_session_affinity_with_mock_adapter": "mock-gap",
    "test_multi_layer.py::test_mock_layer_starts_no_processes": "mock-gap",
    "test_multi_layer.py::test_latency_summary_reports_tail": "unclassified",
    "test_dispatch.py::test_request_result_is_delivered": "race",
}
OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR) (\S+)", re.M)


@pytest.fixture
def examples(chaostester) -> str:
    shutil.copytree(EXAMPLES, chaostester.path / "examples",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return str(chaostester.path / "examples")


def _categories(data: dict) -> dict[str, str | None]:
    return {t["nodeid"]: t["diagnosis"] and t["diagnosis"]["category"] for t in data["tests"]}


def _outcomes(text: str) -> dict[str, str]:
    return {nodeid: outcome for outcome, nodeid in OUTCOME.findall(text)}


POLLUTERS = {
    "test_worker_lifecycle.py::test_pool_can_be_configured_with_basic_workers":
        "test_worker_lifecycle.py::test_pool_with_session_affinity",
    "test_worker_lifecycle.py::test_worker_answers_requests":
        "test_worker_lifecycle.py::test_worker_drains_on_shutdown",
    "test_worker_lifecycle.py::test_orders_pool_restarts_cleanly":
        "test_worker_lifecycle.py::test_orders_pool_serves_requests",
}


def test_each_example_gets_its_label_and_passing_ones_none(chaostester, examples):
    # The demo as the README runs it: the default confirming run included.
    run = chaostester.run(examples, "-p", "no:xdist", "--poolchaos-confirm=auto",
                          subprocess=True, timeout=300)
    assert run.ret == 1
    categories = _categories(run.data)
    failed = {nodeid: label for nodeid, label in categories.items() if label is not None}
    assert failed == LABELS
    polluters = {t["nodeid"]: t["diagnosis"]["polluter"] for t in run.data["tests"]
                 if t["diagnosis"] and t["diagnosis"]["verdict"] == "order-dependent"}
    assert polluters == POLLUTERS
    assert set(LABELS.values()) == {category.value for category in Category}, "every category"
    assert len(categories) > len(LABELS), "the demo has passing tests too"
    assert run.data["summary"]["failed"] == len(LABELS)


def test_example_diagnoses_carry_the_numbers_and_names_that_explain_them(chaostester,
                                                                          examples):
    run = chaostester.run(examples, "-p", "no:xdist", subprocess=True)

    def said(name: str) -> str:
        diagnosis = run.diagnosis(name)
        return "\n".join([*diagnosis["evidence"],
                          *(s["text"] + s.get("detail", "") for s in diagnosis["suggestions"])])

    assert "after 0.3 s" in said("test_sustained_load_after_worker_restart")
    assert "got 5 (50% of the bound)" in said("test_worker_failures_during_concurrent_operations")
    transitions = said("test_worker_state_machine_handles_all_transitions")
    assert "counted 7, expected exactly 6" in transitions
    polluted = said("test_pool_can_be_configured_with_basic_workers")
    assert "test_worker_lifecycle.py::test_pool_with_session_affinity left" in polluted
    assert "SETTINGS['session_affinity'] = True (was False)" in polluted
    assert "nothing was listening" in said("test_handles_affinity_errors_gracefully")
    assert "exit code 0" in said("test_worker_answers_requests")
    assert "pool 'orders' is still running" in said("test_orders_pool_restarts_cleanly")
    assert "the double does none of what it measures" in said(
        "test_pool_session_affinity_with_mock_adapter")
    missed = said("test_mock_layer_starts_no_processes")
    assert "still started 2 real process(es)" in missed
    assert "patch('poolsvc.adapters.Popen')" in missed
    assert "IndexError" in said("test_latency_summary_reports_tail")
    assert "poolsvc.metrics.percentile" in said("test_latency_summary_reports_tail")
    assert "monkeypatch.setitem(poolsvc.config.SETTINGS, 'session_affinity', True)" in polluted
    assert "RealWorker (poolsvc.adapters)" in said("test_worker_answers_requests")
    assert 'WorkerPool(pool_scope.name("orders"), size=2)' in said(
        "test_orders_pool_restarts_cleanly")
    assert "idempotent" not in transitions
    handed_over = said("test_request_result_is_delivered")
    assert "the lock: RLock self._slot in give_back (lease.py:" in handed_over
    assert "thread 'handler_0'" in handed_over
    assert "thread 'delivery_0'" in handed_over
    assert "timeout" not in handed_over.lower()
    _snippets_fit_the_code(run.data, Path(examples))


def _snippets_fit_the_code(data: dict, root: Path) -> None:
    """Every snippet names only classes the demo's code has, and no placeholder call."""
    source = "\n".join(path.read_text() for path in root.rglob("*.py"))
    for test in data["tests"]:
        for suggestion in (test["diagnosis"] or {}).get("suggestions", ()):
            detail = suggestion.get("detail", "")
            assert "(...)" not in detail, (test["nodeid"], detail)
            for name in re.findall(r"\b[A-Z][a-z]+[A-Z]\w*|\b[A-Z][a-z]+(?=\()", detail):
                assert name in source, (test["nodeid"], name, detail)


def test_example_leaks_are_reported_for_the_tests_that_left_them(chaostester, examples):
    run = chaostester.run(examples, "-p", "no:xdist", subprocess=True)
    heartbeat = run.test("test_heartbeat_keeps_workers_alive")
    assert heartbeat["outcome"] == "passed"
    assert heartbeat["diagnosis"] is None
    assert [leak["kind"] for leak in heartbeat["leaks"]] == ["thread"]
    assert "beating-heartbeat" in heartbeat["leaks"][0]["detail"]
    orders = run.leaks("test_orders_pool_serves_requests")
    assert [leak["kind"] for leak in orders] == ["process", "process"]
    assert [leak["kind"] for leak in run.leaks("test_pool_with_session_affinity")] == ["watched"]
    # the rest clean up after themselves (their fixtures stop pools and services)
    leaky = {t["nodeid"] for t in run.data["tests"] if t["leaks"]}
    assert leaky == {"test_multi_layer.py::test_heartbeat_keeps_workers_alive",
                     "test_worker_lifecycle.py::test_orders_pool_serves_requests",
                     "test_worker_lifecycle.py::test_pool_with_session_affinity"}


def test_examples_have_the_same_outcomes_without_the_plugin(chaostester, examples):
    with_plugin = chaostester.run(examples, "-p", "no:xdist", "-rA", subprocess=True)
    without = chaostester.pytester.runpytest_subprocess(
        examples, "-p", "no:poolchaos", "-p", "no:xdist", "-p", "no:randomly", "-rA",
        timeout=120)
    assert _outcomes(with_plugin.text()) == _outcomes(without.stdout.str())
    assert len(_outcomes(without.stdout.str())) >= len(LABELS)
    assert with_plugin.ret == without.ret == 1


def test_examples_same_diagnoses_serial_and_distributed(chaostester, examples):
    # --dist loadfile keeps each file on one worker, in order: the demo's order-dependent
    # failures (a polluted setting, a pool name still taken) need their earlier test.
    serial = chaostester.run(examples, "-p", "no:xdist", subprocess=True)
    distributed = chaostester.run(examples, "-n", "2", "--dist", "loadfile", subprocess=True)
    assert _categories(distributed.data) == _categories(serial.data)
    assert distributed.data["session"]["workers"] == 2
