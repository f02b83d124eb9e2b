"""Classify a failure: run the rules through the ``pytest_poolchaos_classify`` hook, then decide.

The built-in rules are one plugin object (``BuiltinRules``, registered as ``poolchaos-rules``)
implementing the same hook third parties implement, so the extension path runs on every
diagnosis. This package depends on the model alone: the worker, the controller's reruns and the
post-mortem of a dead run all come here to decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

from ..guard import call_each, record

if TYPE_CHECKING:
    from ..model import Diagnosis, Evidence, Finding, Rule
    from ..settings import Settings

# The catalogue (every rule module) and the decision code load on the first failure: a green
# run never pays for them.

__all__ = ["RULES_PLUGIN", "BuiltinRules", "active_rules", "classify", "run_rules"]

RULES_PLUGIN = "poolchaos-rules"


class BuiltinRules:
    """The catalogue as a plugin; ``settings.disable_rules`` switches rules off."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._rules: tuple[Rule, ...] | None = None

    @property
    def rules(self) -> tuple[Rule, ...]:
        if self._rules is None:
            self._rules = active_rules(self.settings.disable_rules)
        return self._rules

    @pytest.hookimpl(trylast=True)
    def pytest_poolchaos_classify(self, evidence: Evidence) -> Sequence[Finding] | None:
        return run_rules(self.rules, evidence)


def active_rules(disabled: Sequence[str] = ()) -> tuple[Rule, ...]:
    from .catalogue import RULES
    from .decide import is_disabled

    return tuple(rule for rule in RULES if not is_disabled(rule.id, disabled))


def run_rules(rules: Sequence[Rule], evidence: Evidence) -> list[Finding]:
    """Every rule's finding; a rule that raises is an internal problem, the others still run."""
    from .catalogue import run_rules as run

    return run(rules, evidence)


def classify(config: pytest.Config, evidence: Evidence, settings: Settings) -> Diagnosis:
    """The one diagnosis for ``evidence``, from built-in and third-party findings."""
    manager = config.pluginmanager
    if manager.get_plugin(RULES_PLUGIN) is None:
        # Registered on the first failure: a green run never loads the catalogue.
        manager.register(BuiltinRules(settings), RULES_PLUGIN)
    results = call_each(config.hook.pytest_poolchaos_classify, evidence=evidence)
    return decide_from(evidence, results, settings.disable_rules)


def decide_from(evidence: Evidence, results: Sequence[object],
                disabled: Sequence[str] = ()) -> Diagnosis:
    """``decide`` over the hook's results (lists of findings, as plugins returned them)."""
    from .decide import decide

    findings: list[object] = []
    for group in results:
        if isinstance(group, list | tuple):
            findings.extend(group)
        else:
            record("pytest_poolchaos_classify", TypeError(f"expected a list of Findings, got "
                                                          f"{type(group).__name__}"))
    return decide(evidence, findings, disabled)
