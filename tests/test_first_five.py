"""The first five minutes (issue #12, and the known wrong numbers of issue #7 section 3).

Advice names the user's own code and the numbers it rests on, with a snippet only when it fits
the code at hand; the section sits before pytest's short summary, never cuts a node id, shows
"ran alongside" where it matters and ends with a next step built from the run; the CLI's help
and its default journal work.
"""

from __future__ import annotations

import contextlib
import io
import re
from typing import Any

import pytest

from pytest_poolchaos import cli
from pytest_poolchaos.classify.catalogue import RULES
from pytest_poolchaos.classify.decide import decide
from pytest_poolchaos.classify.timeout import near_limit
from pytest_poolchaos.controller.session import SessionResult
from pytest_poolchaos.controller.session import TestRecord as Record
from pytest_poolchaos.diagnose.measures import suggestions as measured
from pytest_poolchaos.model import (
    Attempt,
    Category,
    Comparison,
    Diagnosis,
    Evidence,
    ExceptionRecord,
    Leak,
    LedgerEntry,
    Suggestion,
    TimeoutInfo,
    Verdict,
    Worker,
)
from pytest_poolchaos.report.terminal import View, render

PLACEHOLDERS = ("(...)", "module_that_uses_it", "RealClass", "module.Client")


def rec(error: BaseException, *modules: str) -> ExceptionRecord:
    bases = tuple(f"{k.__module__}.{k.__qualname__}" for k in type(error).__mro__)
    return ExceptionRecord(bases[0], bases, str(error), modules)


def ev(*errors: BaseException | ExceptionRecord, **values: Any) -> Evidence:
    records = tuple(rec(e) if isinstance(e, BaseException) else e for e in errors)
    message = values.pop("message", records[0].message if records else "")
    return Evidence(nodeid="t.py::test_x", when="call", message=message, exceptions=records,
                    **values)


def cmp(op: str, left: float, right: float) -> Comparison:
    return Comparison(op, repr(left), repr(right), type(left).__name__,
                      type(right).__name__, float(left), float(right))


def advice(evidence: Evidence) -> list[Suggestion]:
    findings = [f for rule in RULES if (f := rule.check(evidence)) is not None]
    return list(decide(evidence, findings).suggestions)


def said(suggestions: list[Suggestion]) -> str:
    return "\n".join(f"{s.text}\n{s.detail}" for s in suggestions)


# -- advice names the user's own code ------------------------------------------------------------


def test_a_missed_patch_is_told_the_module_that_looked_the_name_up():
    called = AssertionError("Expected 'Popen' to have been called.")
    spawned = ("process 41 `python -u worker.py` started by app.adapters (adapters.py:28)",)
    found = advice(ev(called, mocked=True, spawned=spawned, location="t.py:9"))
    assert any(s.detail == "patch('app.adapters.Popen')" for s in found), found
    assert "app.adapters (adapters.py:28)" in said(found)
    # without the spawn site the target is not known: no snippet, and no placeholder either
    blind = advice(ev(called, mocked=True, location="t.py:9"))
    assert not any(s.detail for s in blind), blind
    assert "Popen" in said(blind)
    for text in (said(found), said(blind)):
        assert not any(p in text for p in PLACEHOLDERS), text


def test_a_pollution_fix_is_the_monkeypatch_call_for_the_real_key():
    env = LedgerEntry("t.py::test_sets_mode", "env", "POOL_MODE", None, "affinity",
                      "monkeypatch.setenv(...) / monkeypatch.delenv(...)")
    watched = LedgerEntry("t.py::test_sticky", "watched", "app.config:SETTINGS['sticky']",
                          "False", "True", "monkeypatch.setattr(...) / monkeypatch.setitem(...)")
    found = advice(ev(AssertionError("assert 'affinity' == 'basic'"), pollution=(env,)))
    assert found[0].detail == "monkeypatch.setenv('POOL_MODE', 'affinity')"
    assert "t.py::test_sets_mode" in found[0].text
    sticky = advice(ev(rec(ValueError("sticky"), "app.pool", "app.config"),
                       pollution=(watched,)))
    assert sticky[0].detail == "monkeypatch.setitem(app.config.SETTINGS, 'sticky', True)"
    for text in (said(found), said(sticky)):
        assert "(...)" not in text, text


def test_a_pool_fixture_is_written_only_for_the_pool_class_the_failure_went_through():
    pipe = rec(BrokenPipeError(32, "Broken pipe"), "t", "app.workers")
    hand_made = advice(ev(pipe, message="worker exited with exit code 0",
                          raised_in=("app.workers:Worker.call",), location="t.py:5"))
    assert "Worker (app.workers)" in said(hand_made)
    assert "Executor" not in said(hand_made)
    assert not any(s.detail for s in hand_made), hand_made
    broken = rec(_broken_pool(), "t", "concurrent.futures.process")
    executor = advice(ev(broken))
    assert any("with ProcessPoolExecutor(" in s.detail for s in executor), executor


