"""Diagnostic reruns: verdicts, pass rates, silence, exit status and measured suggestions."""

from __future__ import annotations

import io

import pytest

from pytest_poolchaos.diagnose import progress as progress_mod
from pytest_poolchaos.diagnose.measures import p95
from pytest_poolchaos.diagnose.runner import passed_through
from pytest_poolchaos.diagnose.verdict import tally, verdict
from pytest_poolchaos.model import Attempt, Verdict

# Fails on its first call only: a counter file next to the test makes the flakiness exact.
FIRST_CALL_FAILS = """
    import pathlib

    def test_flaky():
        counter = pathlib.Path(__file__).with_name("calls.txt")
        calls = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(calls + 1))
        assert calls > 0, "first call fails"
"""

ALWAYS_FAILS = """
    def test_broken():
        assert 2 + 2 == 5
"""


def _attempt(mode: str, outcome: str, **values: object) -> Attempt:
    return Attempt(mode, outcome, 0.1, values=values)


def test_flaky_and_deterministic_inline(chaostester):
    chaostester.pytester.makepyfile(test_flaky=FIRST_CALL_FAILS, test_broken=ALWAYS_FAILS)
    run = chaostester.run("--poolchaos-rerun=3", "--poolchaos-rerun-mode=inline")
    flaky = run.diagnosis("test_flaky.py::test_flaky")
    assert (flaky["verdict"], flaky["pass_rate"], flaky["reruns"]) == ("flaky", 1.0, 3)
    assert [a["mode"] for a in flaky["attempts"]] == ["inline"] * 3
    broken = run.diagnosis("test_broken.py::test_broken")
    assert (broken["verdict"], broken["pass_rate"], broken["reruns"]) == ("deterministic", 0.0, 3)
    assert all(a["outcome"] == "failed" for a in broken["attempts"])
    assert any("reran 3 time(s)" in line for line in broken["evidence"])


def test_reruns_leave_outcome_reports_and_exit_status_alone(chaostester):
    chaostester.pytester.makepyfile(test_flaky=FIRST_CALL_FAILS,
                                    test_ok="def test_ok():\n    pass\n")
    run = chaostester.run("--poolchaos-rerun=2", "--poolchaos-rerun-mode=inline",
                          "--junitxml=junit.xml")
    assert run.ret == pytest.ExitCode.TESTS_FAILED
    run.result.assert_outcomes(failed=1, passed=1)
    assert run.test("test_flaky.py::test_flaky")["outcome"] == "failed"
    assert run.data is not None
    assert run.data["session"]["exitstatus"] == 1
    junit = (chaostester.path / "junit.xml").read_text()
    assert junit.count("<testcase") == 2
    assert (chaostester.path / "calls.txt").read_text() == "3"  # the reruns did run
    assert "inline rerun" not in run.text()  # no progress bar off a terminal


def test_isolated_rerun_quotes_the_measured_operands(chaostester):
    chaostester.pytester.makepyfile(test_measure="""
        import pathlib
        from concurrent.futures import ThreadPoolExecutor

        def test_latency():
            counter = pathlib.Path(__file__).with_name("calls.txt")
            calls = int(counter.read_text()) if counter.exists() else 0
            counter.write_text(str(calls + 1))
            with ThreadPoolExecutor(1) as pool:  # measured on concurrent work
                latency = pool.submit(int, 12 + calls).result()
            assert latency < 10
    """)
    run = chaostester.run("--poolchaos-rerun=2", "--poolchaos-rerun-mode=isolated")
    diagnosis = run.diagnosis("test_measure.py::test_latency")
    assert diagnosis["verdict"] == "deterministic"
    assert [a["mode"] for a in diagnosis["attempts"]] == ["isolated", "isolated"]
    measured = [s for s in diagnosis["suggestions"] if s["text"].startswith("Measured")]
    assert measured, diagnosis["suggestions"]
    assert "ranged 12..14" in measured[0]["text"]
    assert "< 10" in measured[0]["text"]
    assert measured[0]["detail"] == "failing values: 12, 13, 14; passing runs: 0; bound: < 10"


def test_timeout_reruns_measure_the_duration_with_the_limit_raised(chaostester):
    pytest.importorskip("pytest_timeout")
    chaostester.pytester.makepyfile(test_slow="""
        import time
        import pytest

        @pytest.mark.timeout(0.3, method="signal")
        def test_slow():
            time.sleep(0.5)  # the work itself: needs more than the limit, every time
    """)
    run = chaostester.run("--poolchaos-rerun=2", subprocess=True)
    diagnosis = run.diagnosis("test_slow.py::test_slow")
    assert diagnosis["category"] == "timeout"
    # inline reruns are skipped for timeouts (no timer around them); isolated ones raise it
    assert [a["mode"] for a in diagnosis["attempts"]] == ["isolated", "isolated"]
    assert all(a["outcome"] == "passed" for a in diagnosis["attempts"])
    assert diagnosis["verdict"] == "deterministic"  # over the real limit on every rerun
    assert any("passed 0/2 alone (2 finished only with the limit raised, in up to 0.5"
               in line for line in diagnosis["evidence"]), diagnosis["evidence"]
    measured = next(s for s in diagnosis["suggestions"] if s["text"].startswith("Measured"))
    assert "p95" in measured["text"]
    assert "the limit is 0.3 s" in measured["text"]
    assert "@pytest.mark.timeout(1" in measured["detail"]


