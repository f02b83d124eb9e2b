"""Metrics of the accuracy benchmark: pure functions from labels and reports to numbers.

Inputs are plain data: ``labels`` is a half's labels.json (see benchmarks/corpus/README.md),
``report`` a poolchaos-report/1 JSON document, ``junit`` the failures of the same run read
from pytest's junit XML. Nothing here runs pytest; ``accuracy.py`` does, and prints what
``evaluate`` returns. Every optional field of the report may be missing, and categories the
plugin does not emit yet (``race``) are simply never predicted.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CATEGORIES = ("timeout", "expectation", "lifecycle", "config-pollution", "mock-gap", "race",
              "unclassified")
#: Predicted "category" of a labelled failure the report has no diagnosis for.
NO_DIAGNOSIS = "none"
#: Predicted "category" of a labelled failure that passed in the run (a corpus problem).
PASSED = "passed"
BINS = 10
#: The plugin's decision constant (classify/decide.py): below it nothing is claimed.
MIN_SCORE = 0.35

Labels = Mapping[str, Mapping[str, Any]]


# -- reading a run ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    id: str
    category: str | None
    score: float | None


@dataclass(frozen=True)
class Prediction:
    """What the report says about one test, with every optional field defaulted."""

    outcome: str
    category: str | None = None
    confidence: float | None = None
    verdict: str = "unknown"
    polluter: str | None = None
    leaks: frozenset[str] = frozenset()
    rules: tuple[Rule, ...] = ()


def predictions(report: Mapping[str, Any]) -> dict[str, Prediction]:
    out = {}
    for test in report.get("tests") or ():
        diagnosis = test.get("diagnosis") or {}
        leaks = frozenset(str(leak.get("kind")) for leak in test.get("leaks") or ()
                          if isinstance(leak, Mapping) and leak.get("kind"))
        out[str(test["nodeid"])] = Prediction(
            outcome=str(test.get("outcome", "failed")),
            category=diagnosis.get("category"),
            confidence=_number(diagnosis.get("confidence")),
            verdict=str(diagnosis.get("verdict") or "unknown"),
            polluter=diagnosis.get("polluter"),
            leaks=leaks,
            rules=normalize_rules(diagnosis.get("rules") or ()),
        )
    return out


def normalize_rules(rules: Iterable[Any]) -> tuple[Rule, ...]:
    """Rules as ``{id, category, score}`` (the contract) or bare id strings (older reports:
    the category is the id's prefix when it names one, the score is unknown)."""
    out = []
    for rule in rules:
        if isinstance(rule, Mapping):
            rule_id = str(rule.get("id", ""))
            category = rule.get("category") or _category_of(rule_id)
            out.append(Rule(rule_id, category, _number(rule.get("score"))))
        elif isinstance(rule, str):
            out.append(Rule(rule, _category_of(rule), None))
    return tuple(out)


def _category_of(rule_id: str) -> str | None:
    prefix = rule_id.split(".", 1)[0]
    return prefix if prefix in CATEGORIES else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


@dataclass(frozen=True)
class Failure:
    """One failed test as pytest's junit XML shows it: the crash line and the traceback."""

    message: str
    text: str

    @property
    def exception_type(self) -> str:
        head = self.message.split(":", 1)[0].strip()
        return head.rsplit(".", 1)[-1] if re.fullmatch(r"[\w.]+", head) else ""

    @property
    def error_lines(self) -> str:
        """The ``E   ...`` lines of the traceback: what a log grep sees, without source code."""
        return "\n".join(line[1:].strip() for line in self.text.splitlines()
                         if line.startswith("E "))


def junit_failures(text: str) -> dict[str, Failure]:
    """Failures and errors by nodeid; the first report of a test wins (call before teardown)."""
    out: dict[str, Failure] = {}
    for case in ET.fromstring(text).iter("testcase"):
        nodeid = junit_nodeid(case.get("classname", ""), case.get("name", ""))
        for child in case:
            if child.tag in ("failure", "error") and nodeid not in out:
                out[nodeid] = Failure(child.get("message", ""), child.text or "")
    return out


def junit_outcomes(text: str) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for case in ET.fromstring(text).iter("testcase"):
        nodeid = junit_nodeid(case.get("classname", ""), case.get("name", ""))
        tags = {child.tag for child in case}
        outcome = ("failed" if "failure" in tags else "error" if "error" in tags
                   else "skipped" if "skipped" in tags else "passed")
        if outcomes.get(nodeid) not in ("failed", "error"):
            outcomes[nodeid] = outcome
    return outcomes


def junit_nodeid(classname: str, name: str) -> str:
    """``tests.test_x.TestY`` + ``test_z[p]`` -> ``tests/test_x.py::TestY::test_z[p]``: the
    module path ends before the first capitalised part (test classes are ``Test*``)."""
    parts = classname.split(".")
    cut = next((i for i, part in enumerate(parts) if part[:1].isupper()), len(parts))
    return "::".join(["/".join(parts[:cut]) + ".py", *parts[cut:], name])


# -- the keyword-only stand-in ------------------------------------------------------------------

#: First match wins; the failure text is the crash line plus the traceback's ``E`` lines.
KEYWORD_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (category, re.compile(pattern, re.IGNORECASE)) for category, pattern in (
        ("timeout", r"time ?out|timed out|TimeoutExpired|\bEmpty\b|deadline"),
        ("mock-gap", r"mock|NotImplementedError|StopIteration|side_effect|\bspec\b"),
        ("lifecycle", r"broken|shut ?down|closed|refused|reset by peer|already in use|"
                      r"already started|started once|EOFError|not running|terminated|exited|"
                      r"died|bad file descriptor"),
        ("race", r"\brace\b|deadlock|\block\b|changed size during iteration|mutated during|"
                 r"modified during|already executing|same thread|another thread"),
        ("config-pollution", r"environ|KeyError: '[A-Z][A-Z0-9_]{2,}'|ModuleNotFoundError|"
                             r"ImportError|FileNotFoundError|locale|codec can't encode"),
        ("expectation", r"assert .* (>=|<=|<|>) |\brate\b|ratio|latency|throughput|percent|"
                        r"\border\b"),
    ))