def _broken_pool() -> BaseException:
    from concurrent.futures.process import BrokenProcessPool

    return BrokenProcessPool("A process in the process pool was terminated abruptly")


def test_a_count_off_by_one_in_sequential_code_gets_no_delivery_advice():
    line = "assert len(machine.history) == 6"
    sequential = said(advice(ev(AssertionError("assert 7 == 6"), comparison=cmp("==", 7, 6),
                                source_line=line, location="t.py:12")))
    assert "ordinary bug" in sequential  # nothing ran concurrently: no expectation at all
    for word in ("idempotent", "duplicate", "retry"):
        assert word not in sequential, sequential
    concurrent = said(advice(ev(AssertionError("assert 7 == 6"), comparison=cmp("==", 7, 6),
                                source_line=line, spawned=("process 4312 'feeder'",),
                                workers=(Worker("process", "4312 'feeder'", "alive"),))))
    assert "duplicate delivery" in concurrent


def test_advice_in_a_run_names_the_suites_own_module_key_and_line(chaostester):
    chaostester.pytester.makepyfile(
        adapters="""
            import sys
            from subprocess import Popen

            def start():
                return Popen([sys.executable, "-c", "pass"])
        """,
        test_advice="""
            import os
            from unittest.mock import patch

            import adapters

            def test_sets_mode():
                os.environ["POOL_MODE"] = "affinity"

            def test_reads_mode():
                assert os.environ.get("POOL_MODE", "basic") == "basic"

            def test_starts_nothing_real():
                with patch("subprocess.Popen") as popen:
                    adapters.start().wait(10)
                popen.assert_called()
        """)
    run = chaostester.run()
    mode = run.diagnosis("test_reads_mode")
    assert mode["category"] == "config-pollution"
    assert "monkeypatch.setenv('POOL_MODE', 'affinity')" in [
        s.get("detail") for s in mode["suggestions"]]
    patched = run.diagnosis("test_starts_nothing_real")
    assert "patch('adapters.Popen')" in [s.get("detail") for s in patched["suggestions"]]
    text = run.text()
    assert not any(p in text for p in PLACEHOLDERS)


# -- known wrong numbers ---------------------------------------------------------------------------


def _failed(left: float, mode: str = "isolated") -> Attempt:
    return Attempt(mode, "failed", 0.1, "assert", {"duration": 0.1, "op": ">=", "left": left,
                                                   "right": 10.0})


def test_a_flaky_value_counts_its_passing_reruns_and_never_says_same_way_each_run():
    original = ev(AssertionError("assert 5 >= 10"), comparison=cmp(">=", 5, 10),
                  source_line="assert ok >= 10")
    [flaky] = measured(Category.EXPECTATION, original,
                       [_failed(5), Attempt("isolated", "passed", 0.1, "", {"duration": 0.1})])
    assert "passed 1, failed 2" in flaky.text
    assert "same way" not in flaky.text
    # the bound suggested is the worst value seen, never below it
    assert flaky.detail.startswith("assert ok >= 5\n"), flaky.detail


def test_runs_are_counted_as_they_ran_not_as_they_reached_the_assertion():
    original = ev(AssertionError("assert 5 >= 10"), comparison=cmp(">=", 5, 10))
    no_value = Attempt("isolated", "failed", 0.1, "ConnectionError", {"duration": 0.1})
    [text] = measured(Category.EXPECTATION, original, [_failed(5), no_value])
    assert text.text.startswith("Measured over 3 runs")
    assert "2 of the 3 failing runs reached the assertion" in text.text
    assert "same way each run" in text.text  # 5 and 5, and no rerun passed


def test_one_failing_value_makes_up_no_bound_below_it():
    one = advice(ev(AssertionError("assert 0.83 >= 0.95"), comparison=cmp(">=", 0.83, 0.95),
                    source_line="assert result.success_rate >= 0.95", location="t.py:3",
                    workers=(Worker("thread", "pool_0", "busy"),
                             Worker("thread", "pool_1", "busy"))))
    text = said(one)
    assert "result.success_rate was 0.83 in this one run at t.py:3" in text
    assert "--poolchaos-rerun" in text
    assert not re.search(r"(?:>=|>) 0\.[0-7]", text), text