@pytest.mark.parametrize(("attempts", "confirmed", "expected"), [
    ([], None, Verdict.UNKNOWN),
    ([_attempt("inline", "failed"), _attempt("isolated", "failed")], None,
     Verdict.DETERMINISTIC),
    ([_attempt("inline", "passed"), _attempt("inline", "failed")], None, Verdict.FLAKY),
    ([_attempt("isolated", "passed"), _attempt("isolated", "failed")], None, Verdict.FLAKY),
    ([_attempt("inline", "failed"), *[_attempt("isolated", "passed")] * 2], None,
     Verdict.ORDER_DEPENDENT),
    ([_attempt("inline", "failed"), *[_attempt("isolated", "passed")] * 2], True,
     Verdict.ORDER_DEPENDENT),
    ([_attempt("inline", "passed"), *[_attempt("confirm", "passed")] * 2], True,
     Verdict.ORDER_DEPENDENT),
    ([_attempt("inline", "failed"), _attempt("isolated", "passed")], False, Verdict.FLAKY),
    # one pass alone is no stable result: a random flake must not look order-dependent
    ([_attempt("inline", "failed"), _attempt("isolated", "passed")], None, Verdict.UNKNOWN),
    ([_attempt("confirm", "passed")], True, Verdict.UNKNOWN),
    # two passes alone, but the failing order never reproduced
    ([*[_attempt("confirm", "passed")] * 2], None, Verdict.UNKNOWN),
    ([_attempt("isolated", "passed", over_limit=True)], None, Verdict.DETERMINISTIC),
])
def test_verdict_rules(attempts, confirmed, expected):
    assert verdict(tally(attempts), confirmed) is expected


def test_pass_rate_ignores_search_runs():
    attempts = [_attempt("inline", "passed"), _attempt("isolated", "failed"),
                _attempt("bisect", "failed"), _attempt("pair", "passed")]
    assert tally(attempts).pass_rate == 0.5


def test_p95_nearest_rank():
    assert p95([1.0]) == 1.0
    assert p95([float(n) for n in range(1, 21)]) == 19.0


def test_passed_through_options():
    args = ["-p", "xyz", "-pno:abc", "-p", "poolchaos", "-o", "a=b", "--timeout=5",
            "--timeout-method", "thread", "tests/x.py", "-k", "foo", "-W", "error"]
    assert passed_through(args) == ["-pxyz", "-pno:abc", "-oa=b", "--timeout=5",
                                    "--timeout-method=thread", "-Werror"]


def test_progress_draws_on_a_terminal_only(monkeypatch, pytestconfig):
    assert not progress_mod.DiagnosticProgress(pytestconfig, 3).active or \
        progress_mod._terminal_file(pytestconfig) is not None
    stream = io.StringIO()
    monkeypatch.setattr(progress_mod, "_terminal_file", lambda config: stream)
    with progress_mod.DiagnosticProgress(pytestconfig, 2) as bar:
        bar.show("test_x.py::test_y", "isolated rerun 1/2")
        bar.advance()
    assert bar.active
    assert "test_x.py::test_y" in stream.getvalue()


def test_isolated_reruns_say_when_main_run_leaks_may_affect_them():
    from pytest_poolchaos.controller.session import SessionResult, TestRecord
    from pytest_poolchaos.diagnose.pipeline import leaked_resources
    from pytest_poolchaos.diagnose.reruns import isolated
    from pytest_poolchaos.diagnose.runner import ChildRun
    from pytest_poolchaos.model import Leak

    records = {"t": TestRecord("t", leaks=(Leak("process", "pid 1"), Leak("env", "X"),
                                           Leak("server", "127.0.0.1:8000")))}
    result = SessionResult(records=records, args=[], workers=0, start=0.0)
    assert leaked_resources(result) == 2

    class Runner:
        def run(self, nodeids, timeout, raise_limit=None, light=False):
            return ChildRun(tuple(nodeids), 0.1, 0)  # the test never reported: killed

    attempt = isolated(Runner(), "t", 0.1, None, affected=2)  # type: ignore[arg-type]
    assert attempt.outcome == "failed"
    assert "possibly affected by 2 leaked resources from the main run" in attempt.message
