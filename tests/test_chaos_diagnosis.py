"""Chaos in diagnosis: load-sensitive failures found by noisy reruns, and their knob."""

from __future__ import annotations

# The inner tests read the switch interval to fail under noise exactly: a deterministic
# stand-in for a thread that loses the race only when it is preempted often.
UNDER_NOISE = "sys.getswitchinterval() < 1e-3"


def test_a_test_that_fails_only_under_noise_is_load_sensitive_and_names_the_knob(chaostester):
    chaostester.pytester.makepyfile(
        f"""
        import sys

        def test_latency():
            latency = 0.5 if {UNDER_NOISE} else 0.01
            assert latency < 0.1

        def test_always_broken():
            assert 1 + 1 == 3
        """
    )
    spec = "cpu=1,switch=1e-05,jitter=1ms,seed=3"  # as the plugin writes it back
    run = chaostester.run(f"--poolchaos-chaos={spec}", "--poolchaos-rerun=2",
                          "--poolchaos-rerun-chaos")
    diagnosis = run.diagnosis("test_latency")
    assert diagnosis["verdict"] == "flaky"
    # it passed every quiet rerun alone, yet it is load, not order: no polluter search
    assert diagnosis["category"] == "expectation"
    assert diagnosis["polluter_search"] is None
    assert not any("order-dependent" in line for line in diagnosis["evidence"])
    assert any(line.startswith("load-sensitive: passed every quiet rerun, failed 2/2 under "
                               f"noise ({spec}); switch alone broke it")
               for line in diagnosis["evidence"]), diagnosis["evidence"]
    noisy = [a for a in diagnosis["attempts"] if a["mode"] == "chaos"]
    assert [a["chaos"] for a in noisy[:2]] == [spec, spec.replace("seed=3", "seed=4")]
    assert [a["outcome"] for a in noisy[:2]] == ["failed", "failed"]
    assert noisy[2:]
    assert noisy[-1]["chaos"] == "switch=1e-05,seed=3"
    assert all(a["outcome"] == "passed" for a in diagnosis["attempts"]
               if a["mode"] in ("inline", "isolated"))
    advice = " ".join(s["text"] for s in diagnosis["suggestions"])
    assert "Under noise the checked value ranged 0.5..0.5 against the bound < 0.1: a bound " \
           "of < 0.6" in advice
    # every quiet rerun failed: noise has nothing to add
    broken = run.diagnosis("test_always_broken")
    assert broken["verdict"] == "deterministic"
    assert not [a for a in broken["attempts"] if a["mode"] == "chaos"]


def test_a_timeout_under_noise_gets_a_limit_sized_from_the_noisy_runs(chaostester):
    chaostester.pytester.makepyfile(
        f"""
        import sys, time
        import pytest

        @pytest.mark.timeout(0.5)
        def test_slow_under_load():
            time.sleep(0.8 if {UNDER_NOISE} else 0.01)
        """
    )
    run = chaostester.run("--poolchaos-chaos=switch=1e-5,seed=8", "--poolchaos-rerun=1",
                          "--poolchaos-rerun-chaos", "--poolchaos-rerun-mode=isolated")
    diagnosis = run.diagnosis("test_slow_under_load")
    assert diagnosis["category"] == "timeout"
    assert diagnosis["verdict"] == "flaky"
    advice = " ".join(s["text"] for s in diagnosis["suggestions"])
    assert "Under noise the test needed 0.8" in advice, advice
    assert "against its limit of 0.5 s: a limit of about 1.7 s" in advice \
        or "against its limit of 0.5 s: a limit of about 1.8 s" in advice, advice


def test_without_a_spec_noisy_reruns_use_heavy_and_a_quiet_pass_is_not_load_sensitive(
        chaostester):
    chaostester.pytester.makepyfile(
        """
        import pathlib

        def test_once():
            mark = pathlib.Path(__file__).with_name("ran")
            if not mark.exists():
                mark.write_text("")
                assert False, "first run only"
        """
    )
    run = chaostester.run("--poolchaos-rerun=1", "--poolchaos-rerun-chaos",
                          "--poolchaos-rerun-mode=isolated")
    diagnosis = run.diagnosis("test_once")
    noisy = [a for a in diagnosis["attempts"] if a["mode"] == "chaos"]
    assert len(noisy) == 1
    assert noisy[0]["outcome"] == "passed"
    assert ",switch=1e-05,jitter=20ms,slow-start=200ms,seed=" in noisy[0]["chaos"]
    assert any("not load-sensitive as far as these runs show" in line
               for line in diagnosis["evidence"])
