"""How findings become one Diagnosis: combination, confidence, suppression, extension."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pytest_poolchaos import guard
from pytest_poolchaos.classify import BuiltinRules, run_rules
from pytest_poolchaos.classify.catalogue import by_id
from pytest_poolchaos.classify.decide import MIN_SCORE, combine, decide, is_disabled
from pytest_poolchaos.model import (
    Category,
    Comparison,
    Diagnosis,
    Evidence,
    ExceptionRecord,
    Finding,
    FrameFact,
    RerunFacts,
    Rule,
    Suggestion,
    TimeoutInfo,
    Verdict,
    Worker,
)
from pytest_poolchaos.settings import Settings

EVIDENCE = Evidence(nodeid="t.py::test_x", when="call", message="boom")


def finding(rule: str, category: Category, score: float, line: str = "why",
            advice: str = "do this") -> Finding:
    return Finding(rule, category, score, (line,), (Suggestion(advice),))


@pytest.mark.parametrize(("scores", "expected"), [
    ([], 0.0),
    ([0.5], 0.5),
    ([0.5, 0.5], 0.75),
    ([0.9, 0.3, 0.0], 0.93),
    ([1.0, 0.2], 1.0),
])
def test_scores_of_one_category_combine_as_independent_signals(scores, expected):
    assert combine(scores) == pytest.approx(expected)


def test_two_weak_signals_of_one_category_beat_one_stronger_signal():
    findings = [finding("a.x", Category.LIFECYCLE, 0.5), finding("a.y", Category.LIFECYCLE, 0.5),
                finding("b.x", Category.TIMEOUT, 0.7)]
    diagnosis = decide(EVIDENCE, findings)
    assert diagnosis.category is Category.LIFECYCLE
    # every rule that fired is listed, strongest first, so the confidence can be traced
    assert [(r.id, r.score) for r in diagnosis.rules] == [("b.x", 0.7), ("a.x", 0.5),
                                                          ("a.y", 0.5)]


@pytest.mark.parametrize(("runner_up", "low", "high"), [
    (0.0, 0.89, 0.91),  # alone: the winner's own score
    (0.3, 0.84, 0.86),  # a distant runner-up costs a little
    (0.85, 0.45, 0.55),  # a close runner-up halves it
])
def test_confidence_drops_as_the_runner_up_gets_close(runner_up, low, high):
    findings = [finding("t.x", Category.TIMEOUT, 0.9, "timer fired")]
    if runner_up:
        findings.append(finding("l.x", Category.LIFECYCLE, runner_up, "pool broke"))
    diagnosis = decide(EVIDENCE, findings)
    assert diagnosis.category is Category.TIMEOUT
    assert low <= diagnosis.confidence <= high
    close = runner_up >= 0.5
    assert any("also consistent with lifecycle" in line for line in diagnosis.reasons) == close


def test_below_the_minimum_score_the_failure_stays_unclassified_and_says_so():
    diagnosis = decide(EVIDENCE, [finding("l.leak", Category.LIFECYCLE, MIN_SCORE - 0.01,
                                          "left a thread")])
    assert diagnosis.category is Category.UNCLASSIFIED
    assert any("weak lifecycle signal" in line and "left a thread" in line
               for line in diagnosis.reasons)
    assert diagnosis.suggestions


@pytest.mark.parametrize(("rule_id", "disabled", "off"), [
    ("expectation.threshold", ["expectation.threshold"], True),
    ("expectation.threshold", ["expectation"], True),  # a whole category
    ("expectation.threshold", ["expectation.thresh"], False),  # not a prefix of words
    ("acme.slow-db", ["acme"], True),
    ("timeout.pytest-timeout", ["expectation"], False),
])
def test_disable_rules_takes_ids_and_prefixes(rule_id, disabled, off):
    assert is_disabled(rule_id, disabled) is off


def test_suppressed_findings_do_not_count_even_from_third_parties():
    findings = [finding("acme.slow-db", Category.TIMEOUT, 0.99, "db slow"),
                finding("expectation.threshold", Category.EXPECTATION, 0.7, "asserted >= 10")]
    assert decide(EVIDENCE, findings).category is Category.TIMEOUT
    diagnosis = decide(EVIDENCE, findings, ["acme.slow-db"])
    assert diagnosis.category is Category.EXPECTATION
    assert [r.id for r in diagnosis.rules] == ["expectation.threshold"]


def test_builtin_rules_honour_disable_rules():
    evidence = Evidence("t.py::t", "call", message="Timeout (>2.0s) from pytest-timeout.",
                        timeout=None)
    rules = BuiltinRules(Settings(disable_rules=("timeout",)))
    assert all(not rule.id.startswith("timeout.") for rule in rules.rules)
    assert "timeout.pytest-timeout" in {rule.id for rule in BuiltinRules(Settings()).rules}
    assert rules.pytest_poolchaos_classify(evidence) == []


def test_a_finding_without_evidence_lines_is_dropped_and_reported(monkeypatch):
    monkeypatch.setattr(guard, "PROBLEMS", [])
    silent = Finding("acme.silent", Category.MOCK_GAP, 0.99, ())
    diagnosis = decide(EVIDENCE, [silent, finding("t.x", Category.TIMEOUT, 0.6)])
    assert diagnosis.category is Category.TIMEOUT
    assert any("acme.silent" in problem for problem in guard.PROBLEMS)


def test_scores_outside_zero_to_one_are_clamped():
    diagnosis = decide(EVIDENCE, [finding("acme.big", Category.LIFECYCLE, 7.0)])
    assert diagnosis.category is Category.LIFECYCLE
    assert diagnosis.confidence <= 0.99


def test_a_rule_that_raises_is_a_problem_and_the_others_still_run(monkeypatch):
    monkeypatch.setattr(guard, "PROBLEMS", [])

    def explode(evidence):
        raise RuntimeError("rule exploded")

    rules = (Rule("acme.bad", Category.TIMEOUT, explode), by_id()["lifecycle.loop-closed"])
    evidence = Evidence("t.py::t", "call", message="RuntimeError: Event loop is closed")
    assert [f.rule for f in run_rules(rules, evidence)] == ["lifecycle.loop-closed"]
    assert any("rule exploded" in problem for problem in guard.PROBLEMS)


def test_the_same_advice_from_two_rules_is_shown_once():
    findings = [finding("l.a", Category.LIFECYCLE, 0.8, "a", "per-test pool"),
                finding("l.b", Category.LIFECYCLE, 0.7, "b", "per-test pool")]
    assert [s.text for s in decide(EVIDENCE, findings).suggestions] == ["per-test pool"]


def test_secret_env_values_never_reach_evidence_or_suggestions(monkeypatch):
    monkeypatch.setenv("POOL_API_TOKEN", "s3cr3t-value")
    findings = [finding("x.y", Category.LIFECYCLE, 0.9, "token s3cr3t-value refused",
                        "rotate s3cr3t-value")]
    diagnosis = decide(EVIDENCE, findings)
    text = " ".join([*diagnosis.reasons, *(s.text for s in diagnosis.suggestions)])
    assert "s3cr3t-value" not in text
    assert "***" in text


def test_the_order_dependent_hint_sets_verdict_and_polluter():
    evidence = Evidence("t.py::t", "call", message="assert 1 == 2",
                        reruns=RerunFacts(Verdict.ORDER_DEPENDENT, "t.py::test_a"))
    diagnosis = decide(evidence, [by_id()["config-pollution.order-dependent"].check(evidence)])
    assert diagnosis.category is Category.CONFIG_POLLUTION
    assert diagnosis.verdict is Verdict.ORDER_DEPENDENT
    assert diagnosis.polluter == "t.py::test_a"


def test_supporting_signals_add_score_but_speak_only_when_alone():
    strong = finding("p.match", Category.CONFIG_POLLUTION, 0.9, "test_a left X=1, named here")
    weak = finding("p.outstanding", Category.CONFIG_POLLUTION, 0.3, "1 change still in effect")
    together = decide(EVIDENCE, [strong, weak])
    assert together.reasons == ("test_a left X=1, named here",)
    assert [r.id for r in together.rules] == ["p.match", "p.outstanding"]
    assert together.confidence > decide(EVIDENCE, [strong]).confidence

    weak_pair = [weak, finding("p.other", Category.CONFIG_POLLUTION, 0.3, "cwd changed")]
    alone = decide(EVIDENCE, weak_pair)
    assert alone.category is Category.CONFIG_POLLUTION
    assert alone.reasons == ("1 change still in effect", "cwd changed")


def test_supporting_findings_alone_do_not_outrank_a_claiming_one():
    # Two lifecycle readings of one refusal that both stepped back (the reruns put it on an
    # earlier test) combine to 0.51, above the pollution reading that claims it (0.45): the
    # claim wins, with a low confidence, since the supports are that close.
    claim = finding("p.passes-alone", Category.CONFIG_POLLUTION, 0.45, "passes alone")
    supports = [finding("l.shut", Category.LIFECYCLE, 0.3, "pool shut down"),
                finding("l.state", Category.LIFECYCLE, 0.3, "refused in its state")]
    diagnosis = decide(EVIDENCE, [claim, *supports])
    assert diagnosis.category is Category.CONFIG_POLLUTION
    assert diagnosis.confidence < 0.3
    # nearest negative: one of the two lifecycle readings claims it (it did not step back)
    claimed = [finding("l.shut", Category.LIFECYCLE, 0.9, "pool shut down"), supports[1]]
    assert decide(EVIDENCE, [claim, *claimed]).category is Category.LIFECYCLE
    # and with no claim anywhere, supports still decide among themselves
    assert decide(EVIDENCE, supports).category is Category.LIFECYCLE


def test_json_rules_carry_id_category_and_their_own_score_and_survive_the_trip():
    findings = [finding("a.y", Category.LIFECYCLE, 0.4), finding("a.x", Category.LIFECYCLE, 0.6),
                finding("b.x", Category.TIMEOUT, 0.2)]
    diagnosis = decide(EVIDENCE, findings)
    rules = diagnosis.to_json()["rules"]
    assert rules == [{"id": "a.x", "category": "lifecycle", "score": 0.6},
                     {"id": "a.y", "category": "lifecycle", "score": 0.4},
                     {"id": "b.x", "category": "timeout", "score": 0.2}]
    again = Diagnosis.from_json(diagnosis.to_json())
    assert [rule.id for rule in again.rules] == ["a.x", "a.y", "b.x"]
    assert again.to_json()["rules"] == rules
    # a journal written before the object form still reads
    old = {**diagnosis.to_json(), "rules": ["a.x"]}
    assert Diagnosis.from_json(old).to_json()["rules"] == [
        {"id": "a.x", "category": "lifecycle", "score": diagnosis.confidence}]


def test_no_signal_is_surest_where_nothing_a_rule_reads_was_there():
    """"Unclassified" in a test that ran nothing concurrently and failed the same way alone is
    a firm answer; in one that ran threads, passed alone, or heard a weak signal it is not."""
    plain = Evidence(nodeid="t.py::test_x", when="call", message="assert 2 == 3",
                     reruns=RerunFacts(Verdict.DETERMINISTIC, None, 1, 0))
    threads = replace(plain, workers=(Worker("thread", "t1", "exited"),
                                      Worker("thread", "t2", "exited")))
    alone = replace(plain, reruns=RerunFacts(Verdict.UNKNOWN, None, 2, 2))
    weak = finding("lifecycle.weak", Category.LIFECYCLE, 0.3)
    sure = decide(plain, []).confidence
    assert decide(plain, []).category is Category.UNCLASSIFIED
    assert sure >= 0.8
    no_fallback = ("race.unexplained-concurrency",)
    for doubt in (decide(threads, [], no_fallback), decide(alone, []), decide(plain, [weak])):
        assert doubt.category is Category.UNCLASSIFIED
        assert doubt.confidence <= sure - 0.1


def test_concurrent_work_with_no_other_signal_is_a_weak_race():
    plain = Evidence(nodeid="t.py::test_x", when="call", message="assert 2 == 3",
                     location="t.py:9")
    threads = replace(plain, workers=(Worker("thread", "feeder", "exited"),
                                      Worker("thread", "drainer", "exited")))
    guess = decide(threads, [])
    assert guess.category is Category.RACE
    assert guess.confidence <= 0.45  # a guess, and said as one
    assert "thread 'feeder' exited; thread 'drainer' exited" in guess.reasons[0]
    assert [rule.id for rule in guess.rules] == ["race.unexplained-concurrency"]
    assert "feeder" in guess.suggestions[0].text
    # nothing ran concurrently: an ordinary bug, not a guess
    assert decide(plain, []).category is Category.UNCLASSIFIED
    # a rule that explains it wins, and the fallback is not consulted
    sure = finding("expectation.threshold", Category.EXPECTATION, 0.7, "2 < 3")
    assert [rule.id for rule in decide(threads, [sure]).rules] == ["expectation.threshold"]
    # a task error nobody retrieved explains it; a pytest-timeout kill is not a race
    hidden = replace(threads, frame_facts=(FrameFact("hidden-error", "KeyError: 'x'"),))
    assert decide(hidden, []).category is Category.UNCLASSIFIED
    limited = replace(threads, timeout=TimeoutInfo(5.0, "signal"))
    assert decide(limited, []).category is Category.RACE  # a limit that did not fire
    killed = replace(threads, timeout=TimeoutInfo(5.0, "signal", fired=True))
    assert decide(killed, []).category is not Category.RACE

    # the fallback is a catalogued rule and can be switched off like any other
    assert decide(threads, [], ("race",)).category is Category.UNCLASSIFIED


def test_a_log_assertion_with_workers_around_is_not_guessed_a_race():
    # which records were emitted depends on the logging setup and what the code logs; the
    # failure lists them. Nearest negative: the same failure raised by the test's own code.
    def failed(*modules: str) -> Evidence:
        error = ExceptionRecord("builtins.AssertionError", ("builtins.AssertionError",),
                                "Unexpected logs found: ['INFO:svc.access:200 GET /']", modules)
        return Evidence(nodeid="t.py::test_x", when="call", message=error.message,
                        exceptions=(error,), workers=(Worker("thread", "server", "exited"),))

    logged = failed("t", "unittest._log", "unittest.case")
    assert decide(logged, []).category is Category.UNCLASSIFIED
    caplog = replace(failed("t"), frame_facts=(FrameFact("caplog", "caplog in test_x"),))
    assert decide(caplog, []).category is Category.UNCLASSIFIED
    assert decide(failed("t"), []).category is Category.RACE


def test_a_failure_alone_rules_out_pollution_however_strong_the_ledger_match():
    polluted = finding("config-pollution.ledger-match", Category.CONFIG_POLLUTION, 0.9,
                       "t.py::test_a left env RETRIES = 0, and this failure mentions it")
    slow = finding("timeout.timeout-error", Category.TIMEOUT, 0.85, "TimeoutError after 0.5 s")
    failed_alone = Evidence(nodeid="t.py::test_x", when="call", message="TimeoutError",
                            reruns=RerunFacts(Verdict.DETERMINISTIC, None, 1, 0))
    diagnosis = decide(failed_alone, [polluted, slow])
    assert diagnosis.category is Category.TIMEOUT
    assert any(line.startswith("ruled out config-pollution: it failed without the earlier "
                               "tests too") for line in diagnosis.reasons)
    # passing alone once is not failing alone: the ledger still speaks
    passed_once = replace(failed_alone, reruns=RerunFacts(Verdict.FLAKY, None, 2, 1))
    assert decide(passed_once, [polluted, slow]).category is Category.CONFIG_POLLUTION


def test_the_fallback_reads_what_the_workers_were_doing_when_it_failed():
    assertion = ExceptionRecord("builtins.AssertionError",
                                ("builtins.AssertionError", "builtins.Exception"), "assert 1 == 2")
    failed = Evidence(nodeid="t.py::test_x", when="call", message="assert 1 == 2",
                      exceptions=(assertion,), location="t.py:9")
    busy = replace(failed, workers=(Worker("thread", "loader", "busy", "load (lib.py:4)"),
                                    Worker("thread", "other", "exited")))
    late = decide(busy, [])
    assert late.category is Category.TIMEOUT
    assert [rule.id for rule in late.rules] == ["timeout.work-in-progress"]
    assert "thread 'loader' busy in load (lib.py:4) was still at work" in late.reasons[0]
    died = replace(failed, workers=(Worker("process", "child", "exited", exit_code=3),
                                    Worker("thread", "loader", "busy", "load (lib.py:4)")))
    assert decide(died, []).category is Category.LIFECYCLE
    # a consumer waiting on its queue is idle: nothing was still at work, so it is the race
    idle = replace(failed, workers=(Worker("thread", "consumer", "idle", "run (lib.py:9)"),
                                    Worker("thread", "producer", "exited")))
    assert decide(idle, []).category is Category.RACE
    # an error that is not an assert was read after the test's finally: no claim on timing
    raised = replace(busy, exceptions=(ExceptionRecord("builtins.KeyError",
                                                       ("builtins.KeyError",), "'x'"),))
    assert decide(raised, []).category is Category.RACE


def test_a_count_short_while_its_worker_was_still_at_work_is_read_too_early():
    from pytest_poolchaos.classify.catalogue import RULES

    assertion = ExceptionRecord("builtins.AssertionError",
                                ("builtins.AssertionError", "builtins.Exception"), "assert 9 == 10")
    short = Evidence(nodeid="t.py::test_x", when="call", message="assert 9 == 10",
                     exceptions=(assertion,), source_line="assert len(done) == 10",
                     comparison=Comparison("==", "9", "10", "int", "int", 9.0, 10.0),
                     workers=(Worker("thread", "uploader", "busy", "upload (lib.py:4)"),))
    found = [f for rule in RULES if (f := rule.check(short)) is not None]
    assert decide(short, found).category is Category.TIMEOUT
    # the worker's queue-wait means it had nothing left to do: then the count is the finding
    idle = replace(short, workers=(Worker("thread", "uploader", "idle", "run (lib.py:4)"),
                                   Worker("thread", "feeder", "exited")))
    found = [f for rule in RULES if (f := rule.check(idle)) is not None]
    assert decide(idle, found).category is not Category.TIMEOUT


def test_an_error_in_code_whose_resource_had_stopped_falls_back_to_lifecycle():
    keyerror = ExceptionRecord("builtins.KeyError", ("builtins.KeyError",), "'report'")
    base = Evidence(nodeid="t.py::test_x", when="call", message="KeyError: 'report'",
                    exceptions=(keyerror,), location="t.py:9",
                    workers=(Worker("thread", "runner", "exited"),
                             Worker("thread", "other", "exited")))
    closed_in_library = replace(base, frame_facts=(FrameFact(
        "closed", "self.loop (_UnixSelectorEventLoop) was closed in result (runner.py:187)"),))
    stopped = decide(closed_in_library, [])
    assert stopped.category is Category.LIFECYCLE
    assert [rule.id for rule in stopped.rules] == ["lifecycle.stopped-under-it"]
    # a pool the test's own with-block shut down says nothing about the library's error
    closed_in_test = replace(base, frame_facts=(FrameFact(
        "closed", "pool (ThreadPoolExecutor) was shut down in test_x (test_app.py:9)"),))
    assert decide(closed_in_test, []).category is Category.RACE
    child_gone = replace(base, workers=(Worker("process", "318", "exited", exit_code=0),))
    assert decide(child_gone, []).category is Category.LIFECYCLE


def test_a_module_that_is_not_installed_is_said_to_be_missing():
    # Seen on two suites: a library's `import yaml` (not installed) and a job store's
    # ImportError raised from the ModuleNotFoundError of its driver. Neither is a bug to fix.
    missing = ExceptionRecord("ModuleNotFoundError", ("builtins.ModuleNotFoundError",
                                                      "builtins.ImportError"),
                              "No module named 'yaml'", ("watchdog.watchmedo",), "cause")
    wrapped = ExceptionRecord("ImportError", ("builtins.ImportError",),
                              "YamlStore requires PyYAML installed", ("app.stores",))
    failed = Evidence(nodeid="t.py::test_x", when="call", message=wrapped.message,
                      exceptions=(wrapped, missing), location="t.py:9")
    said = decide(failed, [])
    assert said.category is Category.UNCLASSIFIED
    assert said.suggestions[0].text.startswith(
        "A module the code needs is not installed here (No module named 'yaml') at t.py:9")
    assert said.suggestions[0].detail == "pytest.importorskip('yaml')"
    # nearest negative: an ImportError with no missing module behind it is the code's own
    broken = replace(failed, exceptions=(ExceptionRecord(
        "ImportError", ("builtins.ImportError",), "cannot import name 'Store' from 'app'",
        ("app.stores",)),))
    assert decide(broken, []).suggestions[0].text.startswith("Treat it as an ordinary bug")
