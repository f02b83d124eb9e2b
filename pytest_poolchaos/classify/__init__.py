"""Classify a failure: run the rules through the ``pytest_poolchaos_classify`` hook, then decide.

The built-in rules are one plugin object (``BuiltinRules``, registered as ``poolchaos-rules``)
implementing the same hook third parties implement, so the extension path runs on every
diagnosis. It also watches pytest-timeout's timer hook (optional: the hook exists only when
pytest-timeout is installed and active), because it is registered wherever tests run.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import pytest

from .. import timeouts
from ..guard import guarded, record
from ..model import Diagnosis, Evidence, Finding, Rule
from ..settings import Settings

# The catalogue (every rule module) and the decision code load on the first failure: a green
# run never pays for them.

__all__ = ["BuiltinRules", "active_rules", "classify", "run_rules"]


class BuiltinRules:
    """The catalogue as a plugin; ``settings.disable_rules`` switches rules off."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._rules: tuple[Rule, ...] | None = None

    @property
    def rules(self) -> tuple[Rule, ...]:
        if self._rules is None:
            self._rules = active_rules(self.settings)
        return self._rules

    @pytest.hookimpl(trylast=True)
    def pytest_poolchaos_classify(self, evidence: Evidence) -> Sequence[Finding] | None:
        return run_rules(self.rules, evidence)

    @pytest.hookimpl(wrapper=True, optionalhook=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> Generator[
            None, object, object]:
        _remember_timer(item, settings)
        return (yield)


def active_rules(settings: Settings) -> tuple[Rule, ...]:
    from .catalogue import RULES
    from .decide import is_disabled

    return tuple(rule for rule in RULES if not is_disabled(rule.id, settings.disable_rules))


def run_rules(rules: Sequence[Rule], evidence: Evidence) -> list[Finding]:
    """Every rule's finding; a rule that raises is an internal problem, the others still run."""
    findings = []
    for rule in rules:
        try:
            found = rule.check(evidence)
        except Exception as error:
            record(f"rule {rule.id}", error)
            continue
        if found is not None:
            findings.append(found)
    return findings


def classify(config: pytest.Config, evidence: Evidence, settings: Settings) -> Diagnosis:
    """The one diagnosis for ``evidence``, from built-in and third-party findings."""
    try:
        results = config.hook.pytest_poolchaos_classify(evidence=evidence)
    except Exception as error:  # a third-party rule must not cost us the built-in diagnosis
        record("pytest_poolchaos_classify", error)
        results = [run_rules(active_rules(settings), evidence)]
    findings = [finding for group in results if group for finding in group]
    from .decide import decide

    return decide(evidence, findings, settings.disable_rules)


@guarded(None)
def _remember_timer(item: pytest.Item, settings: Any) -> None:
    timeouts.remember(item, settings)