def test_a_calls_own_timeout_is_raised_in_the_call_not_with_the_marker():
    line = "value = future.result(timeout=0.5)"
    original = ev(TimeoutError(), source_line=line, duration_s=0.9,
                  timeout=TimeoutInfo(1.0, "signal", "ini"))
    near = near_limit(original)
    assert near is not None
    assert "mark.timeout" not in said(list(near.suggestions))
    assert "future.result(timeout=0.5)" in near.suggestions[0].text
    passing = [Attempt("isolated", "passed", 0.7, "", {"duration": 0.7})] * 2
    [timed] = measured(Category.TIMEOUT, original, passing)
    assert "mark.timeout" not in timed.detail
    assert "value = future.result(timeout=1.4)" in timed.detail


def test_leak_errors_and_a_polluted_victim_are_not_called_ordinary_bugs(chaostester):
    chaostester.pytester.makepyfile(test_logging="""
        import logging
        import threading

        STOP = threading.Event()

        def test_silences_root():
            logging.getLogger().setLevel(logging.CRITICAL)

        def test_warns(caplog):
            logging.getLogger("app").warning("pool degraded")
            assert [r.getMessage() for r in caplog.records] == ["pool degraded"]

        def test_leaves_a_thread():
            threading.Thread(target=STOP.wait, args=(30,), name="poller", daemon=True).start()

        def test_zz_stops_it():
            STOP.set()
    """)
    run = chaostester.run("--poolchaos-leaks=fail")
    assert run.test("test_leaves_a_thread")["outcome"] == "error"
    leaker = run.diagnosis("test_leaves_a_thread")
    leak_advice = " ".join(s["text"] for s in leaker["suggestions"])
    assert "--poolchaos-leaks=fail" in leak_advice
    assert "poller" in leak_advice
    for name in ("test_leaves_a_thread", "test_warns", "test_silences_root"):
        text = " ".join(s["text"] for s in run.diagnosis(name)["suggestions"])
        assert "ordinary bug" not in text, (name, text)
        assert "fail the same way" not in text, (name, text)


def test_a_victim_of_outstanding_pollution_is_told_to_run_alone_not_an_ordinary_bug():
    root = LedgerEntry("t.py::test_silences_root", "logging", "logging.root.level", "WARNING",
                       "CRITICAL")
    victim = ev(ZeroDivisionError("division by zero"), pollution=(root,))
    text = said(advice(victim))
    assert "ordinary bug" not in text, text
    assert "fail the same way" not in text, text
    assert "logging.root.level = CRITICAL (was WARNING) by t.py::test_silences_root" in text


# -- the report ------------------------------------------------------------------------------------


def test_the_section_comes_before_pytests_short_summary_which_ends_the_log(chaostester):
    chaostester.pytester.makepyfile("def test_a():\n    assert 1 + 1 == 3\n")
    lines = [line for line in chaostester.run("-rA").result.stdout.lines if line.strip()]
    text = "\n".join(lines)
    assert text.index("= poolchaos =") < text.index("short test summary info")
    assert re.fullmatch(r"=+ 1 failed in [0-9.]+s =+", lines[-1]), lines[-1]
    section = lines[lines.index(next(x for x in lines if "= poolchaos =" in x)):]
    last = next(i for i, line in enumerate(section) if "short test summary info" in line)
    after = next(i for i, line in enumerate(section) if line.startswith("next: "))
    # only the next-step line (wrapped) between it and pytest's summary
    assert all(line[:1].isalpha() and "::" not in line for line in section[after:last])


LONG = "test_" + "_".join(["the_replacement_worker_warms_up"] * 3)


@pytest.mark.parametrize("args", [("-q",), ("-q", "-n", "2"), ("-n", "2", "-p", "no:randomly")])
def test_node_ids_never_wrap_nor_run_past_the_edge(chaostester, monkeypatch, args):
    monkeypatch.setenv("COLUMNS", "60")
    chaostester.pytester.makepyfile(test_wrap=f"""
        def {LONG}():
            assert 2 + 2 == 5

        def test_other_one():
            assert [] == [1]
    """)
    run = chaostester.run(*args)
    lines = run.result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "poolchaos:" in line)
    end = next(i for i, line in enumerate(lines) if "short test summary info" in line)
    section = lines[start:end]
    nodeid = f"test_wrap.py::{LONG}"
    assert any(nodeid in line for line in section), section
    for line in section:
        for token in line.split():
            if token != nodeid and len(token) > 12:
                assert token.strip(".,:;()") not in nodeid, (token, section)
        # past the edge only a word longer than the room, alone: the terminal would cut it
        assert len(line) <= 60 or re.fullmatch(r"\s*(?:\d+\. )?\S+", line), (line, section)


def _timed(category: Category, **records: Record) -> SessionResult:
    failed = Record("t.py::test_f", outcome="failed", worker="gw0", start=0.0, stop=2.0,
                    diagnosis=Diagnosis(category, 0.8, ("why",), (Suggestion("fix"),)),
                    leaks=(Leak("process", "process 7 `server`", "process:server"),))
    result = SessionResult(records={"t.py::test_f": failed, **records}, args=[], workers=2,
                           start=0.0)
    result.alongside = {"t.py::test_f": [(nodeid, "gw1", 1.0) for nodeid in records]}
    return result