def keyword_category(failure: Failure | None) -> str:
    if failure is None:
        return "unclassified"
    text = f"{failure.exception_type}: {failure.message}\n{failure.error_lines}"
    for category, pattern in KEYWORD_RULES:
        if pattern.search(text):
            return category
    return "unclassified"


# -- the metrics --------------------------------------------------------------------------------

@dataclass
class Scores:
    precision: float | None
    recall: float | None
    support: int


def failing(labels: Labels) -> dict[str, Mapping[str, Any]]:
    return {nodeid: label for nodeid, label in labels.items() if label.get("category")}


def predicted_categories(labels: Labels, preds: Mapping[str, Prediction]) -> dict[str, str]:
    """Predicted category of every labelled failure (NO_DIAGNOSIS / PASSED when there is none)."""
    out = {}
    for nodeid in failing(labels):
        pred = preds.get(nodeid)
        if pred is None:
            out[nodeid] = NO_DIAGNOSIS
        elif pred.outcome == "passed":
            out[nodeid] = PASSED
        else:
            out[nodeid] = pred.category or NO_DIAGNOSIS
    return out


def accuracy(truth: Mapping[str, str], guess: Mapping[str, str]) -> float | None:
    if not truth:
        return None
    return sum(guess.get(nodeid) == want for nodeid, want in truth.items()) / len(truth)


def confusion(truth: Mapping[str, str], guess: Mapping[str, str]) -> dict[str, Counter[str]]:
    """Rows: labelled category; columns: predicted category."""
    matrix: dict[str, Counter[str]] = defaultdict(Counter)
    for nodeid, want in truth.items():
        matrix[want][guess.get(nodeid, NO_DIAGNOSIS)] += 1
    return dict(matrix)


def per_category(matrix: Mapping[str, Counter[str]],
                 categories: Sequence[str] = CATEGORIES) -> dict[str, Scores]:
    out = {}
    for category in categories:
        hits = matrix.get(category, Counter())[category]
        support = sum(matrix.get(category, Counter()).values())
        predicted = sum(row[category] for row in matrix.values())
        out[category] = Scores(hits / predicted if predicted else None,
                               hits / support if support else None, support)
    return out


def polluter_accuracy(labels: Labels, preds: Mapping[str, Prediction]) -> tuple[int, int]:
    """(right, victims): diagnosis.polluter equals the labelled polluter."""
    victims = {n: label["polluter"] for n, label in labels.items() if label.get("polluter")}
    right = sum(1 for n, polluter in victims.items()
                if (pred := preds.get(n)) is not None and pred.polluter == polluter)
    return right, len(victims)


