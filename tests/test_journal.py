"""The journal: a run killed without a report can still be reported, now or on the next run."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from pytest_poolchaos import cli, journal
from pytest_poolchaos.postmortem import unfinished_record

SCHEMA = json.loads((Path(__file__).parent / "data" / "poolchaos-report.schema.json").read_text())

KILLED_SUITE = """
import threading

import pytest

def test_first():
    pass

def test_count():
    done = []; worker = threading.Thread(target=done.extend, args=([1, 2, 3],))
    worker.start(); worker.join(); assert len(done) == 4

@pytest.mark.timeout(0.5, method="thread")
def test_hang():
    threading.Event().wait(20)

def test_never_ran():
    pass
"""


def test_thread_timeout_kill_is_reported_from_the_journal(chaostester, capsys):
    pytest.importorskip("pytest_timeout")
    chaostester.pytester.makepyfile(test_killed=KILLED_SUITE)
    run = chaostester.run("-p", "no:xdist", "--poolchaos-journal=journal.jsonl",
                          subprocess=True)
    assert run.ret == 1
    assert run.data is None
    path = chaostester.path / "journal.jsonl"
    out = chaostester.path / "rebuilt.json"

    assert cli.main(["report", "--journal", str(path), "--json", str(out)]) == 0

    text = capsys.readouterr().out
    assert "did NOT finish" in text
    assert "RUNNING WHEN THE PROCESS DIED: test_killed.py::test_hang" in text
    data = json.loads(out.read_text())
    jsonschema.validate(data, SCHEMA)
    tests = {t["nodeid"]: t for t in data["tests"]}
    assert set(tests) == {"test_killed.py::test_first", "test_killed.py::test_count",
                          "test_killed.py::test_hang"}
    hang = tests["test_killed.py::test_hang"]["diagnosis"]
    assert hang["category"] == "timeout"
    assert "marker at test_killed.py:12" in " ".join(hang["evidence"])
    assert tests["test_killed.py::test_count"]["diagnosis"]["category"] == "expectation"
    assert tests["test_killed.py::test_first"]["outcome"] == "passed"
    assert data["session"]["exitstatus"] == 1

    # the next run names the dead run at the top of its report, once
    chaostester.pytester.makepyfile(test_killed="def test_ok():\n    pass\n")
    again = chaostester.run("--poolchaos-journal=journal.jsonl")
    again.result.stdout.fnmatch_lines([
        "poolchaos: the previous run did not finish*timeout in test_killed.py::test_hang",
    ])
    # runs append to one explicit file, told apart by run id; nothing is moved or truncated
    assert [r.finished for r in journal.read_runs(path)] == [False, True]
    third = chaostester.run("--poolchaos-journal=journal.jsonl")
    assert "previous run did not finish" not in third.text()
    # the notice's command reports the dead run, not the newest one
    dead = journal.read_runs(path)[0].run
    again.result.stdout.fnmatch_lines([f"*poolchaos report --journal {path} --run {dead[:12]}"])
    capsys.readouterr()
    assert cli.main(["report", "--journal", str(path), "--run", dead[:12]]) == 0
    assert "RUNNING WHEN THE PROCESS DIED: test_killed.py::test_hang" in capsys.readouterr().out


def test_a_process_death_without_timeout_is_lifecycle(chaostester, capsys):
    chaostester.pytester.makepyfile(
        test_exit="import os\n\ndef test_exits():\n    os._exit(5)\n")
    run = chaostester.run("-p", "no:xdist", "-p", "no:timeout",
                          "--poolchaos-journal=journal.jsonl", subprocess=True)
    assert run.ret == 5
    runs = journal.read_runs(chaostester.path / "journal.jsonl")
    [event] = runs[-1].unfinished_tests()
    diagnosis = unfinished_record(runs[-1], event).diagnosis
    assert diagnosis is not None
    assert diagnosis.category.value == "lifecycle"
    assert cli.main(["report", "--journal", str(chaostester.path / "journal.jsonl")]) == 0
    assert "RUNNING WHEN THE PROCESS DIED: test_exit.py::test_exits" in capsys.readouterr().out


def test_journal_off_writes_nothing_and_a_finished_run_is_complete(chaostester):
    chaostester.pytester.makepyfile("def test_ok():\n    pass\n")
    chaostester.run("--poolchaos-journal=off")
    assert not list(chaostester.path.glob("*.jsonl"))
    chaostester.run("--poolchaos-journal=j.jsonl")
    [run] = journal.read_runs(chaostester.path / "j.jsonl")
    assert run.finished
    assert not run.unfinished_tests()
    assert not run.results  # a passing test writes its start only
    assert run.outcome("test_journal_off_writes_nothing_and_a_finished_run_is_complete.py"
                       "::test_ok") == "passed"


def test_torn_and_foreign_lines_are_skipped(tmp_path, capsys):
    path = tmp_path / "journal.jsonl"
    lines = [
        {"event": "run-start", "run": "r1", "time": 1.0, "args": ["-x"]},
        {"event": "session-start", "run": "r1", "worker": None, "time": 1.0,
         "timeout": {"method": "thread", "seconds": 2.0}},
        {"event": "test-start", "run": "r1", "worker": None, "time": 2.0, "nodeid": "t.py::a",
         "timeout": None},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + '\n[1, 2]\n{"event": "te')
    [run] = journal.read_runs(path)
    assert not run.finished
    [event] = run.unfinished_tests()
    # no per-test limit: the session's thread method decides
    diagnosis = unfinished_record(run, event).diagnosis
    assert diagnosis is not None
    assert diagnosis.category.value == "timeout"
    assert cli.main(["report", "--journal", str(tmp_path / "missing.jsonl")]) == 2
    capsys.readouterr()


def test_the_default_journal_is_written_where_pytest_caches(chaostester):
    """``auto`` (the default) keeps one file per run under pytest's cache directory, and a
    run killed by pytest-timeout's thread method is named by the next one."""
    pytest.importorskip("pytest_timeout")
    chaostester.pytester.makepyfile(test_killed=KILLED_SUITE)
    killed = chaostester.pytester.runpytest_subprocess("-p", "poolchaos", "-p", "no:xdist",
                                                      "-p", "no:randomly", timeout=120)
    assert killed.ret == 1
    directory = chaostester.path / ".pytest_cache" / "d" / "poolchaos" / "journal"
    [first] = directory.glob("run-*.jsonl")
    [run] = journal.read_runs(first)
    assert {e["nodeid"] for e in run.unfinished_tests()} == {"test_killed.py::test_hang"}
    chaostester.pytester.makepyfile(test_killed="def test_ok():\n    pass\n")
    again = chaostester.pytester.runpytest_subprocess("-p", "poolchaos", "-p", "no:randomly",
                                                     timeout=120)
    again.stdout.fnmatch_lines(["poolchaos: the previous run did not finish*test_hang"])
    assert len(list(directory.glob("run-*.jsonl"))) == 2


