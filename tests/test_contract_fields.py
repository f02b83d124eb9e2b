"""The report contract's newer fields survive the trip through JSON (xdist, the CLI)."""

from __future__ import annotations

from pytest_poolchaos.model import Attempt, Category, Diagnosis, RuleScore


def test_rules_scores_cleaners_and_attempt_noise_round_trip():
    pollution = Category.CONFIG_POLLUTION
    diagnosis = Diagnosis(
        category=pollution, confidence=0.8, reasons=("e",), suggestions=(),
        rules=(RuleScore("config-pollution.ledger-match", pollution, 0.7),
               RuleScore("config-pollution.order-dependent", pollution, 0.85),
               RuleScore("timeout.near-limit", Category.TIMEOUT, 0.5)),
        cleaners=("t.py::test_resets",),
        attempts=(Attempt("chaos", "failed", 0.5, chaos="switch=1e-05,seed=3"),))
    data = diagnosis.to_json()
    assert data["rules"] == [
        {"id": "config-pollution.ledger-match", "category": "config-pollution", "score": 0.7},
        {"id": "config-pollution.order-dependent", "category": "config-pollution",
         "score": 0.85},
        {"id": "timeout.near-limit", "category": "timeout", "score": 0.5}]
    assert data["cleaners"] == ["t.py::test_resets"]
    assert data["attempts"][0]["chaos"] == "switch=1e-05,seed=3"
    again = Diagnosis.from_json(data)
    assert again.rules == diagnosis.rules
    assert again.cleaners == diagnosis.cleaners
    assert again.attempts[0].chaos == "switch=1e-05,seed=3"
    assert "cleaners" not in Diagnosis.from_json({**data, "cleaners": []}).to_json()


def test_rules_written_as_plain_ids_by_an_older_worker_are_read():
    old = Diagnosis.from_json({"category": "timeout", "confidence": 0.6,
                               "rules": ["timeout.pytest-timeout"]})
    assert old.rules == (RuleScore("timeout.pytest-timeout", Category.TIMEOUT, 0.6),)
    assert old.to_json()["rules"][0]["score"] == 0.6
