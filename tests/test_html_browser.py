"""The HTML report in a real browser: headless Chromium (Debian's ``chromium`` package).

The page is loaded as a CI artifact would be (a file, no network); the DOM after its script
ran is checked against the JSON report it was drawn from, a bar chosen through the page's
``#t-N`` link shows what ran alongside it exactly as the report's own overlap arithmetic
says, and screenshots (laptop and phone widths) are kept under the basetemp.

Never skipped: without the browser this test fails and says how to install it (``.ci/run``
installs it when it is missing).
"""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pytest_poolchaos.report import html
from pytest_poolchaos.report.html import Span, overlapping

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio")

# test_fails_alongside and test_slow_side can only finish when both run at once (each waits,
# bounded, for the other's file); one file each under --dist loadfile puts them on two lanes.
MEET = """
import threading
import time
from pathlib import Path

import pytest

def meet(me, other):
    Path(me).touch()
    deadline = time.monotonic() + 20
    while not Path(other).exists():
        assert time.monotonic() < deadline, "the other test never ran alongside"
        time.sleep(0.01)
    time.sleep(0.3)
"""
LEFT = MEET + """
def test_fails_alongside():
    meet("a.ready", "b.ready")
    assert threading.Event().wait(0.05), "the worker never reported ready"

@pytest.mark.parametrize("n", range(4))
def test_quick(n):
    assert n != 3, "three is right out"
"""
RIGHT = MEET + """
def test_slow_side():
    meet("b.ready", "a.ready")
    threading.Thread(target=threading.Event().wait, args=(5,), daemon=True,
                     name="left-behind").start()
"""


class Dom(HTMLParser):
    """Every element's attributes, and the text inside the element with id ``detail``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.detail: list[str] = []
        self._depth = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        self.elements.append((tag, found))
        if self._depth or found.get("id") == "detail":
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth and data.strip():
            self.detail.append(data.strip())

    def all(self, tag: str, **wanted: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.elements if name == tag and all(
            wanted_value in attrs.get(key.rstrip("_"), "").split()
            if key.endswith("_") else attrs.get(key) == wanted_value
            for key, wanted_value in wanted.items())]


def chromium(tmp_path: Path, *args: str) -> str:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("headless Chromium is needed for this test: apt-get install -y chromium "
                    "(.ci/run installs it when it is missing)")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    done = subprocess.run([shutil.which("chromium") or CHROMIUM, *FLAGS,
                           f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def report(chaostester):
    chaostester.pytester.makepyfile(test_left=LEFT, test_right=RIGHT)
    run = chaostester.run("-n", "2", "--dist", "loadfile", "--poolchaos-html=report.html",
                          subprocess=True)
    assert run.ret == 1
    assert run.data is not None
    return chaostester.path / "report.html", run.data


def test_the_page_in_a_browser_matches_its_json_and_shows_what_ran_alongside(report,
                                                                             tmp_path):
    page, data = report
    tests = data["tests"]
    chosen = next(i for i, t in enumerate(tests) if t["nodeid"].endswith("test_fails_alongside"))
    dom = Dom(chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom",
                       f"{page.as_uri()}#t-{chosen}"))

    assert dom.all("html", **{"data-ready": "true"}), "the page's script did not run"
    cards = dom.all("article", class_="card")
    assert sorted(c["data-nodeid"] for c in cards) == sorted(
        t["nodeid"] for t in tests if t["diagnosis"])
    for chip in dom.all("span", class_="chip"):
        assert int(chip["data-count"]) == data["summary"]["by_category"][chip["data-category"]]
    failed = dom.all("span", class_="count", **{"data-outcome": "failed"})
    assert [int(f["data-count"]) for f in failed] == [data["summary"]["failed"]]
    lanes = [g["data-lane"] for g in dom.all("g", class_="lane")]
    assert sorted(lanes) == sorted({t["worker"] for t in tests}) == ["gw0", "gw1"]
    bars = dom.all("rect", class_="bar")
    assert len(bars) == len(tests)
    assert {b["data-nodeid"] for b in dom.all("rect", class_="leaky")} == {
        t["nodeid"] for t in tests if t["leaks"]}
    assert {b["data-nodeid"] for b in dom.all("rect", class_="o-failed")} == {
        t["nodeid"] for t in tests if t["outcome"] == "failed"}

    # the link chose a bar: it is selected, and the panel lists what ran alongside it
    assert [b["id"] for b in dom.all("rect", class_="selected")] == [f"t-{chosen}"]
    timed = {i: Span(t["start"], t["stop"], t["worker"]) for i, t in enumerate(tests)}
    expected = [tests[i]["nodeid"] for i, _ in overlapping(chosen, timed)]
    assert any(t.endswith("test_slow_side") for t in expected)
    along = {b["data-nodeid"] for b in dom.all("rect", class_="along")}
    assert along == set(expected)
    assert dom.detail[0] == tests[chosen]["nodeid"]
    assert f"Ran alongside ({len(expected)})" in dom.detail
    assert [text for text in dom.detail if text in expected] == expected


def test_screenshots_at_laptop_and_phone_width(report, tmp_path, tmp_path_factory):
    page, _ = report
    folder = tmp_path_factory.getbasetemp() / "screenshots"
    folder.mkdir(exist_ok=True)
    for name, size in (("laptop", "1280,1600"), ("phone", "390,1400")):
        shot = folder / f"poolchaos-html-{name}.png"
        shot.unlink(missing_ok=True)
        chromium(tmp_path, f"--window-size={size}", f"--screenshot={shot}", page.as_uri())
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
        print(f"screenshot: {shot}")


def test_in_a_merged_report_other_shards_never_ran_alongside(report, tmp_path):
    _, data = report
    # two shards that ran the same tests at the same moments, on two machines
    tests = [{**t, "worker": f"{shard}:{t['worker']}", "nodeid": f"{shard}/{t['nodeid']}"}
             for shard in ("s1", "s2") for t in data["tests"]]
    merged = {**data, "tests": tests, "session": {**data["session"], "shards": ["s1", "s2"]}}
    page = tmp_path / "merged.html"
    html.write(page, merged)
    chosen = next(i for i, t in enumerate(tests) if t["nodeid"].endswith("fails_alongside"))
    dom = Dom(chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom",
                       f"{page.as_uri()}#t-{chosen}"))
    lanes = [g["data-lane"] for g in dom.all("g", class_="lane")]
    assert lanes == ["s1:gw0", "s1:gw1", "s2:gw0", "s2:gw1"]
    along = {b["data-nodeid"] for b in dom.all("rect", class_="along")}
    assert along
    assert all(nodeid.startswith("s1/") for nodeid in along)
