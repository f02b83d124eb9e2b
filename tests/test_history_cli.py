"""``poolchaos history`` and ``poolchaos history import``: the listing and JUnit seeding."""

from __future__ import annotations

import json

import pytest

from pytest_poolchaos.cli import main
from pytest_poolchaos.history.junit_import import read

# test_sometimes fails on the runs listed in ``fail-on``; test_always always; the rest pass.
SUITE = """
from pathlib import Path

def test_sometimes():
    count = Path("count")
    run = int(count.read_text()) + 1 if count.exists() else 1
    count.write_text(str(run))
    assert run not in {int(n) for n in Path("fail-on").read_text().split()}, f"run {run}"

def test_always():
    assert [1, 2] == [1, 2, 3]

def test_fine():
    pass
"""


@pytest.fixture
def five_runs(chaostester, monkeypatch):
    chaostester.pytester.makepyfile(test_suite=SUITE)
    (chaostester.path / "fail-on").write_text("2 4")
    for _ in range(5):
        chaostester.run("--poolchaos-history=history.sqlite")
    monkeypatch.chdir(chaostester.path)
    return chaostester


def test_the_listing_ranks_the_flaky_test_first(five_runs, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    capsys.readouterr()
    assert main(["history", "--db", "history.sqlite", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["runs"] == 5
    assert data["tests"] == 3
    flaky, broken = data["flakiest"]
    assert flaky["nodeid"] == "test_suite.py::test_sometimes"
    assert (flaky["runs"], flaky["failures"], flaky["flips"]) == (5, 2, 4)
    assert flaky["flip_rate"] == 1.0
    assert flaky["fail_rate"] == 0.4
    assert sum(flaky["categories"].values()) == 2
    assert broken["nodeid"] == "test_suite.py::test_always"
    assert (broken["failures"], broken["flips"]) == (5, 0)
    assert broken["p50_s"] is None  # never passed: no baseline

    assert main(["history", "--db", "history.sqlite", "--top", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("history: 5 runs from ")
    assert "flakiest tests" in text
    assert "test_suite.py::test_sometimes" in text
    assert "2/5 (40%)" in text
    assert "test_always" not in text  # --top 1
    assert "slowest tests" not in text

    assert main(["history", "--db", "history.sqlite", "--durations"]) == 0
    text = capsys.readouterr().out
    assert "slowest tests (passing runs)" in text
    assert data["slowest"][0]["p95_s"] >= data["slowest"][-1]["p95_s"]
    assert {t["nodeid"] for t in data["slowest"]} == {"test_suite.py::test_sometimes",
                                                      "test_suite.py::test_fine"}


@pytest.mark.parametrize("columns", ["40", "160"])
def test_node_ids_are_never_folded_whatever_the_width(five_runs, capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    capsys.readouterr()
    assert main(["history", "--db", "history.sqlite", "--durations"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for nodeid in ("test_suite.py::test_sometimes", "test_suite.py::test_always"):
        assert any(nodeid in line for line in lines), (nodeid, lines)
    if columns == "40":  # too narrow for a table: each test on its own line, figures below
        at = next(i for i, line in enumerate(lines) if "test_suite.py::test_sometimes" in line)
        assert "failed 2/5 (40%)" in lines[at + 1]


def test_since_and_a_missing_store(five_runs, capsys, tmp_path):
    capsys.readouterr()
    assert main(["history", "--db", "history.sqlite", "--since", "2999-01-01"]) == 0
    assert "history: no runs recorded since 2999-01-01T00:00:00+00:00" in \
           capsys.readouterr().out
    assert main(["history", "--db", str(tmp_path / "none.sqlite")]) == 2
    assert capsys.readouterr().err.strip() == \
        f"poolchaos history: no history file at {tmp_path / 'none.sqlite'}"
    with pytest.raises(SystemExit):
        main(["history", "--since", "last tuesday"])
    assert "expected a date (YYYY-MM-DD) or an ISO 8601 time, got 'last tuesday'" in \
           capsys.readouterr().err


def test_junit_files_seed_a_history_the_next_run_reads(chaostester, capsys, monkeypatch):
    chaostester.pytester.makepyfile(test_suite=SUITE)
    (chaostester.path / "fail-on").write_text("2")
    for n in (1, 2, 3):  # CI runs from before the plugin kept a history, one file each
        chaostester.run(f"--junitxml=junit-{n}.xml")
    monkeypatch.chdir(chaostester.path)
    (chaostester.path / "page.xml").write_text("<html><body>not a test report</body></html>")
    (chaostester.path / "cut.xml").write_text("<testsuites><testsuite><testcase name=")
    capsys.readouterr()
    code = main(["history", "import", "junit-1.xml", "junit-2.xml", "junit-3.xml", "page.xml",
                 "cut.xml", "--db", "history.sqlite"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.splitlines() == [
        "poolchaos history import: page.xml: not JUnit XML (the root element is <html>, "
        "expected <testsuites> or <testsuite>)",
        "poolchaos history import: cut.xml: not well-formed XML (unclosed token: line 1, "
        "column 23)",
    ]
    assert out.count(": imported (3 tests, ") == 3
    assert main(["history", "import", "junit-1.xml", "--db", "history.sqlite"]) == 0
    assert "junit-1.xml: already in the history, skipped" in capsys.readouterr().out

    (chaostester.path / "fail-on").write_text("4")  # the next run, with the plugin, fails
    run = chaostester.run("--poolchaos-history=history.sqlite")
    history = run.test("test_sometimes")["history"]
    assert (history["runs"], history["failures"], history["flips"]) == (3, 1, 2)
    assert history["categories"] == {"unclassified": 1}  # from the files' properties
    assert run.diagnosis("test_sometimes")["verdict"] == "flaky"


def test_junit_names_become_node_ids_and_outcomes(tmp_path):
    junit = tmp_path / "other-tool.xml"
    junit.write_text("""<?xml version="1.0"?>
<testsuite name="suite" timestamp="2024-05-01T12:00:00Z">
  <testcase classname="tests.unit.test_pool.TestPool" name="test_grows[2-4]" time="1.5"/>
  <testcase classname="tests.unit.test_pool" name="test_plain" time="x">
    <failure message="boom"/></testcase>
  <testcase classname="tests.unit.test_pool" name="test_plain" time="0.1"/>
  <testcase classname="tests.unit.test_pool" name="test_xfail">
    <skipped type="pytest.xfail" message="known"/></testcase>
  <testcase classname="tests.unit.test_pool" name="test_err"><error message="x"/></testcase>
</testsuite>""")
    run, results = read(junit)
    assert run.created == "2024-05-01T12:00:00+00:00"
    assert run.source == "junit:other-tool.xml"
    assert [(r.nodeid, r.outcome, r.duration_s) for r in results] == [
        ("tests/unit/test_pool.py::TestPool::test_grows[2-4]", "passed", 1.5),
        ("tests/unit/test_pool.py::test_plain", "failed", 0.0),  # the worse of two attempts
        ("tests/unit/test_pool.py::test_xfail", "xfailed", 0.0),
        ("tests/unit/test_pool.py::test_err", "error", 0.0),
    ]
    assert read(junit)[0].id == run.id  # the same file is the same run
