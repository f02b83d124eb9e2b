"""The accuracy benchmark's metrics: synthetic labels and reports in, numbers out."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_poolchaos.classify import decide as plugin_decide

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


am = _load("accuracy_metrics")


def label(category: str | None, verdict: str | None = "deterministic",
          polluter: str | None = None, leaks: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"category": category, "verdict": verdict if category else None,
            "polluter": polluter, "leaks": list(leaks), "source": "synthetic"}


def entry(nodeid: str, outcome: str = "failed", category: str | None = None,
         **diagnosis: Any) -> dict[str, Any]:
    leaks = diagnosis.pop("leaks", [])
    diag = None if category is None else {"category": category, **diagnosis}
    return {"nodeid": nodeid, "outcome": outcome, "diagnosis": diag,
            "leaks": [{"kind": kind, "detail": "x"} for kind in leaks]}


LABELS = {
    "t.py::a": label("timeout"),
    "t.py::b": label("timeout"),
    "t.py::c": label("race"),
    "t.py::d": label("config-pollution", "order-dependent", polluter="t.py::p"),
    "t.py::e": label("unclassified"),
    "t.py::p": label(None, leaks=("env",)),
    "t.py::q": label(None, leaks=("thread", "socket")),
}
REPORT = {"tests": [
    entry("t.py::a", category="timeout", confidence=0.9, verdict="deterministic"),
    entry("t.py::b", category="lifecycle", confidence=0.6, verdict="flaky"),
    entry("t.py::c", category="expectation", confidence=0.7),
    entry("t.py::d", category="config-pollution", confidence=0.8,
         verdict="order-dependent", polluter="t.py::p"),
    entry("t.py::e"),  # failed without a diagnosis
    entry("t.py::p", outcome="passed", leaks=["env", "cwd"]),
    entry("t.py::q", outcome="passed", leaks=["thread"]),
]}


def test_predictions_default_every_optional_field():
    preds = am.predictions({"tests": [{"nodeid": "x::y", "outcome": "failed",
                                       "diagnosis": {"category": "race"}}]})
    pred = preds["x::y"]
    assert (pred.category, pred.confidence, pred.verdict, pred.polluter, pred.leaks,
            pred.rules) == ("race", None, "unknown", None, frozenset(), ())


def test_rules_accept_contract_dicts_and_bare_ids():
    rules = am.normalize_rules([{"id": "timeout.event-wait", "category": "timeout",
                                 "score": 0.7}, "mock-gap.spec-attribute", "thirdparty.rule"])
    assert rules == (am.Rule("timeout.event-wait", "timeout", 0.7),
                     am.Rule("mock-gap.spec-attribute", "mock-gap", None),
                     am.Rule("thirdparty.rule", None, None))


def test_missing_diagnosis_and_unexpected_pass_are_wrong_predictions():
    labels = {"t::a": label("timeout"), "t::b": label("lifecycle")}
    report = {"tests": [entry("t::a"), entry("t::b", outcome="passed")]}
    guess = am.predicted_categories(labels, am.predictions(report))
    assert guess == {"t::a": am.NO_DIAGNOSIS, "t::b": am.PASSED}


def test_accuracy_confusion_and_per_category_scores():
    metrics = am.evaluate(LABELS, REPORT)
    assert metrics["accuracy"] == pytest.approx(2 / 5)
    assert metrics["confusion"]["timeout"] == {"timeout": 1, "lifecycle": 1}
    assert metrics["confusion"]["unclassified"] == {am.NO_DIAGNOSIS: 1}
    timeout = metrics["per_category"]["timeout"]
    assert (timeout["precision"], timeout["recall"], timeout["support"]) == (1.0, 0.5, 2)
    race = metrics["per_category"]["race"]  # never predicted: no precision, zero recall
    assert (race["precision"], race["recall"], race["support"]) == (None, 0.0, 1)
    assert metrics["per_category"]["mock-gap"] == {"precision": None, "recall": None,
                                                   "support": 0}


def test_polluter_accuracy_counts_victims_only():
    right, victims = am.polluter_accuracy(LABELS, am.predictions(REPORT))
    assert (right, victims) == (1, 1)
    wrong = {"tests": [entry("t.py::d", category="config-pollution", polluter="t.py::a")]}
    assert am.polluter_accuracy(LABELS, am.predictions(wrong)) == (0, 1)


def test_verdicts_compare_labelled_failures_only():
    table = am.verdict_table(LABELS, am.predictions(REPORT))
    assert table == {"deterministic": {"deterministic": 1, "flaky": 1, "unknown": 2},
                     "order-dependent": {"order-dependent": 1}}
    assert am.table_accuracy(table) == pytest.approx(2 / 5)


def test_leak_scores_per_test_and_kind():
    scores = am.leak_scores(LABELS, am.predictions(REPORT))
    assert (scores["env"].tp, scores["cwd"].fp, scores["socket"].fn) == (1, 1, 1)
    assert (scores["thread"].precision, scores["socket"].recall) == (1.0, 0.0)
    total = scores["*"]
    assert (total.tp, total.fp, total.fn) == (2, 1, 1)
    assert total.precision == pytest.approx(2 / 3)


def test_calibration_by_hand():
    # bin 9: 0.95 right, 0.95 wrong -> |0.5 - 0.95|; bin 2: 0.2 wrong -> |0 - 0.2|
    cal = am.calibration([(0.95, True), (0.95, False), (0.2, False)])
    assert cal.ece == pytest.approx(2 / 3 * 0.45 + 1 / 3 * 0.2)
    assert (cal.mean_right, cal.mean_wrong) == (0.95, pytest.approx(0.575))
    assert [n for n, _, _ in cal.bins] == [1, 2]
    assert am.calibration([]).ece is None


def test_confidence_of_one_lands_in_the_top_bin():
    cal = am.calibration([(1.0, True), (0.0, False)])
    assert cal.ece == pytest.approx(0.0)


def test_corpus_problems_name_disagreements_with_the_labels():
    report = {"tests": [entry("t::a", outcome="passed"), entry("t::extra")]}
    problems = am.corpus_problems({"t::a": label("timeout"), "t::b": label(None)},
                                  am.predictions(report))
    assert problems == ["t::a: passed, labelled timeout", "t::b: labelled but not in the report",
                        "t::extra: in the report but not labelled"]


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.test_a" name="test_one[x-1]">
  <failure message="TimeoutError: timed out">def test_one():
&gt;   roundtrip()
E   TimeoutError: timed out</failure></testcase>
<testcase classname="tests.test_a.TestPool" name="test_two">
  <failure message="assert 1 == 2">E   assert 1 == 2</failure>
  <error message="teardown failed">E   RuntimeError: boom</error></testcase>
<testcase classname="tests.sub.test_b" name="test_three" />
</testsuite></testsuites>"""


