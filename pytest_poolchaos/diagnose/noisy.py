"""Chaos reruns (``--poolchaos-rerun-chaos``): rerun a failure alone under noise.

A test that passes every quiet rerun and fails under noise is load-sensitive: flaky, and the
evidence names the knob that breaks it (each knob alone is tried once, with the seed of the
first noisy failure, until one reproduces it). Its suggestion sizes the deadline or the
threshold from what the noisy runs measured, since that is the load CI puts on the test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model import Attempt, Category, Diagnosis, Evidence, Suggestion, Verdict
from .measures import fmt, p95
from .reruns import RAISE_FACTOR, values
from .verdict import Tally, passed

if TYPE_CHECKING:
    from ..chaos.spec import ChaosSpec
    from .runner import Runner

HEADROOM = 2.0  # a deadline of this times the p95 seen under noise
MARGIN = 0.2  # a threshold this much beyond the worst value seen under noise
_SLACK_S = 30.0


@dataclass
class Noisy:
    """What the noisy reruns of one test showed."""

    spec: ChaosSpec
    runs: list[Attempt] = field(default_factory=list)  # under the whole spec
    knob_runs: list[Attempt] = field(default_factory=list)  # one knob at a time
    knob: str | None = None  # the knob that broke it alone
    quiet_clean: bool = False  # every quiet rerun passed

    @property
    def attempts(self) -> list[Attempt]:
        return [*self.runs, *self.knob_runs]

    @property
    def failures(self) -> list[Attempt]:
        return [a for a in self.runs if not passed(a)]

    @property
    def load_sensitive(self) -> bool:
        return self.quiet_clean and bool(self.failures)


def rerun_under_noise(runner: Runner, spec: ChaosSpec, nodeid: str, reruns: int,
                      expected_s: float, limit: float | None, quiet: Tally,
                      step: Callable[[str], None]) -> Noisy:
    """``reruns`` runs alone under ``spec`` (reseeded each time), then the knob search."""
    noisy = Noisy(spec, quiet_clean=quiet.runs > 0 and quiet.passes == quiet.runs)
    for number in range(reruns):
        step(f"chaos rerun {number + 1}/{reruns}")
        noisy.runs.append(_run(runner, spec.reseeded(spec.seed + number), nodeid,
                               expected_s, limit))
    if noisy.load_sensitive and len(spec.knobs()) > 1:
        seed = noisy.failures[0].chaos or spec.describe()
        first = _seed_of(seed, spec.seed)
        for knob in ("cpu", "switch", "jitter", "slow-start"):
            alone = spec.reseeded(first).only(knob)
            if alone.quiet:
                continue
            step(f"chaos rerun with {knob} alone")
            attempt = _run(runner, alone, nodeid, expected_s, limit, f"knob {knob} alone")
            noisy.knob_runs.append(attempt)
            if not passed(attempt):
                noisy.knob = knob
                break
    elif noisy.load_sensitive:
        noisy.knob = spec.knobs()[0].split("=")[0]
    return noisy


def _run(runner: Runner, spec: ChaosSpec, nodeid: str, expected_s: float,
         limit: float | None, note: str = "") -> Attempt:
    raised = limit * RAISE_FACTOR if limit else None
    budget = (raised or 0.0) + max(expected_s, 1.0) * 5 + _SLACK_S
    text = spec.describe()
    run = runner.run([nodeid], timeout=budget, raise_limit=raised,
                     extra=[f"--poolchaos-chaos={text}"])
    test = run.result(nodeid)
    outcome = test.outcome if test.outcome in ("passed", "failed", "error", "skipped") \
        else "failed"
    message = f"{note}: {test.message}" if note and test.message else (note or test.message)
    return Attempt("chaos", outcome, round(test.duration_s, 6), message[:500],
                   values(test.evidence, test.duration_s, limit, raised), chaos=text)


def _seed_of(text: str, default: int) -> int:
    for part in text.split(","):
        if part.startswith("seed="):
            return int(part[5:])
    return default


def apply(noisy: Noisy, diagnosis: Diagnosis, evidence: Evidence | None) -> Diagnosis:
    """The diagnosis with the noisy attempts, the load-sensitive verdict and its advice."""
    runs = noisy.runs
    failed = len(noisy.failures)
    line = (f"under noise ({noisy.spec.describe()}, reseeded per run): failed {failed}/"
            f"{len(runs)} alone")
    lines = [line]
    advice: list[Suggestion] = []
    verdict = diagnosis.verdict
    if noisy.load_sensitive:
        verdict = Verdict.FLAKY
        broke = (f"; {noisy.knob} alone broke it" if noisy.knob else
                 "; no knob alone broke it (it takes them together)")
        lines = [f"load-sensitive: passed every quiet rerun, failed {failed}/{len(runs)} "
                 f"under noise ({noisy.spec.describe()}){broke}"]
        advice = sizing(diagnosis.category, evidence, noisy)
    elif noisy.quiet_clean:
        lines = [f"{line}: not load-sensitive as far as these runs show"]
    # The verdict line goes right after the classifier's first line: it is what explains the
    # failure, and the terminal shows only the first few lines by default.
    head, tail = (diagnosis.reasons[:1], diagnosis.reasons[1:]) if noisy.load_sensitive \
        else (diagnosis.reasons, ())
    return diagnosis.evolve(
        verdict=verdict,
        reasons=tuple(dict.fromkeys([*head, *lines, *tail])),
        suggestions=(*diagnosis.suggestions, *advice),
        attempts=(*diagnosis.attempts, *noisy.attempts))


def sizing(category: Category, evidence: Evidence | None, noisy: Noisy) -> list[Suggestion]:
    """A deadline or a threshold that holds under the load the noise made."""
    limit = evidence.timeout.seconds if evidence is not None and evidence.timeout else None
    if category is Category.TIMEOUT and limit:
        durations = [float(a.values["duration"]) for a in noisy.attempts
                     if a.outcome == "passed" and "duration" in a.values]
        if durations:
            high = p95(durations)
            suggested = math.ceil(HEADROOM * high * 10) / 10
            return [Suggestion(
                f"Under noise the test needed {fmt(min(durations))}..{fmt(max(durations))} s "
                f"(p95 {fmt(high)} s) against its limit of {fmt(limit)} s: a limit of about "
                f"{fmt(suggested)} s holds under load like CI's, or wait for readiness "
                f"instead of a fixed time.",
                f"noise: {noisy.spec.describe()}; suggested @pytest.mark.timeout("
                f"{fmt(suggested)})")]
    threshold = _threshold(evidence, noisy)
    if threshold is not None:
        return [threshold]
    knob = f" ({noisy.knob})" if noisy.knob else ""
    return [Suggestion(
        f"It passes quietly and fails under load{knob}: it depends on a thread, worker or "
        f"server being ready or done in time. Wait for that event (an Event, a readiness "
        f"check with a bounded retry) rather than a fixed delay or a tight deadline; replay "
        f"the failure with --poolchaos-chaos={noisy.failures[0].chaos}.")]


def _threshold(evidence: Evidence | None, noisy: Noisy) -> Suggestion | None:
    comparison = evidence.comparison if evidence is not None else None
    seen = [float(a.values["left"]) for a in noisy.attempts
            if isinstance(a.values.get("left"), int | float)]
    if comparison is None or comparison.right_value is None or not seen:
        return None
    if comparison.left_value is not None:
        seen.append(comparison.left_value)
    op, bound = comparison.op, comparison.right_value
    if op in ("<", "<="):
        suggested = max(seen) * (1 + MARGIN)
    elif op in (">", ">="):
        suggested = min(seen) * (1 - MARGIN)
    else:
        return None
    return Suggestion(
        f"Under noise the checked value ranged {fmt(min(seen))}..{fmt(max(seen))} against "
        f"the bound {op} {fmt(bound)}: a bound of {op} {fmt(suggested)} (the worst value "
        f"seen under noise with a {MARGIN:.0%} margin) holds under load like CI's.",
        f"noise: {noisy.spec.describe()}; observed under noise: "
        f"{', '.join(fmt(v) for v in seen)}")
