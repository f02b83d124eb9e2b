"""Cleaners: a test that, run between the polluter and the victim, makes the victim pass."""

from __future__ import annotations

ISOLATED = ("--poolchaos-rerun=1", "--poolchaos-rerun-mode=isolated")
SHARED = "STATE = {}\n"


def test_a_cleaner_that_resets_the_polluters_env_key_is_tried_first(chaostester):
    chaostester.pytester.makepyfile(test_env="""
        import os

        def test_a_sets_real_mode():
            os.environ["POOL_MODE"] = "real"

        def test_b_neutral():
            pass

        def test_c_switches_to_mock():
            os.environ["POOL_MODE"] = "mock"

        def test_d_needs_real_mode():
            assert os.environ.get("POOL_MODE", "real") == "real"
    """)
    run = chaostester.run(*ISOLATED)
    diagnosis = run.diagnosis("test_d_needs_real_mode")
    assert diagnosis["verdict"] == "order-dependent"
    assert diagnosis["polluter"].endswith("test_c_switches_to_mock")
    assert diagnosis["cleaners"] == ["test_env.py::test_a_sets_real_mode"]
    cleaner_runs = [a for a in diagnosis["attempts"] if "cleaner search" in a.get("message", "")]
    assert [a["mode"] for a in cleaner_runs] == ["pair"]  # the related test, in one run
    advice = " ".join(s["text"] for s in diagnosis["suggestions"])
    assert ("test_env.py::test_a_sets_real_mode resets what test_env.py::test_c_switches_to_mock "
            "leaves behind (os.environ['POOL_MODE'] = 'real'") in advice
    assert any(line.startswith("cleaner test_env.py::test_a_sets_real_mode: run between")
               for line in diagnosis["evidence"])


def _suite(count: int, cleaner_at: int, polluter_at: int) -> str:
    lines = ["import shared", ""]
    for index in range(count):
        body = ("shared.STATE.clear()" if index == cleaner_at else
                "shared.STATE['dirty'] = True" if index == polluter_at else "pass")
        lines += [f"def test_{index:02d}():", f"    {body}", ""]
    lines += ["def test_victim():", "    assert not shared.STATE", ""]
    return "\n".join(lines)


def test_a_cleaner_no_recorded_change_names_is_found_by_halving_the_group(chaostester):
    chaostester.pytester.makepyfile(shared=SHARED, test_order=_suite(8, cleaner_at=2,
                                                                       polluter_at=6))
    run = chaostester.run(*ISOLATED)
    diagnosis = run.diagnosis("test_order.py::test_victim")
    assert diagnosis["polluter"] == "test_order.py::test_06"
    assert diagnosis["cleaners"] == ["test_order.py::test_02"]
    cleaner_runs = [a for a in diagnosis["attempts"] if "cleaner search" in a.get("message", "")]
    # the whole group once, then halving 6 candidates (test_07 ran between the polluter and
    # the victim in the suite, so it cannot be a cleaner): at most 1 + 3 + 1 runs
    assert 2 <= len(cleaner_runs) <= 5
    assert cleaner_runs[0]["message"].startswith("6 test(s) between the polluter")
    advice = " ".join(s["text"] for s in diagnosis["suggestions"])
    assert "test_order.py::test_02 puts back some state test_order.py::test_06 leaves " \
           "changed, but no recorded change names it" in advice


def test_no_cleaner_costs_one_run_and_says_so(chaostester):
    chaostester.pytester.makepyfile(shared=SHARED, test_order=_suite(5, cleaner_at=-1,
                                                                       polluter_at=3))
    run = chaostester.run(*ISOLATED)
    diagnosis = run.diagnosis("test_order.py::test_victim")
    assert diagnosis["polluter"] == "test_order.py::test_03"
    assert "cleaners" not in diagnosis
    assert any(line.startswith("cleaner search found none in 1 run(s)")
               for line in diagnosis["evidence"])


def test_the_cleaner_search_stays_within_the_polluter_searchs_budget(chaostester):
    chaostester.pytester.makepyfile(shared=SHARED, test_order=_suite(8, cleaner_at=2,
                                                                       polluter_at=6))
    run = chaostester.run(*ISOLATED, "--poolchaos-bisect-budget=5")
    diagnosis = run.diagnosis("test_order.py::test_victim")
    assert diagnosis["polluter"] == "test_order.py::test_06"
    searching = [a for a in diagnosis["attempts"] if a["mode"] in ("pair", "bisect")]
    assert len(searching) <= 5
    assert any(line.startswith(("cleaner search ran out of budget", "no budget left"))
               for line in diagnosis["evidence"]), diagnosis["evidence"]
