"""Classification without a pytest session (``poolchaos report``, the next run's header):
the built-in rules only, through the same decision as every other failure."""

from __future__ import annotations

from ..model import Diagnosis, Evidence
from . import active_rules, decide_from, run_rules

__all__ = ["diagnose"]


def diagnose(evidence: Evidence) -> Diagnosis:
    return decide_from(evidence, [run_rules(active_rules(), evidence)])