def test_junit_failures_and_nodeids():
    failures = am.junit_failures(JUNIT)
    assert set(failures) == {"tests/test_a.py::TestPool::test_two",
                             "tests/test_a.py::test_one[x-1]"}
    first = failures["tests/test_a.py::test_one[x-1]"]
    assert (first.exception_type, first.error_lines) == ("TimeoutError",
                                                         "TimeoutError: timed out")
    assert failures["tests/test_a.py::TestPool::test_two"].message == "assert 1 == 2"
    assert am.junit_outcomes(JUNIT) == {"tests/test_a.py::test_one[x-1]": "failed",
                                        "tests/test_a.py::TestPool::test_two": "failed",
                                        "tests/sub/test_b.py::test_three": "passed"}


@pytest.mark.parametrize(("message", "category"), [
    ("TimeoutError: timed out", "timeout"),
    ("TypeError: object Mock can't be used in 'await' expression", "mock-gap"),
    ("RuntimeError: cannot schedule new futures after shutdown", "lifecycle"),
    ("RuntimeError: dictionary changed size during iteration", "race"),
    ("KeyError: 'CACHEKIT_DIR'", "config-pollution"),
    ("AssertionError: assert 0.9 >= 0.99", "expectation"),
    ("ZeroDivisionError: division by zero", "unclassified"),
])
def test_keyword_stand_in(message, category):
    assert am.keyword_category(am.Failure(message, f"E   {message}")) == category


