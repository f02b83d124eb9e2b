"""``poolchaos merge``: one report from CI shards' reports, per the contract."""

from __future__ import annotations

import json

import jsonschema
import pytest
from conftest import SCHEMA

from pytest_poolchaos.cli import main
from pytest_poolchaos.report.merge import MergeError, exit_status, merge

SHARD_A = """
import threading

def test_a_passes():
    pass

def test_a_times_out():
    assert threading.Event().wait(0.05), "never set"
"""
SHARD_B = """
import threading

import pytest

@pytest.mark.parametrize("n", range(4))
def test_b(n):
    assert n != 2

def test_b_leaks():
    threading.Thread(target=threading.Event().wait, args=(3,), daemon=True).start()
"""


def shards(chaostester) -> tuple[dict, dict]:
    chaostester.pytester.makepyfile(test_shard_a=SHARD_A, test_shard_b=SHARD_B)
    a = chaostester.run("test_shard_a.py", "--poolchaos-json=shard-1.json")
    b = chaostester.run("test_shard_b.py", "-n", "2", "--poolchaos-json=shard-2.json",
                        subprocess=True)
    assert a.ret == b.ret == 1
    path = chaostester.path
    return (json.loads((path / "shard-1.json").read_text()),
            json.loads((path / "shard-2.json").read_text()))


def test_shards_merge_into_one_report_with_lanes_per_shard_and_worker(chaostester, capsys,
                                                                      monkeypatch):
    first, second = shards(chaostester)
    monkeypatch.chdir(chaostester.path)
    assert main(["merge", "shard-1.json", "shard-2.json", "-o", "all.json"]) == 0
    assert "merged 2 reports into all.json: 7 tests, 2 failed, 0 errors" in \
           capsys.readouterr().out
    merged = json.loads((chaostester.path / "all.json").read_text())
    jsonschema.validate(merged, SCHEMA)

    assert merged["session"]["shards"] == ["shard-1", "shard-2"]
    assert [t["nodeid"] for t in merged["tests"]] == \
           [t["nodeid"] for t in first["tests"] + second["tests"]]
    summary = merged["summary"]
    assert (summary["tests"], summary["passed"], summary["failed"]) == (7, 5, 2)
    by_category = {k: v for k, v in summary["by_category"].items() if v}
    expected: dict[str, int] = {}
    for report in (first, second):
        for name, count in report["summary"]["by_category"].items():
            if count:
                expected[name] = expected.get(name, 0) + count
    assert by_category == expected
    lanes = {t["worker"] for t in merged["tests"]}
    assert "shard-1" in lanes  # a serial shard is one lane named after it
    assert {lane for lane in lanes if lane.startswith("shard-2:")} <= {"shard-2:gw0",
                                                                     "shard-2:gw1"}
    assert merged["session"]["workers"] == 2
    assert merged["session"]["exitstatus"] == 1
    leaky = next(t for t in merged["tests"] if t["nodeid"].endswith("test_b_leaks"))
    assert leaky["leaks"]  # everything a test carried comes along
    assert merged["session"]["duration_s"] >= max(first["session"]["duration_s"],
                                                  second["session"]["duration_s"]) - 1e-6


def test_a_report_of_another_schema_is_refused_clearly(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good.json").write_text(json.dumps(
        {"schema": "poolchaos-report/1", "tests": [], "session": {}, "summary": {}}))
    (tmp_path / "other.json").write_text(json.dumps({"schema": "poolchaos-report/2"}))
    (tmp_path / "broken.json").write_text("{not json")
    assert main(["merge", "good.json", "other.json", "-o", "all.json"]) == 2
    assert capsys.readouterr().err.strip() == (
        "poolchaos merge: other.json: schema 'poolchaos-report/2' is not 'poolchaos-report/1'; "
        "only reports of the same schema can be merged")
    assert main(["merge", "good.json", "broken.json", "-o", "all.json"]) == 2
    assert "poolchaos merge: broken.json: not JSON (" in capsys.readouterr().err
    assert main(["merge", "missing.json", "-o", "all.json"]) == 2
    assert "missing.json: cannot read it (No such file or directory)" in \
           capsys.readouterr().err
    assert not (tmp_path / "all.json").exists()


def test_a_test_in_two_shards_is_kept_once_by_what_says_most():
    def report(outcome: str) -> dict:
        return {"schema": "poolchaos-report/1", "created": "2024-05-01T10:00:00+00:00",
                "session": {"args": [], "workers": 0, "duration_s": 1.0, "exitstatus": 0},
                "summary": {"by_category": {}},
                "tests": [{"nodeid": "t.py::x", "outcome": outcome, "duration_s": 0.1,
                           "worker": None, "diagnosis": None, "leaks": []}]}

    merged = merge([("a", report("passed")), ("b", report("failed"))])
    assert [(t["outcome"], t["worker"]) for t in merged["tests"]] == [("failed", "b")]
    with pytest.raises(MergeError, match="nothing to merge"):
        merge([])


@pytest.mark.parametrize(("statuses", "merged"), [
    ([0, 0], 0), ([0, 1], 1), ([5, 0], 0), ([5, 5], 5), ([1, 2, 0], 2), ([5, 1], 1)])
def test_the_merged_exit_status_is_the_worst_and_no_tests_only_when_all_say_so(statuses,
                                                                                merged):
    assert exit_status(statuses) == merged
