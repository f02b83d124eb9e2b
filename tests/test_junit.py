"""JUnit XML: the diagnosis and leaks as <property> elements, serial and under xdist."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from pytest_poolchaos.report.junit import properties

# A timeout, a leak in a passing test, a test that pollutes a module dict and its victim.
SUITE = """
import threading

import shared

def test_waits():
    event = threading.Event()
    assert event.wait(0.05), "the worker never reported ready"

def test_leaves_a_thread():
    stop = threading.Event()
    threading.Thread(target=stop.wait, args=(5,), name="lingering", daemon=True).start()

def test_dirty():
    shared.STATE["mode"] = "dirty"

def test_victim():
    assert shared.STATE == {}, "state left over"
"""


def junit_cases(path) -> dict[str, dict[str, list[str]]]:
    """Per test name: property name -> values, parsed from the file pytest wrote."""
    root = ET.parse(path).getroot()
    out: dict[str, dict[str, list[str]]] = {}
    for case in root.iter("testcase"):
        props: dict[str, list[str]] = {}
        for prop in case.iter("property"):
            props.setdefault(prop.get("name", ""), []).append(prop.get("value", ""))
        out[case.get("name", "")] = props
    return out


@pytest.mark.parametrize("xdist", [(), ("-n", "2", "--dist", "loadfile")],
                         ids=["serial", "xdist"])
def test_failures_carry_category_confidence_verdict_polluter_and_fix(chaostester, xdist):
    chaostester.pytester.makepyfile(shared="STATE = {}", test_suite=SUITE)
    run = chaostester.run("--junitxml=junit.xml", "--poolchaos-rerun=1",
                          "--poolchaos-rerun-mode=isolated", *xdist, subprocess=bool(xdist))
    cases = junit_cases(chaostester.path / "junit.xml")

    waits, diagnosis = cases["test_waits"], run.diagnosis("test_waits")
    assert waits["poolchaos.category"] == ["timeout"] == [diagnosis["category"]]
    assert waits["poolchaos.confidence"] == [f"{diagnosis['confidence']:.2f}"]
    assert waits["poolchaos.verdict"] == ["deterministic"] == [diagnosis["verdict"]]
    assert waits["poolchaos.suggestion"] == [diagnosis["suggestions"][0]["text"]]
    assert "poolchaos.polluter" not in waits

    # known only after the session's reruns: the controller put it in before pytest wrote
    victim = cases["test_victim"]
    assert victim["poolchaos.verdict"] == ["order-dependent"]
    assert victim["poolchaos.polluter"] == ["test_suite.py::test_dirty"]
    assert victim["poolchaos.category"] == ["config-pollution"]

    leaker = cases["test_leaves_a_thread"]
    assert len(leaker["poolchaos.leak"]) == 1
    assert leaker["poolchaos.leak"][0].startswith("thread: thread 'lingering'")
    assert "poolchaos.category" not in leaker
    assert cases["test_dirty"].get("poolchaos.leak") is None  # a watched dict is not watched
    # each property once, though teardown and session end both wrote them
    assert all(len(values) == 1 for name, values in waits.items())


def test_other_properties_are_kept_and_nothing_is_added_without_junitxml(chaostester):
    chaostester.pytester.makepyfile(test_props="""
        def test_recorded(record_property):
            record_property("owner", "team-a")
            assert 1 == 2
        """)
    chaostester.run("--junitxml=junit.xml")
    case = junit_cases(chaostester.path / "junit.xml")["test_recorded"]
    assert case["owner"] == ["team-a"]
    assert case["poolchaos.category"]
    run = chaostester.run()
    assert run.diagnosis("test_recorded")  # still diagnosed, just no XML


def test_properties_from_the_json_forms():
    diagnosis = {"category": "lifecycle", "confidence": 0.8123, "verdict": "flaky",
                 "polluter": None, "suggestions": [{"text": "x" * 900}, {"text": "second"}]}
    leaks = [{"kind": "pool", "detail": "ThreadPoolExecutor still running"}]
    history = {"runs": 4, "failures": 2, "flips": 3, "flip_rate": 1.0,
               "first_failed": "2024-05-02T10:00:00+00:00"}
    assert properties(diagnosis, leaks, history) == [
        ("poolchaos.category", "lifecycle"),
        ("poolchaos.confidence", "0.81"),
        ("poolchaos.verdict", "flaky"),
        ("poolchaos.suggestion", "x" * 500),
        ("poolchaos.history", "failed 2 of the last 4 recorded runs, flip rate 1.00, "
                              "first failed on 2024-05-02"),
        ("poolchaos.leak", "pool: ThreadPoolExecutor still running"),
    ]
    assert properties(None, []) == []