def verdict_table(labels: Labels, preds: Mapping[str, Prediction]) -> dict[str, Counter[str]]:
    """Rows: labelled verdict of a failure; columns: diagnosis.verdict ('unknown' if none)."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for nodeid, label in failing(labels).items():
        pred = preds.get(nodeid)
        table[str(label.get("verdict"))][pred.verdict if pred else "unknown"] += 1
    return dict(table)


def table_accuracy(table: Mapping[str, Counter[str]]) -> float | None:
    total = sum(sum(row.values()) for row in table.values())
    return sum(row[key] for key, row in table.items()) / total if total else None


@dataclass
class LeakCounts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def leak_scores(labels: Labels, preds: Mapping[str, Prediction]) -> dict[str, LeakCounts]:
    """Per kind, over (test, kind) pairs of every labelled test the report has; key '*' sums."""
    counts: dict[str, LeakCounts] = defaultdict(LeakCounts)
    for nodeid, label in labels.items():
        pred = preds.get(nodeid)
        if pred is None:
            continue
        want, got = set(label.get("leaks") or ()), set(pred.leaks)
        for kind in want | got:
            slot, total = counts[kind], counts["*"]
            hit = (kind in want, kind in got)
            for c in (slot, total):
                c.tp += hit == (True, True)
                c.fn += hit == (True, False)
                c.fp += hit == (False, True)
    return dict(counts)


@dataclass
class Calibration:
    mean_right: float | None
    mean_wrong: float | None
    ece: float | None
    bins: list[tuple[int, float, float]] = field(default_factory=list)  # (n, confidence, acc)


def calibration(pairs: Sequence[tuple[float, bool]], bins: int = BINS) -> Calibration:
    """Expected calibration error over equal-width confidence bins: sum n_b/N |acc_b - conf_b|."""
    if not pairs:
        return Calibration(None, None, None)
    right = [c for c, ok in pairs if ok]
    wrong = [c for c, ok in pairs if not ok]
    grouped: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    for confidence, ok in pairs:
        grouped[min(bins - 1, max(0, math.floor(confidence * bins)))].append((confidence, ok))
    rows, ece = [], 0.0
    for index in sorted(grouped):
        members = grouped[index]
        conf = sum(c for c, _ in members) / len(members)
        acc = sum(ok for _, ok in members) / len(members)
        ece += len(members) / len(pairs) * abs(acc - conf)
        rows.append((len(members), conf, acc))
    return Calibration(_mean(right), _mean(wrong), ece, rows)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def confidence_pairs(labels: Labels, preds: Mapping[str, Prediction]) -> list[tuple[float, bool]]:
    out = []
    for nodeid, label in failing(labels).items():
        pred = preds.get(nodeid)
        if pred is not None and pred.confidence is not None and pred.outcome != "passed":
            out.append((pred.confidence, pred.category == label["category"]))
    return out


def corpus_problems(labels: Labels, preds: Mapping[str, Prediction]) -> list[str]:
    """Ways the run disagrees with the corpus itself (not with the diagnosis)."""
    problems = []
    for nodeid, label in labels.items():
        pred = preds.get(nodeid)
        if pred is None:
            problems.append(f"{nodeid}: labelled but not in the report")
        elif (pred.outcome == "passed") != (label.get("category") is None):
            problems.append(f"{nodeid}: {pred.outcome}, labelled "
                            f"{label.get('category') or 'passing'}")
    problems += [f"{nodeid}: in the report but not labelled" for nodeid in preds
                 if nodeid not in labels]
    return problems


def evaluate(labels: Labels, report: Mapping[str, Any],
             failures: Mapping[str, Failure] | None = None) -> dict[str, Any]:
    """Every metric of one run, as JSON-ready data."""
    preds = predictions(report)
    truth = {n: str(label["category"]) for n, label in failing(labels).items()}
    guess = predicted_categories(labels, preds)
    matrix = confusion(truth, guess)
    verdicts = verdict_table(labels, preds)
    right, victims = polluter_accuracy(labels, preds)
    calib = calibration(confidence_pairs(labels, preds))
    out: dict[str, Any] = {
        "failures": len(truth),
        "accuracy": accuracy(truth, guess),
        "per_category": {c: vars(s) for c, s in per_category(matrix).items()},
        "confusion": {row: dict(cols) for row, cols in matrix.items()},
        "polluter": {"right": right, "victims": victims,
                     "accuracy": right / victims if victims else None},
        "verdict": {"accuracy": table_accuracy(verdicts),
                    "table": {row: dict(cols) for row, cols in verdicts.items()}},
        "leaks": {kind: {"tp": c.tp, "fp": c.fp, "fn": c.fn, "precision": c.precision,
                         "recall": c.recall}
                  for kind, c in sorted(leak_scores(labels, preds).items())},
        "calibration": {"mean_confidence_right": calib.mean_right,
                        "mean_confidence_wrong": calib.mean_wrong, "ece": calib.ece,
                        "bins": calib.bins},
        "corpus_problems": corpus_problems(labels, preds),
    }
    if failures is not None:
        keyword = {n: keyword_category(failures.get(n)) for n in truth}
        kmatrix = confusion(truth, keyword)
        out["keyword"] = {"accuracy": accuracy(truth, keyword),
                          "per_category": {c: vars(s) for c, s in per_category(kmatrix).items()},
                          "confusion": {row: dict(cols) for row, cols in kmatrix.items()}}
    return out


# -- fitting rule weights on the tune half ------------------------------------------------------

def decide(rules: Sequence[Rule], weights: Mapping[str, float]) -> tuple[str, float]:
    """The plugin's decision (classify/decide.py) with each rule's score scaled by its weight:
    per category 1 - prod(1 - s), the best category above MIN_SCORE wins, confidence is the
    winner's score lowered as the runner-up gets close; otherwise unclassified."""
    totals: dict[str, float] = {}
    for rule in rules:
        if rule.category is None or rule.score is None or rule.category == "unclassified":
            continue
        score = min(1.0, max(0.0, rule.score * weights.get(rule.id, 1.0)))
        totals[rule.category] = 1.0 - (1.0 - totals.get(rule.category, 0.0)) * (1.0 - score)
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    if not ranked or ranked[0][1] < MIN_SCORE:
        return "unclassified", 0.5 if ranked else 0.7
    best = ranked[0][1]
    runner = ranked[1][1] if len(ranked) > 1 else 0.0
    closeness = (runner / best) ** 2 if best else 1.0
    return ranked[0][0], max(0.05, min(0.99, best * (1.0 - 0.5 * closeness)))


