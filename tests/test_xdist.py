"""pytest-xdist: the controller alone reports, crashes are diagnosed, overlaps are listed."""

from __future__ import annotations

import json

import pytest

from pytest_poolchaos import journal
from pytest_poolchaos.controller.session import SessionResult
from pytest_poolchaos.controller.session import TestRecord as Record
from pytest_poolchaos.report.timeline import alongside, render_timeline

pytest.importorskip("xdist")

# A conftest that dumps what the controller knows at the very end of the session (after the
# controller's own tryfirst sessionfinish), for the parts the JSON contract does not carry.
DUMP_CONFTEST = """
import json

import pytest

from pytest_poolchaos.report.timeline import render_timeline


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    controller = session.config.pluginmanager.get_plugin("poolchaos-controller")
    if controller is None:
        return
    result = controller.session
    failed = [r for r in result.records.values() if r.outcome in ("failed", "error")]
    dump = {
        "alongside": result.alongside,
        "hanging": result.hanging,
        "load": {r.nodeid: dict(r.evidence.load) for r in failed if r.evidence},
        "timeline": {r.nodeid: render_timeline(result, r.nodeid, 70) for r in failed},
    }
    with open("controller-dump.json", "w") as handle:
        json.dump(dump, handle)
"""

# Two tests that can only finish when both run at once: each announces itself with a file
# and waits (bounded) for the other's file.
RENDEZVOUS = """
import time
from pathlib import Path

def meet(me, other):
    Path(me).touch()
    deadline = time.monotonic() + 20
    while not Path(other).exists():
        assert time.monotonic() < deadline, "the other test never ran alongside"
        time.sleep(0.01)
    time.sleep(0.2)
"""


def _dump(chaostester) -> dict:
    return json.loads((chaostester.path / "controller-dump.json").read_text())


def test_controller_reports_every_test_once_with_its_worker(chaostester):
    chaostester.pytester.makeconftest(
        "def pytest_poolchaos_classify(evidence):\n    raise RuntimeError('rule boom')\n")
    chaostester.pytester.makepyfile(
        test_a="""
        import pytest

        def test_ok():
            pass

        def test_bad():
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(1) as pool:  # a bound missed by concurrent work
                x = pool.submit(int, 5).result()
            assert x >= 10

        @pytest.mark.skip(reason="no")
        def test_skipped():
            pass
        """,
        test_b="\n".join(f"def test_{i}():\n    pass\n" for i in range(6)),
    )
    run = chaostester.run("-n", "2", subprocess=True)
    run.result.assert_outcomes(passed=7, failed=1, skipped=1)
    data = run.data
    assert data["session"]["workers"] == 2
    nodeids = [test["nodeid"] for test in data["tests"]]
    assert len(nodeids) == len(set(nodeids)) == 9
    assert {test["worker"] for test in data["tests"]} <= {"gw0", "gw1"}
    assert all(test["worker"] for test in data["tests"])
    assert run.category("test_a.py::test_bad") == "expectation"
    # a worker's internal problem reaches the controller's report, named by worker
    assert any(p.startswith("[gw") and "rule boom" in p for p in data["session"]["problems"])


def test_serial_and_distributed_diagnoses_agree(chaostester):
    chaostester.pytester.makepyfile(
        test_same="""
        from concurrent.futures import ThreadPoolExecutor
        from unittest import mock

        def test_count():
            assert 3 == 4

        def test_shutdown():
            pool = ThreadPoolExecutor(1)
            pool.shutdown()
            pool.submit(print)

        def test_mock():
            assert mock.MagicMock().value() == 3
        """
    )
    serial = chaostester.run("-p", "no:xdist", subprocess=False)
    serial_categories = {t["nodeid"]: t["diagnosis"]["category"]
                         for t in serial.data["tests"] if t["diagnosis"]}
    distributed = chaostester.run("-n", "2", subprocess=True)
    assert {t["nodeid"]: t["diagnosis"]["category"]
            for t in distributed.data["tests"] if t["diagnosis"]} == serial_categories
    assert len(serial_categories) == 3


def test_crashed_workers_are_lifecycle_and_the_run_completes(chaostester):
    chaostester.pytester.makepyfile(
        test_crash="""
        import os
        import signal

        def test_exit():
            os._exit(3)

        def test_killed():
            os.kill(os.getpid(), signal.SIGKILL)

        def test_ok_1():
            pass

        def test_ok_2():
            pass
        """
    )
    run = chaostester.run("-n", "2", "--poolchaos-journal=journal.jsonl", subprocess=True)
    run.result.assert_outcomes(passed=2, failed=2)
    assert run.data["session"]["workers"] == 2
    assert run.data["summary"]["tests"] == 4
    exited = run.diagnosis("test_crash.py::test_exit")
    killed = run.diagnosis("test_crash.py::test_killed")
    assert exited["category"] == killed["category"] == "lifecycle"
    assert "exit code 3" in exited["evidence"][0]
    assert "worker 'gw" in exited["evidence"][0]
    assert "SIGKILL" in killed["evidence"][0]
    assert "out-of-memory" in killed["suggestions"][0]["text"]
    assert run.test("test_crash.py::test_exit")["worker"].startswith("gw")
    # all processes of the run appended to one journal, under the controller's run id
    [journaled] = journal.read_runs(chaostester.path / "journal.jsonl")
    assert journaled.finished
    assert {e["nodeid"] for e in journaled.unfinished_tests()} == {
        "test_crash.py::test_exit", "test_crash.py::test_killed"}
    # passing tests write their start only: the next start (or the end) says they passed
    assert journaled.outcome("test_crash.py::test_ok_1") == "passed"
    assert {"test_crash.py::test_ok_1", "test_crash.py::test_ok_2"} <= set(journaled.finished_at)


