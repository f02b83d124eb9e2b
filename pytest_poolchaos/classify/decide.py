"""From findings to one Diagnosis: suppression, scores per category, winner, confidence.

This is the single point where a category is chosen (aesthetics.md habit 12): built-in and
third-party findings go through the same filter, and every evidence line and suggestion is
redacted here on its way out.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from ..guard import record
from ..model import Category, Diagnosis, Evidence, Finding, RuleScore, Suggestion, Verdict
from ..sanitize import redact_text
from .signals import describe, hidden_errors, secs, where
from .weights import weighted

__all__ = ["MIN_SCORE", "combine", "decide", "is_disabled"]

#: Below this combined score a category is not claimed: the failure stays unclassified.
MIN_SCORE = 0.35
_MAX_LINES = 8
_MAX_SUGGESTIONS = 5


def is_disabled(rule_id: str, disabled: Iterable[str]) -> bool:
    """``disabled`` holds rule ids, or prefixes such as a category name (``mock-gap``)."""
    return any(rule_id == off or rule_id.startswith(off + ".") for off in disabled)


def combine(scores: Iterable[float]) -> float:
    """Independent signals for one category reinforce each other: 1 - prod(1 - s)."""
    missing = 1.0
    for score in scores:
        missing *= 1.0 - score
    return 1.0 - missing


def decide(evidence: Evidence, findings: Sequence[object],
           disabled: Sequence[str] = ()) -> Diagnosis:
    kept = [f for f in _valid(findings) if not is_disabled(f.rule, disabled)]
    ruled_out = _refuted(evidence)
    dropped = [f for f in kept if f.category in ruled_out and f.rule not in _RUNNER_STATE]
    kept = [f for f in kept if f not in dropped]
    grouped: dict[Category, list[Finding]] = defaultdict(list)
    for finding in sorted(kept, key=lambda f: -f.score):
        grouped[finding.category].append(finding)
    # A category only supporting findings speak for (each below the minimum: a reading that
    # stepped back because another owns the event, a leftover in effect) does not outrank
    # one that a finding claims, however many of them there are: two readings of the same
    # refusal are not two proofs.
    totals = sorted(((combine(weighted(f.rule, f.score) for f in group), category)
                     for category, group in grouped.items()),
                    key=lambda t: (not _claimed(grouped[t[1]]), -t[0]))
    if not totals or totals[0][0] < MIN_SCORE:
        fallback = _fallback(evidence, disabled)
        if fallback is None:
            return _unclassified(evidence, kept, _ruled_out_lines(dropped))
        kept.append(fallback)
        return _diagnosis(evidence, fallback.category, fallback.score,
                          [*fallback.reasons, *_ruled_out_lines(dropped)],
                          list(fallback.suggestions), _scores(kept))
    best, category = totals[0]
    runner = totals[1] if len(totals) > 1 else None
    lines = _lines(grouped[category]) + _ruled_out_lines(dropped)
    if runner is not None and runner[0] >= 0.5 * best:
        lines.append(f"also consistent with {runner[1].value} (score {runner[0]:.2f}): "
                     f"{grouped[runner[1]][0].reasons[0]}")
    return _diagnosis(evidence, category, _confidence(best, runner[0] if runner else 0.0),
                      lines, [s for f in _speaking(grouped[category]) for s in f.suggestions],
                      _scores(kept))


def _fallback(evidence: Evidence, disabled: Sequence[str]) -> Finding | None:
    """The first fallback rule that speaks, where no rule claimed the failure."""
    from .catalogue import FALLBACKS, run_rules

    spoken = run_rules([rule for rule in FALLBACKS if not is_disabled(rule.id, disabled)],
                       evidence)
    return _clamped(spoken[0]) if spoken else None


#: pollution by what the test runner changes around every test, not by earlier tests: failing
#: alone is what these predict, so the reruns that refute pollution do not refute them
_RUNNER_STATE = frozenset({"config-pollution.timeout-alarm"})


def _refuted(evidence: Evidence) -> frozenset[Category]:
    """Categories the reruns disproved: a test that failed every time it ran without the
    tests before it was not broken by what they left behind, whatever is still in effect."""
    reruns = evidence.reruns
    if reruns is not None and reruns.alone_runs and not reruns.alone_passes:
        return frozenset({Category.CONFIG_POLLUTION})
    return frozenset()


def _ruled_out_lines(dropped: Sequence[Finding]) -> list[str]:
    strongest = max(dropped, key=lambda f: f.score, default=None)
    if strongest is None or strongest.score < MIN_SCORE:
        return []
    return [f"ruled out {strongest.category.value}: it failed without the earlier tests too "
            f"({strongest.reasons[0]})"]


def _claimed(group: Sequence[Finding]) -> bool:
    """A finding of the group is strong enough to claim its category alone."""
    return any(f.score >= MIN_SCORE for f in group)


def _speaking(group: Sequence[Finding]) -> Sequence[Finding]:
    """Supporting findings (too weak to claim a category alone) add to its score but speak
    only when nothing stronger does: they restate, or point at unrelated leftovers."""
    return [f for f in group if f.score >= MIN_SCORE] or group


def _lines(group: Sequence[Finding]) -> list[str]:
    return [line for f in _speaking(group) for line in f.reasons]


def _scores(findings: Sequence[Finding]) -> list[RuleScore]:
    """Every rule that fired, strongest first, so a confidence can be traced to its causes."""
    ranked = sorted(findings, key=lambda f: -f.score)
    return [RuleScore(f.rule, f.category, f.score) for f in ranked]


def _confidence(best: float, runner: float) -> float:
    """The winner's score, lowered as the runner-up gets close to it (or, where only
    supporting findings speak for the runner-up, past it)."""
    closeness = min(1.0, (runner / best) ** 2) if best else 1.0
    return max(0.05, min(0.99, best * (1.0 - 0.5 * closeness)))


def _valid(findings: Sequence[object]) -> list[Finding]:
    valid = []
    for finding in findings:
        if not isinstance(finding, Finding) or not isinstance(finding.category, Category):
            record("classify", TypeError(f"not a Finding: {finding!r}"))
        elif not finding.reasons:
            record("classify", ValueError(f"rule {finding.rule!r} gave no evidence lines"))
        elif finding.category is not Category.UNCLASSIFIED:
            try:
                valid.append(_clamped(finding))
            except (TypeError, ValueError) as error:
                record("classify", error)
    return valid


def _clamped(finding: Finding) -> Finding:
    """A third party's finding in the shape every reporter can print: text lines, Suggestion
    objects, a score within [0, 1]."""
    score = min(1.0, max(0.0, float(finding.score)))
    reasons = tuple(line if isinstance(line, str) else repr(line) for line in finding.reasons)
    suggestions = tuple(s if isinstance(s, Suggestion) else Suggestion(str(s))
                        for s in finding.suggestions)
    return Finding(str(finding.rule), finding.category, score, reasons, suggestions)


def _unclassified(evidence: Evidence, weak: Sequence[Finding],
                  ruled_out: Sequence[str] = ()) -> Diagnosis:
    exc = evidence.outermost
    what = describe(exc) if exc else (evidence.message.splitlines() or ["the failure"])[0]
    lines = [f"no timeout, expectation, lifecycle, pollution or mock signal in {what}"
             f"{where(evidence)}"]
    lines += [f"a task raised {text}, and nobody retrieved it"
              for text in hidden_errors(evidence)[:2]]
    lines += [f"weak {f.category.value} signal ({f.score:.2f}): {f.reasons[0]}" for f in weak]
    lines += ruled_out
    return _diagnosis(evidence, Category.UNCLASSIFIED, _unclassified_confidence(evidence, weak),
                      lines, [_unclassified_advice(evidence, what)], _scores(weak))


def _unclassified_confidence(evidence: Evidence, weak: Sequence[Finding]) -> float:
    """"No signal" is worth most where nothing a signal could have come from was there: a
    test that ran nothing concurrently, used no doubles and failed the same way alone. Each
    thing the scope saw that a missing rule could have explained lowers it."""
    confidence = 0.8
    if hidden_errors(evidence):
        confidence += 0.1  # an error the tasks raised explains it, whatever else ran
    elif evidence.concurrent or evidence.spawned:
        # concurrent work ran and no rule spoke: most such failures are a concurrency fault
        # no rule knows yet, so "an ordinary bug" is a guess here
        confidence -= 0.35
    if evidence.mocked:
        confidence -= 0.1
    reruns = evidence.reruns
    verdict = reruns.verdict if reruns is not None else Verdict.UNKNOWN
    if verdict is Verdict.DETERMINISTIC:
        confidence += 0.05
    elif reruns is not None and (verdict is not Verdict.UNKNOWN or reruns.alone_runs):
        confidence -= 0.2  # it flipped, or passed alone: something outside the code decides
    heard = {f.category for f in weak if weighted(f.rule, f.score) >= _HEARD}
    confidence -= 0.1 * len(heard)
    return max(0.2, min(0.9, confidence))


#: a weak finding this strong (after its weight) makes "no signal" less sure
_HEARD = 0.15


def _unclassified_advice(evidence: Evidence, what: str) -> Suggestion:
    """"An ordinary bug" only where nothing observed says otherwise: not for this plugin's
    own leak error, not while earlier tests' changes are in effect, not for a flaky test."""
    when = f"during {evidence.when}" + (f" after {secs(evidence.duration_s)}"
                                         if evidence.duration_s else "")
    leaks = evidence.leaks if _LEAKS_FAIL in evidence.message else ()
    if leaks:
        shown = "; ".join(leak.detail for leak in leaks[:2])
        return Suggestion(f"This error is --poolchaos-leaks=fail: the test left "
                          f"{len(leaks)} thing(s) behind ({shown}). Stop them in the test's "
                          f"teardown (join the thread, shut the pool down, terminate the "
                          f"process); the test's own checks passed.")
    hidden = hidden_errors(evidence)
    if hidden:
        return Suggestion(f"{len(hidden)} task(s) raised and nobody looked: {hidden[0]}. "
                          f"That error is the bug behind {what}{where(evidence)}; call "
                          f".result() on every future (or use executor.map, which re-raises) "
                          f"so it fails where it happens, then fix it there.")
    missing = next((exc for exc in evidence.exceptions
                    if exc.is_a("builtins.ModuleNotFoundError")), None)
    if missing is not None:
        return _missing_module(evidence, missing.message)
    verdict = evidence.reruns.verdict if evidence.reruns is not None else Verdict.UNKNOWN
    if verdict is Verdict.FLAKY:
        return Suggestion(f"{what} {when}{where(evidence)} does not fail every run (flaky), yet "
                          f"no timing, pollution or mock signal was seen: look for randomness "
                          f"or shared state in the code it calls.")
    if evidence.pollution and verdict is not Verdict.DETERMINISTIC:
        first = evidence.pollution[0]
        return Suggestion(f"{len(evidence.pollution)} global change(s) from earlier tests were "
                          f"in effect ({first.describe()} by {first.nodeid}) when {what} "
                          f"happened{where(evidence)}: run it alone (pytest "
                          f"'{evidence.nodeid}'); if it passes there, that change is the cause, "
                          f"else fix the code or the test there.")
    raiser = next(iter(evidence.raised_in), "")
    module = raiser.partition(":")[0].rsplit(".", 1)[-1]
    inside = "" if not raiser or module.startswith("test_") else \
        f" (raised in {raiser.replace(':', '.')})"
    return Suggestion(f"Treat it as an ordinary bug: {what} {when}{where(evidence)}{inside} "
                      f"should fail the same way when the test runs alone; fix the code "
                      f"or the test there.")


