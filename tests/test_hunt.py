"""--poolchaos-hunt: each test N times in fresh subprocesses, quiet and noisy in turn."""

from __future__ import annotations

import pytest

SUITE = """
import os, sys, time

def test_load_sensitive():
    # fails exactly when the noise shortens the switch interval: a deterministic stand-in
    latency = 0.5 if sys.getswitchinterval() < 1e-3 else 0.01
    assert latency < 0.1

def test_stable():
    pass

def test_broken():
    assert 1 + 1 == 3

def test_crashes_when_noisy():
    if sys.getswitchinterval() < 1e-3:
        os._exit(3)  # a crash costs one run, not the hunt
"""


def test_hunt_reports_failure_rates_quiet_vs_noisy_and_keeps_the_exit_status(chaostester):
    chaostester.pytester.makepyfile(test_suite=SUITE)
    run = chaostester.run("--poolchaos-hunt=4", "--poolchaos-chaos=switch=1e-5,seed=5")
    assert run.ret == pytest.ExitCode.OK, run.text()
    assert run.data is not None
    assert run.data["session"]["chaos"] == "hunt: switch=1e-05,seed=5"
    sensitive = run.diagnosis("test_load_sensitive")
    assert sensitive["verdict"] == "flaky"
    assert sensitive["category"] == "expectation"
    assert [(a["mode"], a["outcome"], a.get("chaos")) for a in sensitive["attempts"]] == [
        ("isolated", "passed", None), ("chaos", "failed", "switch=1e-05,seed=5"),
        ("isolated", "passed", None), ("chaos", "failed", "switch=1e-05,seed=6")]
    assert sensitive["evidence"][0].startswith("hunt: failed 0/2 quiet runs and 2/2 noisy runs")
    assert "categories seen: expectation x2" in sensitive["evidence"]
    advice = " ".join(s["text"] for s in sensitive["suggestions"])
    assert "a bound of < 0.6" in advice
    assert "Replay a failing run with --poolchaos-chaos=switch=1e-05,seed=5" in advice
    assert run.test("test_stable")["diagnosis"] is None
    assert run.test("test_stable")["outcome"] == "passed"
    broken = run.diagnosis("test_broken")
    assert broken["verdict"] == "deterministic"
    assert broken["evidence"][0].startswith("hunt: failed 2/2 quiet runs and 2/2 noisy runs")
    crash = run.diagnosis("test_crashes_when_noisy")
    assert [a["outcome"] for a in crash["attempts"]] == ["passed", "failed"] * 2
    # nothing reported from inside the crashed runs: unclassified, with little confidence
    assert (crash["category"], crash["confidence"]) == ("unclassified", 0.3)
    text = run.text()
    assert "poolchaos hunt: 4 test(s), 4 run(s) each, failures quiet vs noisy" in text
    assert "quiet   0/2  noisy   2/2  test_suite.py::test_load_sensitive  (expectation x2)" \
        in text
    assert "1 test(s) never failed" in text


def test_hunt_fail_sets_the_exit_status_and_a_hang_costs_one_bounded_run(chaostester,
                                                                         monkeypatch):
    import pytest_poolchaos.chaos.hunt as hunt

    monkeypatch.setattr(hunt, "FIRST_BOUND_S", 3.0)  # in-process run: the bound is ours
    chaostester.pytester.makepyfile(test_hang="""
        import sys, time

        def test_hangs_when_noisy():
            if sys.getswitchinterval() < 1e-3:
                time.sleep(120)
    """)
    run = chaostester.run("--poolchaos-hunt=2", "--poolchaos-hunt-fail",
                          "--poolchaos-chaos=switch=1e-5,seed=1")
    assert run.ret == pytest.ExitCode.TESTS_FAILED
    diagnosis = run.diagnosis("test_hangs_when_noisy")
    assert [a["outcome"] for a in diagnosis["attempts"]] == ["passed", "failed"]
    assert "killed after the diagnostic time limit" in diagnosis["attempts"][1]["message"]
    assert diagnosis["category"] == "timeout"


def test_hunt_without_a_spec_alternates_heavy_and_light(chaostester):
    chaostester.pytester.makepyfile(test_one="def test_fine():\n    pass\n")
    run = chaostester.run("--poolchaos-hunt=4", "-v")
    assert run.ret == 0
    assert run.data is not None
    chaos = run.data["session"]["chaos"]
    assert chaos.startswith("hunt: cpu=")
    assert ",switch=1e-05,jitter=20ms,slow-start=200ms,seed=" in chaos
    assert " | cpu=1,switch=0.0001,jitter=2ms,slow-start=20ms,seed=" in chaos
    assert "poolchaos hunt: 4 run(s) per test" in run.text()


def test_hunt_and_xdist_do_not_combine(chaostester):
    chaostester.pytester.makepyfile(test_one="def test_fine():\n    pass\n")
    run = chaostester.run("--poolchaos-hunt=2", "-n", "2", json_report=False)
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert "does not combine with xdist" in run.result.stderr.str()