def test_ran_alongside_shows_where_it_matters_and_in_full_with_v():
    others = {name: Record(name, worker="gw1", start=0.5, stop=1.5)
              for name in ("t.py::test_a", "t.py::test_b", "t.py::test_c", "t.py::test_d")}
    others["t.py::test_b"].leaks = (Leak("process", "process 8 `server`", "process:server"),)
    lifecycle = _timed(Category.LIFECYCLE, **others)
    normal, verbose = render(lifecycle, View(0, 100)), render(lifecycle, View(1, 100))
    assert "1.00 s on gw1  t.py::test_b" in normal, "it left the same resource behind"
    assert "1.00 s on gw1  t.py::test_a" not in normal
    assert "(+3 more with -v)" in normal
    assert all(f"1.00 s on gw1  {name}" in verbose for name in others)
    timing = render(_timed(Category.TIMEOUT, **others), View(0, 100))
    assert "1.00 s on gw1  t.py::test_a" in timing, "a timeout's neighbours all matter"
    quiet = _timed(Category.LIFECYCLE, **{"t.py::test_a": others["t.py::test_a"]})
    assert "ran alongside" not in render(quiet, View(0, 100))
    # an exact count in code that started nothing is not about timing; with a pool it is
    alone = {"t.py::test_a": others["t.py::test_a"]}
    sequential = _timed(Category.EXPECTATION, **alone)
    assert "ran alongside" not in render(sequential, View(0, 100))
    pooled = _timed(Category.EXPECTATION, **alone)
    pooled.records["t.py::test_f"].evidence = Evidence(
        "t.py::test_f", "call", spawned=("process 9 `worker` started by app.pool (pool.py:3)",))
    assert "1.00 s on gw1  t.py::test_a" in render(pooled, View(0, 100))


def _result(*diagnoses: Diagnosis, duration: float = 0.5) -> SessionResult:
    records = {f"t.py::test_{i}": Record(f"t.py::test_{i}", outcome="failed",
                                         duration_s=duration, diagnosis=d)
               for i, d in enumerate(diagnoses)}
    return SessionResult(records=records, args=[], workers=0, start=0.0, stop=10.0)


def test_the_last_line_says_what_to_do_next_from_this_run():
    open_ = Diagnosis(Category.EXPECTATION, 0.7, ("why",), (Suggestion("fix it"),))
    opened = render(_result(open_, open_), View(0, 100)).splitlines()
    # 2 tests x 3 reruns x (inline + isolated); 9 s of this 10 s run went outside the tests
    assert " ".join(opened[-2:]).startswith(
        "next: --poolchaos-rerun=3 would prove the 2 open verdicts"), opened
    assert "about 12 reruns, roughly 60 s" in " ".join(opened[-2:])
    proven = open_.evolve(verdict=Verdict.DETERMINISTIC, reruns=3, pass_rate=0.0)
    flaky = open_.evolve(verdict=Verdict.FLAKY, reruns=3, pass_rate=0.3, confidence=0.9)
    done = render(_result(flaky, proven), View(0, 100)).splitlines()
    assert done[-1] == "next: start with 2. t.py::test_1 (deterministic expectation): fix it"
    polluted = open_.evolve(verdict=Verdict.ORDER_DEPENDENT, reruns=3, pass_rate=0.0,
                            polluter="t.py::test_env")
    assert render(_result(polluted), View(0, 100)).splitlines()[-1] == (
        "next: fix t.py::test_env first: it leaves behind what breaks 1 later test.")


# -- the poolchaos command ----------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["report"], ["history"], ["history", "import"],
                                     ["merge"], ["html"]])
def test_help_reads_like_a_clis_help(command):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli.main([*command, "--help"])
    text = out.getvalue()
    assert text.startswith("usage: poolchaos")
    assert "`" not in text, text
    assert ":class:" not in text


def test_report_finds_the_default_journal_from_a_subfolder(pytester, monkeypatch, capsys):
    pytester.makepyfile("def test_a():\n    assert 1 == 2\n")
    pytester.runpytest_inprocess("-p", "poolchaos", "-p", "no:randomly")
    sub = pytester.mkdir("sub")
    monkeypatch.chdir(sub)
    assert cli.main(["report"]) == 0
    assert "test_report_finds_the_default_journal_from_a_subfolder.py::test_a" in \
        capsys.readouterr().out
    monkeypatch.chdir(pytester.path.parent)
    assert cli.main(["report"]) == 2
    assert "pass --journal PATH" in capsys.readouterr().err
