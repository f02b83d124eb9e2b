"""The HTML report: one code path from the JSON dict, self-contained, escaped."""

from __future__ import annotations

import re

from pytest_poolchaos.cli import main
from pytest_poolchaos.report.html import POLICY, Span, overlapping, render

SUITE = """
import threading

import pytest

@pytest.mark.parametrize("label", ["<b>bold</b>", "plain"])
def test_label(label):
    assert label == "plain", "</script><script>document.title='owned'</script>"

def test_waits():
    assert threading.Event().wait(0.05), "never set"

def test_leaks():
    threading.Thread(target=threading.Event().wait, args=(3,), daemon=True,
                     name="<i>sneaky</i>").start()
"""


def test_the_plugin_and_the_command_draw_the_same_page(chaostester, capsys, monkeypatch):
    chaostester.pytester.makepyfile(test_page=SUITE)
    run = chaostester.run("--poolchaos-html=report.html")
    assert run.ret == 1
    monkeypatch.chdir(chaostester.path)
    capsys.readouterr()
    assert main(["html", "poolchaos.json", "-o", "again.html"]) == 0
    assert capsys.readouterr().out.strip() == "wrote again.html"
    page = (chaostester.path / "report.html").read_text()
    assert page == (chaostester.path / "again.html").read_text()
    assert page.count('<article class="card') == 2  # test_label[<b>bold</b>] and test_waits


def test_the_page_needs_nothing_from_the_network_and_escapes_test_text(chaostester):
    chaostester.pytester.makepyfile(test_page=SUITE)
    chaostester.run("--poolchaos-html=report.html")
    page = (chaostester.path / "report.html").read_text()
    assert f'content="{POLICY}"' in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page
    assert "@import" not in page
    assert "<b>bold</b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<i>sneaky</i>" not in page
    # the only script element is the page's own
    assert page.count("<script") == 1
    assert "document.title='owned'" not in page.replace("&#x27;", "'").split("<script>")[1]


def test_a_report_without_failures_or_times_still_draws():
    data = {"schema": "poolchaos-report/1", "created": "2024-05-01T10:00:00+00:00",
            "session": {"args": [], "workers": 0, "duration_s": 0.5, "exitstatus": 0},
            "summary": {"tests": 1, "passed": 1, "failed": 0, "skipped": 0, "errors": 0,
                        "by_category": {"timeout": 0}},
            "tests": [{"nodeid": "t.py::x", "outcome": "passed", "duration_s": 0.1,
                       "diagnosis": None, "leaks": []}]}
    page = render(data)
    assert "No failures." in page
    assert "No test in this report carries start and stop times." in page
    assert "No test left anything behind." in page


def test_alongside_means_overlapping_on_another_lane_of_the_same_machine():
    timed = {0: Span(0.0, 2.0, "gw0"), 1: Span(1.5, 3.0, "gw1"), 2: Span(0.5, 1.2, "gw1"),
             3: Span(0.0, 5.0, "gw0"), 4: Span(2.0, 4.0, "gw1")}
    assert overlapping(0, timed) == [(2, 0.7), (1, 0.5)]  # most overlap first
    assert overlapping(3, timed) == [(4, 2.0), (1, 1.5), (2, 0.7)]
    assert overlapping(9, timed) == []
    # another shard ran on another machine: at the same time, but not alongside
    shards = {0: Span(0.0, 2.0, "a:gw0", "a"), 1: Span(0.0, 2.0, "a:gw1", "a"),
              2: Span(0.0, 2.0, "b:gw0", "b"), 3: Span(0.0, 2.0, "c", "c")}
    assert overlapping(0, shards) == [(1, 2.0)]
    assert overlapping(3, shards) == []


def test_a_merged_report_draws_a_lane_per_shard_and_worker():
    def test(nodeid, worker, start):
        return {"nodeid": nodeid, "outcome": "passed", "duration_s": 1.0, "worker": worker,
                "start": start, "stop": start + 1.0, "diagnosis": None, "leaks": []}

    data = {"schema": "poolchaos-report/1", "session": {"shards": ["s1", "s2"]},
            "summary": {"tests": 3, "by_category": {}},
            "tests": [test("a", "s1", 0.0), test("b", "s2:gw1", 0.5), test("c", "s2:gw0", 0.2)]}
    page = render(data)
    assert re.findall(r'<g class="lane" data-lane="([^"]+)"', page) == ["s1", "s2:gw0",
                                                                         "s2:gw1"]
    assert "merged from 2 shards" in page
    assert re.findall(r'data-lane="s2:gw1" data-host="([^"]*)"', page) == ["s2"]