@dataclass
class Fit:
    weights: dict[str, float]
    usable: int
    accuracy_before: float | None
    accuracy_after: float | None
    ece_before: float | None
    ece_after: float | None


WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)


def fit_weights(reports: Sequence[Mapping[str, Any]], labels: Labels,
                grid: Sequence[float] = WEIGHT_GRID, passes: int = 4) -> Fit:
    """Per-rule multiplicative weights that maximise accuracy on ``labels``, then calibration.

    Why multiplicative weights: they keep the plugin's decision code and its evidence exactly as
    they are (a weight of 1.0 changes nothing, 0.0 switches a rule off), each number is
    traceable to one rule, and the rules engineers can apply them where a Finding's score is
    made. The fit replays the plugin's decision (``decide``) on every labelled failure whose
    report lists scored rules, and does coordinate ascent over ``grid`` per rule: the objective
    is accuracy first, then a lower expected calibration error, then staying close to 1.0 (so
    rules the corpus does not exercise keep their weight). Reports that only name rule ids
    (no scores) cannot be replayed and are not used; ``usable`` says how many were, and the
    rules they name keep a weight of 1.0.
    """
    cases = _cases(reports, labels)
    rule_ids = sorted({rule.id for rules, _ in cases for rule in rules})
    seen = {rule.id for report in reports for pred in predictions(report).values()
            for rule in pred.rules}
    weights = dict.fromkeys(sorted(seen | set(rule_ids)), 1.0)
    before = _objective(cases, weights)
    for _ in range(passes):
        changed = False
        for rule_id in rule_ids:
            best_value, best_key = weights[rule_id], _key(cases, weights)
            for value in grid:
                key = _key(cases, {**weights, rule_id: value})
                if key > best_key:
                    best_value, best_key = value, key
            if best_value != weights[rule_id]:
                weights[rule_id], changed = best_value, True
        if not changed:
            break
    after = _objective(cases, weights)
    return Fit(weights, len(cases), before[0], after[0], before[1], after[1])


def _cases(reports: Sequence[Mapping[str, Any]],
           labels: Labels) -> list[tuple[tuple[Rule, ...], str]]:
    cases = []
    for report in reports:
        for nodeid, pred in predictions(report).items():
            label = labels.get(nodeid)
            if not label or not label.get("category") or pred.outcome == "passed":
                continue
            if any(rule.score is not None for rule in pred.rules):
                cases.append((pred.rules, str(label["category"])))
    return cases


def _objective(cases: Sequence[tuple[tuple[Rule, ...], str]],
               weights: Mapping[str, float]) -> tuple[float | None, float | None]:
    if not cases:
        return None, None
    pairs = []
    for rules, want in cases:
        got, confidence = decide(rules, weights)
        pairs.append((confidence, got == want))
    return sum(ok for _, ok in pairs) / len(pairs), calibration(pairs).ece


def _key(cases: Sequence[tuple[tuple[Rule, ...], str]],
         weights: Mapping[str, float]) -> tuple[float, float, float]:
    acc, ece = _objective(cases, weights)
    drift = sum(abs(w - 1.0) for w in weights.values())
    return (acc or 0.0, -(ece or 0.0), -drift)