def _record(nodeid: str, worker: str | None, start: float, stop: float,
            outcome: str = "passed") -> Record:
    return Record(nodeid, outcome=outcome, worker=worker, start=start, stop=stop)


def test_alongside_lists_other_workers_by_overlap():
    records = {r.nodeid: r for r in [
        _record("f", "gw0", 10.0, 12.0, "failed"),
        _record("same-worker", "gw0", 9.0, 10.0),
        _record("long", "gw1", 9.5, 12.5),
        _record("short", "gw2", 11.5, 11.7),
        _record("after", "gw1", 12.5, 13.0),
        _record("before", "gw2", 8.0, 9.9),
    ]}
    assert alongside(records) == {"f": [("long", "gw1", 2.0), ("short", "gw2", 0.2)]}
    assert alongside({"s": _record("s", None, 1.0, 2.0, "failed")}) == {}
    result = SessionResult(records=records, args=[], workers=3, start=0.0)
    lines = render_timeline(result, "f", 50).splitlines()
    assert [line.split(" ")[0] for line in lines[:3]] == ["gw0", "gw1", "gw2"]
    assert "#" in lines[0]
    assert "#" not in lines[1]
    assert any(line.strip().startswith("A = ") for line in lines)
    assert render_timeline(result, "missing", 50) == ""


@pytest.mark.parametrize("how", ["marker+journal", "cli-no-journal"])
def test_thread_timeout_kill_of_a_worker_is_a_timeout(chaostester, how):
    marker = "@pytest.mark.timeout(0.5, method='thread')" if how == "marker+journal" else ""
    chaostester.pytester.makepyfile(
        test_hang=f"""
        import threading

        import pytest

        {marker}
        def test_hang():
            threading.Event().wait(20)

        def test_fine():
            pass
        """
    )
    args = (["--poolchaos-journal=journal.jsonl"] if how == "marker+journal"
            else ["--timeout=0.5", "--timeout-method=thread", "--poolchaos-journal=off"])
    run = chaostester.run("-n", "2", *args, subprocess=True)
    run.result.assert_outcomes(passed=1, failed=1)
    diagnosis = run.diagnosis("test_hang.py::test_hang")
    assert diagnosis["category"] == "timeout", diagnosis
    assert "exit code 1" in diagnosis["evidence"][0]
    assert "thread method" in diagnosis["evidence"][0]
    assert "0.5 s" in diagnosis["evidence"][1]


def test_signal_timeout_near_timeout_overlap_and_load(chaostester):
    chaostester.pytester.makeconftest(DUMP_CONFTEST)
    chaostester.pytester.makepyfile(
        test_left=RENDEZVOUS + """
import threading
import pytest

@pytest.mark.timeout(2)
def test_left_times_out():
    meet("left", "right")
    threading.Event().wait(20)
""",
        test_right=RENDEZVOUS + """
import pytest

@pytest.mark.timeout(2.5)
def test_right_near_its_limit():
    began = time.monotonic()
    meet("right", "left")
    time.sleep(max(0.0, 2.1 - (time.monotonic() - began)))  # 84% of its limit
""",
    )
    run = chaostester.run("-n", "2", "--dist", "loadfile", subprocess=True)
    run.result.assert_outcomes(passed=1, failed=1)
    left, right = "test_left.py::test_left_times_out", "test_right.py::test_right_near_its_limit"
    assert run.test(left)["worker"] != run.test(right)["worker"]
    diagnosis = run.diagnosis(left)
    assert diagnosis["category"] == "timeout"
    assert any("machine when it failed" in line and "cores" in line
               for line in diagnosis["evidence"])
    assert run.test(right)["near_timeout"] is True
    assert run.test(right)["timeout_s"] == 2.5
    assert run.test(left)["start"] < run.test(right)["stop"]
    assert run.test(right)["start"] < run.test(left)["stop"]
    dump = _dump(chaostester)
    [(other, worker, overlap)] = dump["alongside"][left]
    assert other == right
    assert worker == run.test(right)["worker"]
    assert overlap > 0.2
    assert dump["load"][left]["cpus"] >= 1
    assert "cpu_percent" in dump["load"][left]
    timeline = dump["timeline"][left]
    assert "#" in timeline
    assert f"A = {right} (passed)" in timeline
    assert timeline.splitlines()[0].startswith("gw")
