"""``--poolchaos-hunt=N``: run each selected test N times, alternating quiet and noisy runs.

Shaker-style: noise exposes load-sensitive flaky tests far more often than plain reruns, and
quiet runs in between tell whether the noise is what breaks them. Every run is a fresh
``python -m pytest`` subprocess (the diagnostic runner of ``diagnose/isolated.py``) with a time
bound, so a hang or a crash costs one run. The hunt replaces the session's own run; each
test's runs become its attempts in the report, with a diagnosis when any run failed, and the
exit status stays 0 unless ``--poolchaos-hunt-fail``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from ..guard import guarded, record
from ..model import Attempt, Category, Diagnosis, Evidence, RuleScore, Suggestion, Verdict
from ..settings import Settings
from .spec import ChaosSpec, parse

__all__ = ["Hunt", "HuntedTest"]

FIRST_BOUND_S = 60.0  # the first run of a test: nothing is known about its duration yet
MIN_BOUND_S = 10.0
STRETCH = 5.0  # later runs: this many times the longest run seen, plus MIN_BOUND_S


@dataclass
class HuntedTest:
    nodeid: str
    location: Any = None
    attempts: list[Attempt] = field(default_factory=list)
    categories: Counter[str] = field(default_factory=Counter)
    confidences: dict[str, list[float]] = field(default_factory=dict)  # per category
    evidence: Evidence | None = None  # of the first failing run
    noisy_evidence: Evidence | None = None  # of the first noisy failure

    def runs(self, noisy: bool) -> list[Attempt]:
        return [a for a in self.attempts if (a.mode == "chaos") == noisy]

    def failures(self, noisy: bool) -> int:
        return sum(a.outcome in ("failed", "error") for a in self.runs(noisy))

    @property
    def failed(self) -> bool:
        return any(a.outcome in ("failed", "error") for a in self.attempts)

    def rate(self, noisy: bool) -> str:
        return f"{self.failures(noisy)}/{len(self.runs(noisy))}"


def configurations(settings: Settings) -> list[ChaosSpec]:
    """The noisy configurations the hunt cycles through: the session's spec, or light and
    heavy (Shaker varies its noise the same way)."""
    if settings.chaos is not None and not settings.chaos.quiet:
        return [settings.chaos]
    light, heavy = parse("light"), parse("heavy")
    assert light is not None
    assert heavy is not None
    return [heavy.reseeded(light.seed), light]


class Hunt:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        if getattr(config.option, "dist", "no") != "no":
            raise pytest.UsageError(
                "--poolchaos-hunt / poolchaos_hunt: runs every test in its own pytest "
                "subprocesses and does not combine with xdist's -n/--dist; add -p no:xdist "
                "or -n 0")
        self.config = config
        self.settings = settings
        self.noisy = configurations(settings)
        self.tests: list[HuntedTest] = []

    @guarded("")
    def pytest_report_header(self, config: pytest.Config) -> str:
        return (f"poolchaos hunt: {self.settings.hunt} run(s) per test, quiet and noisy in "
                f"turn; noise: {' | '.join(spec.describe() for spec in self.noisy)}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if session.testsfailed or session.config.option.collectonly:
            return None  # collection errors and --collect-only as pytest does them
        try:
            return self._loop(session)
        except Exception as error:
            record("hunt", error)
            # Nothing hunted yet: pytest runs the tests its own way, as without the plugin.
            return True if self.tests else None

    def _loop(self, session: pytest.Session) -> bool:
        from ..diagnose.progress import DiagnosticProgress
        from ..diagnose.runner import Runner

        runner = Runner(self.config, self.settings, dict(os.environ))
        total = len(session.items) * self.settings.hunt
        with DiagnosticProgress(self.config, total) as progress:
            for item in session.items:
                hunted = self._hunt(runner, item, progress)
                if hunted is not None:  # None: a bug of ours, recorded as a problem
                    self.tests.append(hunted)
                if session.shouldstop:
                    break
        self._publish()
        failing = sum(test.failed for test in self.tests)
        if self.settings.hunt_fail and failing:
            session.testsfailed = failing
        return True

    @guarded(None)
    def _hunt(self, runner: Any, item: pytest.Item, progress: Any) -> HuntedTest | None:
        from ..diagnose.reruns import values

        test = HuntedTest(item.nodeid, tuple(item.location))
        longest = 0.0
        for number in range(self.settings.hunt):
            spec = self._spec(number)
            what = "quiet" if spec is None else "noisy"
            progress.show(item.nodeid, f"hunt run {number + 1}/{self.settings.hunt} ({what})")
            bound = FIRST_BOUND_S if not number else min(
                FIRST_BOUND_S, MIN_BOUND_S + STRETCH * longest)
            extra = [] if spec is None else [f"--poolchaos-chaos={spec.describe()}"]
            run = runner.run([item.nodeid], timeout=bound, extra=extra)
            child = run.result(item.nodeid)
            longest = max(longest, child.duration_s)
            outcome = child.outcome if child.outcome in ("passed", "failed", "error",
                                                          "skipped") else "failed"
            test.attempts.append(Attempt(
                "isolated" if spec is None else "chaos", outcome, round(child.duration_s, 6),
                child.message[:500], values(child.evidence, child.duration_s, None, None),
                chaos=None if spec is None else spec.describe()))
            if outcome in ("failed", "error"):
                self._failed(test, child.evidence, run.killed, spec is not None)
            progress.advance()
        return test

    def _spec(self, number: int) -> ChaosSpec | None:
        if number % 2 == 0:
            return None
        index = number // 2
        spec = self.noisy[index % len(self.noisy)]
        return spec.reseeded(spec.seed + index)

    def _failed(self, test: HuntedTest, evidence: Evidence | None, killed: bool,
                noisy: bool) -> None:
        category, confidence = self._classify(evidence, killed)
        test.categories[category] += 1
        test.confidences.setdefault(category, []).append(confidence)
        if test.evidence is None:
            test.evidence = evidence
        if noisy and test.noisy_evidence is None:
            test.noisy_evidence = evidence

    @guarded((Category.UNCLASSIFIED.value, 0.3))
    def _classify(self, evidence: Evidence | None, killed: bool) -> tuple[str, float]:
        """The failing run's category and the classifier's confidence in it."""
        if evidence is None:  # the run never reported: killed at its bound, or crashed
            return (Category.TIMEOUT.value, 0.6) if killed else (Category.UNCLASSIFIED.value,
                                                                  0.3)
        from ..classify import classify

        found = classify(self.config, evidence, self.settings)
        return found.category.value, found.confidence

    # -- the report -----------------------------------------------------------------------------

    @guarded(None)
    def _publish(self) -> None:
        controller = self.config.pluginmanager.get_plugin("poolchaos-controller")
        if controller is None:
            return
        from ..model import TestRecord

        session = controller.session
        session.chaos = "hunt: " + " | ".join(spec.describe() for spec in self.noisy)
        for test in self.tests:
            runs = test.attempts
            record = TestRecord(test.nodeid, location=test.location,
                                duration_s=sum(a.duration_s for a in runs) / max(1, len(runs)))
            if test.failed:
                record.outcome, record.when = "failed", "call"
                record.evidence = test.evidence
                record.diagnosis = diagnose(test, self.noisy)
            session.records[test.nodeid] = record

    @guarded(None)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        write = terminalreporter.write_line
        write(f"poolchaos hunt: {len(self.tests)} test(s), {self.settings.hunt} run(s) each, "
              f"failures quiet vs noisy")
        failing = sorted((t for t in self.tests if t.failed),
                         key=lambda t: (-t.failures(True), -t.failures(False), t.nodeid))
        for test in failing:
            seen = ", ".join(f"{name} x{count}" for name, count in test.categories.most_common())
            write(f"  quiet {test.rate(False):>5}  noisy {test.rate(True):>5}  {test.nodeid}  "
                  f"({seen})")
        clean = len(self.tests) - len(failing)
        if clean:
            write(f"  {clean} test(s) never failed")
        if failing and not self.settings.hunt_fail:
            write("  (the exit status does not count these; --poolchaos-hunt-fail makes it)")


def diagnose(test: HuntedTest, noisy: Sequence[ChaosSpec]) -> Diagnosis:
    """One diagnosis from all of a test's hunt runs."""
    from ..diagnose.noisy import Noisy, sizing

    category = test.categories.most_common(1)[0][0]
    failures = sum(test.categories.values())
    quiet_failed, noisy_failed = test.failures(False), test.failures(True)
    passes = sum(a.outcome == "passed" for a in test.attempts)
    lines = [f"hunt: failed {test.rate(False)} quiet runs and {test.rate(True)} noisy runs "
             f"({' | '.join(spec.describe() for spec in noisy)}, reseeded per run)",
             "categories seen: " + ", ".join(f"{name} x{n}"
                                              for name, n in test.categories.most_common())]
    first = next(a for a in test.attempts if a.outcome in ("failed", "error"))
    if first.message:
        lines.append(f"first failure ({first.mode}): {first.message.splitlines()[0][:200]}")
    advice: list[Suggestion] = []
    if noisy_failed and not quiet_failed:
        lines.append("load-sensitive: fails only under noise")
        replay = next(a.chaos for a in test.attempts
                      if a.mode == "chaos" and a.outcome in ("failed", "error"))
        record = Noisy(noisy[0], runs=test.runs(True), quiet_clean=True)
        advice += sizing(Category(category), test.noisy_evidence, record)
        advice.append(Suggestion(f"Replay a failing run with --poolchaos-chaos={replay}."))
    elif quiet_failed and passes:
        advice.append(Suggestion("It fails quietly too, at random: rerun it with "
                                 "--poolchaos-rerun=3 to see whether an earlier test or the "
                                 "code itself is the cause."))
    elif not passes:
        advice.append(Suggestion("It failed every run: this is not flakiness; run it alone "
                                 "and fix the failure."))
    return Diagnosis(
        category=Category(category),
        # the classifier's mean confidence over the runs of this category, times their share
        # of all failing runs (runs that disagreed on the category lower it)
        confidence=round(sum(test.confidences[category]) / failures, 3),
        reasons=tuple(lines),
        suggestions=tuple(advice),
        rules=(RuleScore("hunt.runs", Category(category),
                         round(sum(test.confidences[category]) / failures, 3)),),
        verdict=Verdict.FLAKY if passes else Verdict.DETERMINISTIC,
        pass_rate=round(passes / len(test.attempts), 3),
        reruns=len(test.attempts),
        attempts=tuple(test.attempts),
    )
