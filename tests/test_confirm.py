"""The confirming run (on by default): failures once more, together, in one fresh pytest.

conftest's BASE_ARGS turn it off for every other test; these pass --poolchaos-confirm=auto
(the default) back on, after it.
"""

from __future__ import annotations

import pytest

CONFIRM = "--poolchaos-confirm=auto"

SUITE = """
    import os

    def test_sets_mode():
        os.environ["POOLCHAOS_CONFIRM_MODE"] = "legacy"

    def test_fine():
        pass

    def test_victim():
        assert os.environ.get("POOLCHAOS_CONFIRM_MODE") != "legacy", "POOLCHAOS_CONFIRM_MODE"

    def test_always_wrong():
        assert 1 + 1 == 3
"""


def test_default_run_confirms_failures_in_one_batch_and_names_the_polluter(chaostester):
    chaostester.pytester.makepyfile(test_suite=SUITE)
    run = chaostester.run(CONFIRM)
    # outcomes and the exit status are pytest's
    run.result.assert_outcomes(passed=2, failed=2)
    assert run.ret == pytest.ExitCode.TESTS_FAILED

    wrong = run.diagnosis("test_always_wrong")
    assert [(a["mode"], a["outcome"]) for a in wrong["attempts"]] == [("confirm", "failed")]
    assert wrong["verdict"] == "deterministic"
    assert wrong["polluter"] is None

    victim = run.diagnosis("test_victim")
    modes = [a["mode"] for a in victim["attempts"]]
    assert modes[:3] == ["confirm", "confirm", "pair"]  # two passes alone, then the order
    assert victim["verdict"] == "order-dependent"
    assert victim["polluter"] == "test_suite.py::test_sets_mode"
    assert victim["polluter_search"]["method"] == "ledger"
    assert victim["polluter_search"]["runs"] == 1
    # the first batch held both failures: one subprocess, not one per test
    assert "with the 1 other failure(s)" in victim["attempts"][0]["message"]
    line = [ln for ln in run.text().splitlines() if "confirming run of 2 failure(s)" in ln]
    assert line, run.text()
    assert "3 pytest subprocess run(s)" in line[0]
    assert "1 deterministic, 1 order-dependent" in line[0]


def test_confirm_off_names_the_ledger_suspect_without_a_run(chaostester):
    chaostester.pytester.makepyfile(test_suite=SUITE)
    run = chaostester.run("--poolchaos-confirm=off")
    run.result.assert_outcomes(passed=2, failed=2)
    victim = run.diagnosis("test_victim")
    assert victim["category"] == "config-pollution"
    assert victim["attempts"] == []
    assert victim["polluter"] == "test_suite.py::test_sets_mode"
    assert victim["polluter_search"] == {"method": "suspect", "runs": 0, "seconds": 0.0}
    assert run.diagnosis("test_always_wrong")["polluter"] is None
    assert "confirming run" not in run.text()


def test_no_confirming_run_when_every_test_failed(chaostester):
    chaostester.pytester.makepyfile(
        """
        def test_one():
            assert 1 == 2

        def test_two():
            assert 2 == 3
        """
    )
    run = chaostester.run(CONFIRM)
    run.result.assert_outcomes(failed=2)
    assert run.diagnosis("test_one")["attempts"] == []
    assert "no confirming run: every test failed" in run.text()


def test_no_confirming_run_beyond_its_time_budget(chaostester):
    chaostester.pytester.makepyfile(test_suite=SUITE)
    run = chaostester.run(CONFIRM, "--poolchaos-confirm-seconds=1")
    run.result.assert_outcomes(passed=2, failed=2)
    assert run.diagnosis("test_victim")["attempts"] == []
    assert "more than --poolchaos-confirm-seconds=1" in run.text()


def test_a_test_flaky_on_its_own_never_gets_a_polluter(chaostester):
    # It fails on its 1st and 3rd run whatever ran before it, and an earlier test left a value
    # its failure names: the confirming run passes it once, the second look fails it again.
    chaostester.pytester.makepyfile(
        test_flaky="""
        import os
        from pathlib import Path

        def test_sets_mode():
            os.environ["POOLCHAOS_CONFIRM_MODE"] = "legacy"

        def test_fine():
            pass

        def test_random_flake():
            counter = Path("runs")
            runs = int(counter.read_text()) + 1 if counter.exists() else 1
            counter.write_text(str(runs))
            mode = os.environ.get("POOLCHAOS_CONFIRM_MODE", "legacy")
            assert runs % 2 == 0, f"POOLCHAOS_CONFIRM_MODE={mode} on run {runs}"
        """
    )
    run = chaostester.run(CONFIRM)
    run.result.assert_outcomes(passed=2, failed=1)
    flake = run.diagnosis("test_random_flake")
    assert [a["outcome"] for a in flake["attempts"]] == ["passed", "failed"]
    assert flake["verdict"] == "flaky"
    assert flake["polluter"] is None
    assert flake["polluter_search"] is None


def test_confirming_run_under_xdist_runs_on_the_controller(chaostester):
    pytest.importorskip("xdist")
    chaostester.pytester.makepyfile(
        test_x="""
        def test_ok():
            pass

        def test_wrong():
            assert 1 + 1 == 3
        """
    )
    run = chaostester.run(CONFIRM, "-n", "2", subprocess=True)
    run.result.assert_outcomes(passed=1, failed=1)
    assert run.ret == pytest.ExitCode.TESTS_FAILED
    wrong = run.diagnosis("test_wrong")
    assert [(a["mode"], a["outcome"]) for a in wrong["attempts"]] == [("confirm", "failed")]
    assert run.text().count("confirming run of 1 failure(s)") == 1
