"""classify(evidence) -> Diagnosis (interim: picks the best finding; rules land next)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ..model import Category, Diagnosis, Evidence, Finding, Suggestion
from ..settings import Settings


class BuiltinRules:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @pytest.hookimpl(trylast=True)
    def pytest_poolchaos_classify(self, evidence: Evidence) -> Sequence[Finding] | None:
        return None


def classify(config: pytest.Config, evidence: Evidence, settings: Settings) -> Diagnosis:
    results = config.hook.pytest_poolchaos_classify(evidence=evidence)
    findings = [f for group in results if group for f in group]
    if not findings:
        return Diagnosis(Category.UNCLASSIFIED, 0.5, ("no concurrency signal",),
                         (Suggestion("Read the traceback: this looks like an ordinary bug."),))
    best = max(findings, key=lambda f: f.score)
    return Diagnosis(best.category, best.score, best.evidence, best.suggestions, (best.rule,))