def _missing_module(evidence: Evidence, message: str) -> Suggestion:
    """A module the code imports is not installed where the tests ran (the failure's chain
    holds a ModuleNotFoundError, whatever the code raised on top of it)."""
    named = _NO_MODULE.search(message)
    skip = f"pytest.importorskip({named.group(1)!r})" if named else ""
    return Suggestion(f"A module the code needs is not installed here ({message})"
                      f"{where(evidence)}: install it where the tests run (the project's test "
                      f"extras), or skip the test where it is optional"
                      f"{f', e.g. {skip}' if skip else ' (pytest.importorskip)'}. Nothing "
                      f"concurrent is involved.", skip)


_NO_MODULE = re.compile(r"No module named '([\w.]+)'")
#: the words of this plugin's own teardown error (scope._fail_message)
_LEAKS_FAIL = "(--poolchaos-leaks=fail)"


def _diagnosis(evidence: Evidence, category: Category, confidence: float, lines: list[str],
               suggestions: list[Suggestion], rules: list[RuleScore]) -> Diagnosis:
    unique = list(dict.fromkeys(redact_text(line) for line in lines))[:_MAX_LINES]
    advice = {s.text: s for s in suggestions}  # the same advice from two rules is shown once
    reruns = evidence.reruns
    return Diagnosis(
        category=category,
        confidence=round(confidence, 3),
        reasons=tuple(unique),
        suggestions=tuple(Suggestion(redact_text(s.text), redact_text(s.detail))
                          for s in list(advice.values())[:_MAX_SUGGESTIONS]),
        rules=tuple(rules),
        verdict=reruns.verdict if reruns is not None else Verdict.UNKNOWN,
        polluter=reruns.polluter if reruns is not None else None,
    )
