from __future__ import annotations


def test_failed_comparison_is_diagnosed_and_json_is_valid(chaostester):
    chaostester.pytester.makepyfile(
        """
        def test_ok():
            pass

        def test_bad():
            x = 5
            assert x >= 10
        """
    )
    run = chaostester.run()
    run.result.assert_outcomes(passed=1, failed=1)
    assert run.test("test_ok")["diagnosis"] is None
    assert run.diagnosis("test_bad")["category"] in {"expectation", "unclassified"}