def test_keyword_stand_in_reads_no_source_code():
    # Comments and code in the traceback body are not failure text.
    failure = am.Failure("assert 1 == 2", "    # deadlock timeout mock\nE   assert 1 == 2")
    assert am.keyword_category(failure) == "unclassified"
    assert am.keyword_category(None) == "unclassified"


def test_evaluate_adds_the_keyword_baseline_when_failures_are_given():
    failures = {"t.py::a": am.Failure("TimeoutError: timed out", ""),
                "t.py::c": am.Failure("RuntimeError: release unlocked lock", "")}
    metrics = am.evaluate(LABELS, REPORT, failures)
    assert metrics["keyword"]["accuracy"] == pytest.approx(3 / 5)  # a, c, e (unclassified)
    assert "keyword" not in am.evaluate(LABELS, REPORT)


def test_replayed_decision_matches_the_plugin_constants():
    assert am.MIN_SCORE == plugin_decide.MIN_SCORE
    assert am.decide([am.Rule("x.a", "timeout", 0.5), am.Rule("x.b", "timeout", 0.5)],
                     {}) == ("timeout", pytest.approx(plugin_decide.combine([0.5, 0.5])))
    assert am.decide([am.Rule("x.a", "timeout", 0.2)], {}) == ("unclassified", 0.5)
    assert am.decide([], {}) == ("unclassified", 0.7)


def scored(nodeid: str, rules: list[tuple[str, str, float]]) -> dict[str, Any]:
    return entry(nodeid, category="timeout",
                rules=[{"id": i, "category": c, "score": s} for i, c, s in rules])


def test_fit_weights_turns_down_a_misleading_rule():
    # "lifecycle.greedy" fires on timeouts too and outscores the timeout rule there.
    labels = {f"t::{i}": label("timeout") for i in range(4)}
    labels |= {f"t::l{i}": label("lifecycle") for i in range(2)}
    report = {"tests": [
        *(scored(f"t::{i}", [("timeout.wait", "timeout", 0.5),
                             ("lifecycle.greedy", "lifecycle", 0.8)]) for i in range(4)),
        *(scored(f"t::l{i}", [("lifecycle.greedy", "lifecycle", 0.8)]) for i in range(2)),
    ]}
    fit = am.fit_weights([report], labels)
    assert fit.usable == 6
    assert fit.accuracy_before == pytest.approx(2 / 6)
    assert fit.accuracy_after == 1.0
    assert fit.weights["lifecycle.greedy"] < 1.0
    assert fit.weights["timeout.wait"] >= 1.0


def test_fit_weights_leaves_rules_alone_without_scores():
    labels = {"t::a": label("timeout")}
    report = {"tests": [entry("t::a", category="timeout", rules=["timeout.event-wait"])]}
    fit = am.fit_weights([report], labels)
    assert (fit.usable, fit.weights, fit.accuracy_before) == (0, {"timeout.event-wait": 1.0},
                                                              None)


def test_cost_selection_keeps_polluters_in_order(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    accuracy = _load("accuracy")
    labels = {"a::1": label(None), "a::2": label("timeout"),
              "a::3": label("config-pollution", "order-dependent", polluter="a::1"),
              "a::4": label("race"), "a::5": label("race")}
    order = ["a::1", "a::2", "a::3", "a::4", "a::5"]
    assert accuracy.cost_selection(labels, order, count=3) == ["a::1", "a::2", "a::3", "a::4"]