def test_a_directory_is_never_taken_for_a_journal(chaostester):
    tests = chaostester.path / "tests"
    tests.mkdir()
    (tests / "test_one.py").write_text("def test_ok():\n    pass\n")
    run = chaostester.run("--poolchaos-journal=tests", json_report=False)
    assert run.ret == 4
    run.result.stderr.fnmatch_lines(["*--poolchaos-journal*directory*"])
    assert (tests / "test_one.py").exists()
    assert not (chaostester.path / "tests.prev").exists()


def test_the_tail_read_for_run_lines_finds_them_among_many_test_lines(tmp_path):
    # Only the lines holding the text are taken (and parsed); the line the tail begins in the
    # middle of is left out even when it holds the text.
    lines = [{"run": "old", "event": "run-start", "time": 1.0},
             *({"run": "old", "event": "test-start", "nodeid": f"t.py::test_{i}"}
               for i in range(300)),
             {"run": "old", "event": "run-end", "time": 2.0},
             {"run": "new", "event": "run-start", "time": 3.0},
             {"run": "new", "event": "test-start", "nodeid": "t.py::test_run-away"}]
    path = tmp_path / "journal.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    events, whole = journal._tail_events(path, path.stat().st_size, "run-")
    assert whole
    assert [e["event"] for e in events] == ["run-start", "run-end", "run-start", "test-start"]
    ended = json.dumps(lines[-3])  # the tail begins at its "run-end": a torn line
    size = len(json.dumps(lines[-2])) + len(json.dumps(lines[-1])) + 3 + \
        len(ended) - ended.index("run-end")
    events, whole = journal._tail_events(path, size, "run-")
    assert not whole
    assert [e["event"] for e in events] == ["run-start", "test-start"]
