"""History across runs: what the controller records, what the next run's report makes of it,
and that a broken, locked or read-only history file never costs the run."""

from __future__ import annotations

import array
import contextlib
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from pytest_poolchaos.history import store as store_mod
from pytest_poolchaos.history.stats import (
    Past,
    flips,
    history_phrase,
    percentile,
    recovered,
    summarize,
)
from pytest_poolchaos.history.store import HistoryStore, Result, RunInfo
from pytest_poolchaos.history.vcs import branch_and_commit

HISTORY = "--poolchaos-history=history.sqlite"

# Fails on the runs listed in the file ``fail-on`` (counted from 1), passes on the others:
# a flaky test whose flakiness the test decides.
SCRIPTED = """
from pathlib import Path

def test_scripted():
    count = Path("count")
    run = int(count.read_text()) + 1 if count.exists() else 1
    count.write_text(str(run))
    fail_on = {int(n) for n in Path("fail-on").read_text().split()}
    assert run not in fail_on, f"run {run} fails on purpose"

def test_steady():
    pass
"""


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # report lines asserted whole, not wrapped


def rows(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return list(db.execute(sql, args))


def scripted(chaostester, fail_on: str) -> None:
    chaostester.pytester.makepyfile(test_scripted=SCRIPTED)
    (chaostester.path / "fail-on").write_text(fail_on)


# -- what is recorded --------------------------------------------------------------------------


def test_each_run_records_outcome_category_verdict_duration_worker_commit(chaostester,
                                                                          monkeypatch):
    monkeypatch.setenv("GITHUB_SHA", "abc123")
    monkeypatch.setenv("GITHUB_REF_NAME", "main")
    monkeypatch.delenv("GITHUB_HEAD_REF", raising=False)
    # What is quick is a duration: on a loaded machine even an empty test can take 20 ms, and
    # this test is about how a quick pass is stored, not where the line is.
    monkeypatch.setattr("pytest_poolchaos.history.session.QUICK_S", 60.0)
    scripted(chaostester, "2")
    for _ in range(2):
        chaostester.run(HISTORY)
    db = chaostester.path / "history.sqlite"
    runs = rows(db, "SELECT commit_sha, branch, source, tests, failed FROM runs ORDER BY seq")
    assert runs == [("abc123", "main", "pytest", 2, 0), ("abc123", "main", "pytest", 2, 1)]
    results = rows(db, "SELECT t.nodeid, r.outcome, r.category, r.verdict, r.worker, "
                       "r.duration_s FROM results r JOIN tests t ON t.id = r.test "
                       "WHERE r.run = 2 ORDER BY t.nodeid")
    assert [row[:5] for row in results] == [
        ("test_scripted.py::test_scripted", "failed", "unclassified", "unknown", None),
    ]
    assert all(isinstance(row[5], float) and row[5] >= 0 for row in results)
    # a quick pass is packed into its run's row of ``passes``, not a row of its own
    [(steady,)] = rows(db, "SELECT id FROM tests WHERE nodeid LIKE '%test_steady'")
    [(blob,)] = rows(db, "SELECT tests FROM passes WHERE run = 2")
    assert steady in array.array("I", blob)
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]


def test_a_failure_that_came_and_went_is_flaky_by_history_without_reruns(chaostester,
                                                                         monkeypatch):
    monkeypatch.setattr("pytest_poolchaos.history.session.QUICK_S", 60.0)  # see above
    scripted(chaostester, "2 4")
    for _ in range(3):
        chaostester.run(HISTORY)
    run = chaostester.run(HISTORY)  # the fourth: fails again
    history = run.test("test_scripted")["history"]
    assert history["runs"] == 3
    assert history["failures"] == 1
    assert history["flips"] == 2
    assert history["recent"] == ["passed", "failed", "passed"]
    assert history["first_failed"] == history["last_failed"]
    assert history["categories"] == {"unclassified": 1}
    diagnosis = run.diagnosis("test_scripted")
    assert diagnosis["verdict"] == "flaky"
    assert diagnosis["reruns"] == 0
    assert any("passed again after failing" in line for line in diagnosis["evidence"])
    text = run.text()
    assert f"history: failed 1 of the last 3 recorded runs, flip rate 1.00, first failed on " \
           f"{history['first_failed'][:10]}" in text
    assert "flaky by its history (not rerun)" in text
    # its own history disproves "an ordinary bug that fails the same way alone"
    [suggestion] = diagnosis["suggestions"]
    assert suggestion["text"].startswith("It failed 1 of the last 3 recorded runs")
    assert "ordinary bug" not in text
    assert run.test("test_steady")["history"] is None  # a fast passing test is not looked up


def test_a_new_failure_after_passing_runs_is_not_called_flaky(chaostester):
    scripted(chaostester, "3")
    chaostester.run(HISTORY)
    chaostester.run(HISTORY)
    run = chaostester.run(HISTORY)
    assert run.diagnosis("test_scripted")["verdict"] == "unknown"
    assert run.test("test_scripted")["history"]["failures"] == 0
    assert "history: passed all of the last 2 recorded runs" in run.text()


def test_reruns_keep_their_verdict_and_the_history_line_still_shows(chaostester):
    scripted(chaostester, "2 4")
    for _ in range(3):
        chaostester.run(HISTORY)
    # the rerun is run 5 and passes: reruns, not history, decide the verdict
    run = chaostester.run(HISTORY, "--poolchaos-rerun=1", "--poolchaos-rerun-mode=inline")
    diagnosis = run.diagnosis("test_scripted")
    assert diagnosis["verdict"] == "flaky"
    assert diagnosis["reruns"] == 1
    assert not any("passed again after failing" in line for line in diagnosis["evidence"])
    assert "history: failed 1 of the last 3 recorded runs" in run.text()


def test_under_xdist_only_the_controller_writes_one_run(chaostester):
    chaostester.pytester.makepyfile(test_many="""
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_n(n):
            assert n != 3
        """)
    chaostester.run("-n", "2", HISTORY, subprocess=True)
    db = chaostester.path / "history.sqlite"
    assert rows(db, "SELECT tests, failed FROM runs") == [(6, 1)]
    workers = {worker for (worker,) in rows(db, "SELECT worker FROM results")}
    assert workers <= {"gw0", "gw1"}
    assert workers
    run = chaostester.run("-n", "2", HISTORY, subprocess=True)
    assert rows(db, "SELECT COUNT(*) FROM runs") == [(2,)]
    chaostester.run("--collect-only", HISTORY)  # nothing ran: nothing to remember
    assert rows(db, "SELECT COUNT(*) FROM runs") == [(2,)]
    assert run.test("test_n[3]")["history"]["failures"] == 1


def test_a_slow_down_past_the_tests_own_baseline_is_flagged(chaostester):
    chaostester.pytester.makepyfile(test_slow="""
        import time

        def test_slow():
            time.sleep(0.4)
        """)
    db = chaostester.path / "history.sqlite"
    store, _ = HistoryStore.open(db)
    with store:
        for n in range(6):
            store.record(RunInfo(f"seed{n}", f"2024-05-0{n + 1}T10:00:00+00:00"),
                         [Result("test_slow.py::test_slow", "passed", 0.05 + n * 0.002)])
    run = chaostester.run(HISTORY)
    history = run.test("test_slow")["history"]
    assert history["slower"] is True
    assert history["p50_s"] == pytest.approx(0.055)
    text = run.text()
    assert "1 slower than their history" in text
    assert "slower than their history (often the first sign of a coming timeout)" in text
    assert f"{history['p50_s']:.2f} s" in text


# -- a history file that cannot be used ----------------------------------------------------------


def _outcome_unchanged(run) -> None:
    assert run.ret == 1  # test_scripted fails on run 1 by design: that, and nothing else
    assert run.data is not None
    assert run.data["summary"]["failed"] == 1
    assert run.data["session"]["problems"] == []


def test_a_corrupt_history_file_is_moved_aside_and_a_new_one_started(chaostester):
    scripted(chaostester, "1")
    db = chaostester.path / "history.sqlite"
    db.write_bytes(b"this is not a database\n" * 200)
    run = chaostester.run(HISTORY)
    _outcome_unchanged(run)
    lines = [line for line in run.text().splitlines() if "history file" in line]
    assert len(lines) == 1, lines
    assert "was unreadable (file is not a database); moved it to history.sqlite.broken-" in \
           lines[0]
    broken = list(chaostester.path.glob("history.sqlite.broken-*"))
    assert len(broken) == 1
    assert broken[0].read_bytes().startswith(b"this is not a database")
    assert rows(db, "SELECT tests, failed FROM runs") == [(2, 1)]


def test_a_locked_history_file_is_one_line_and_the_run_goes_on(chaostester, monkeypatch):
    monkeypatch.setattr(store_mod, "BUSY_TIMEOUT", 0.2)
    scripted(chaostester, "1")
    db = chaostester.path / "history.sqlite"
    HistoryStore.open(db)[0].close()
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process in the middle of its write
        run = chaostester.run(HISTORY)
    finally:
        holder.close()
    _outcome_unchanged(run)
    lines = [line for line in run.text().splitlines() if line.startswith("poolchaos: history")]
    assert lines == [f"poolchaos: history not recorded: {db} is locked by another process "
                     f"(database is locked)"]
    assert rows(db, "SELECT COUNT(*) FROM runs") == [(0,)]


@contextlib.contextmanager
def read_only(path: Path):
    """A file nobody may write to, root included (root ignores permission bits)."""
    path.chmod(0o444)
    immutable = os.geteuid() == 0
    if immutable:
        subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o644)


def test_a_read_only_history_file_is_read_but_not_written(chaostester):
    scripted(chaostester, "1 2")
    db = chaostester.path / "history.sqlite"
    chaostester.run(HISTORY)  # run 1 recorded
    for extra in chaostester.path.glob("history.sqlite-*"):
        extra.unlink()  # a file restored from a CI cache comes without its WAL files
    with read_only(db):
        run = chaostester.run(HISTORY)
    assert run.ret == 1
    lines = [line for line in run.text().splitlines() if "history" in line.lower()
             and "poolchaos:" in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"poolchaos: history not recorded: cannot write {db} (")
    assert run.test("test_scripted")["history"]["failures"] == 1  # read all the same
    assert rows(db, "SELECT COUNT(*) FROM runs") == [(1,)]


# -- where it lives ----------------------------------------------------------------------------


def test_auto_keeps_it_in_pytests_cache_and_off_writes_nothing(pytester):
    pytester.makepyfile("def test_x(): pass")
    pytester.runpytest("-p", "poolchaos", "--poolchaos-history=off").assert_outcomes(passed=1)
    assert not list(pytester.path.rglob("history.sqlite*"))
    pytester.runpytest("-p", "poolchaos").assert_outcomes(passed=1)
    cache = pytester.path / ".pytest_cache"
    # a green run waits in the pending file until a run opens the store
    assert (cache / "d" / "poolchaos" / "history.sqlite.pending").is_file()
    assert (cache / ".gitignore").is_file()  # made through pytest's cache, as it makes it


def test_the_ini_key_turns_it_off_and_the_command_line_wins(pytester):
    pytester.makeini("[pytest]\npoolchaos_history = off\n")
    pytester.makepyfile("def test_x(): pass")
    pytester.runpytest("-p", "poolchaos").assert_outcomes(passed=1)
    assert not list(pytester.path.rglob("*.sqlite*"))
    pytester.runpytest("-p", "poolchaos", "--poolchaos-history=mine.sqlite")
    assert (pytester.path / "mine.sqlite.pending").is_file()


@pytest.mark.parametrize(("option", "accepted"), [
    ("history", "expected auto, off or the path of a file, not a directory"),
    ("html", "expected the path of a file, not a directory"),
])
def test_a_directory_is_not_a_file_to_write(pytester, option, accepted):
    pytester.mkdir("somewhere")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("-p", "poolchaos", f"--poolchaos-{option}=somewhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"--poolchaos-{option} / poolchaos_{option}: {accepted}, got 'somewhere' (from the " \
           f"command line --poolchaos-{option})" in result.stderr.str()


# -- the arithmetic ------------------------------------------------------------------------------


@pytest.mark.parametrize(("outcomes", "changes", "came_back"), [
    ([], 0, False),
    (["passed", "passed"], 0, False),
    (["passed", "failed", "failed"], 1, False),  # a regression
    (["failed", "passed"], 1, True),  # fixed, or flaky: it came back
    (["passed", "failed", "skipped", "passed", "error"], 3, True),
    (["xfailed", "failed", "xpassed"], 2, True),
])
def test_flips_count_changes_and_recovered_needs_a_pass_after_a_failure(outcomes, changes,
                                                                        came_back):
    assert flips(outcomes) == changes
    assert recovered(outcomes) is came_back


def test_percentile_interpolates_between_ranks():
    assert percentile([], 0.5) == 0.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)
    assert percentile([float(n) for n in range(1, 21)], 0.95) == pytest.approx(19.05)


def test_summarize_counts_the_window_and_dates_span_everything():
    past = [Past(f"2024-05-{day:02d}T00:00:00+00:00", "failed" if day % 5 == 0 else "passed",
                 0.1, "timeout" if day % 5 == 0 else None) for day in range(30, 0, -1)]
    history = summarize(past, "2024-05-05T00:00:00+00:00", "2024-05-30T00:00:00+00:00", 0.1)
    assert history["runs"] == 20  # days 11..30
    assert history["failures"] == 4  # 15, 20, 25, 30
    assert history["flips"] == 7
    assert history["flip_rate"] == pytest.approx(7 / 19, abs=1e-3)
    assert history["categories"] == {"timeout": 4}
    assert history["slower"] is False
    assert history_phrase(history) == ("failed 4 of the last 20 recorded runs, flip rate 0.37, "
                                       "first failed on 2024-05-05")
    assert history_phrase(None) is None
    assert history_phrase({"runs": 1, "failures": 0, "flips": 0}) == \
        "passed the last recorded run"


def test_commit_and_branch_from_ci_variables_first_then_git_files(tmp_path):
    env = {"CI_COMMIT_SHA": "c1", "CI_COMMIT_REF_NAME": "feature"}
    assert branch_and_commit(tmp_path, env) == ("feature", "c1")
    env = {"GITHUB_SHA": "g1", "GITHUB_REF_NAME": "7/merge", "GITHUB_HEAD_REF": "fix-it"}
    assert branch_and_commit(tmp_path, env) == ("fix-it", "g1")
    # a worktree: HEAD of its own, refs (here packed) in the common directory
    common = tmp_path / "repo.git"
    worktree_git = common / "worktrees" / "wt"
    worktree_git.mkdir(parents=True)
    (common / "packed-refs").write_text("# pack-refs\n" + "d" * 40 + " refs/heads/topic\n")
    (worktree_git / "HEAD").write_text("ref: refs/heads/topic\n")
    (worktree_git / "commondir").write_text("../..\n")
    checkout = tmp_path / "wt"
    (checkout / "sub").mkdir(parents=True)
    (checkout / ".git").write_text(f"gitdir: {worktree_git}\n")
    assert branch_and_commit(checkout / "sub", {}) == ("topic", "d" * 40)
    (worktree_git / "HEAD").write_text("e" * 40 + "\n")  # detached
    assert branch_and_commit(checkout, {}) == (None, "e" * 40)
    assert branch_and_commit(tmp_path / "nowhere", {}) == (None, None)


# -- the store itself ----------------------------------------------------------------------------


def test_runs_fall_into_their_place_in_time_and_old_ones_are_pruned(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "KEEP_RUNS", 4)
    monkeypatch.setattr(store_mod, "_PRUNE_SLACK", 1)
    store, note = HistoryStore.open(tmp_path / "h.sqlite")
    assert note is None
    key = "tests.Test_Mod::test_x"  # a module whose name looks like a class
    with store:
        for day, outcome in ((3, "passed"), (1, "failed"), (5, "failed"), (2, "passed"),
                             (4, "passed")):
            # imported from JUnit, in no order: the node id is a (wrong) guess
            assert store.record(RunInfo(f"run{day}", f"2024-05-0{day}T00:00:00+00:00"),
                                [Result("tests.py::Test_Mod::test_x", outcome, 0.1, key=key)])
        assert not store.record(RunInfo("run3", "2024-05-03T00:00:00+00:00"), [])  # again
        past, first, last = store.past([key])[key]
        assert [p.outcome for p in past] == ["failed", "passed", "passed", "passed", "failed"]
        assert (first[:10], last[:10]) == ("2024-05-01", "2024-05-05")
        # a pytest run knows the real node id; the sixth run prunes the oldest two
        store.record(RunInfo("run6", "2024-05-06T00:00:00+00:00"),
                     [Result("tests/Test_Mod.py::test_x", "passed", 0.1)])
        assert [r["id"] for r in store.runs()] == ["run3", "run4", "run5", "run6"]
        (row,) = list(store.db.execute("SELECT nodeid, first_failed FROM tests"))
        assert row == ("tests/Test_Mod.py::test_x", "2024-05-01T00:00:00+00:00")  # still true
        assert rows(tmp_path / "h.sqlite", "SELECT COUNT(*) FROM results") == [(4,)]


def test_a_file_of_the_first_format_gains_the_packed_passes_and_keeps_its_rows(tmp_path):
    import sqlite3

    from pytest_poolchaos.history.store import HistoryStore, Result, RunInfo

    path = tmp_path / "history.sqlite"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE tests (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,
                            nodeid TEXT NOT NULL, first_failed TEXT, last_failed TEXT);
        CREATE TABLE runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
                           created TEXT NOT NULL, commit_sha TEXT, branch TEXT,
                           source TEXT NOT NULL, tests INTEGER NOT NULL, failed INTEGER NOT NULL);
        CREATE TABLE results (run INTEGER NOT NULL, test INTEGER NOT NULL, outcome TEXT NOT NULL,
                              category TEXT, verdict TEXT, duration_s REAL NOT NULL, worker TEXT,
                              PRIMARY KEY (run, test)) WITHOUT ROWID;
        INSERT INTO tests VALUES (1, 't.py::test_a', 't.py::test_a', NULL, NULL);
        INSERT INTO runs VALUES (1, 'old', '2026-01-01T00:00:00+00:00', NULL, NULL, 'pytest', 1, 0);
        INSERT INTO results VALUES (1, 1, 'passed', NULL, NULL, 0.001, NULL);
        PRAGMA user_version = 1;
    """)
    db.close()
    store, note = HistoryStore.open(path)
    with store:
        assert note is None
        store.record(RunInfo("new", "2026-01-02T00:00:00+00:00"),
                     [Result("t.py::test_a", "failed", 0.3, "timeout", "unknown")])
        [(_, (past, _, last_failed))] = store.past(["t.py::test_a"]).items()
        assert last_failed == "2026-01-02T00:00:00+00:00"
        assert [p.outcome for p in past] == ["failed", "passed"]  # newest first
        assert [r.outcome for r in store.rows()] == ["passed", "failed"]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (2,)


# -- the pending file: green runs without SQLite -------------------------------------------------


def test_a_green_run_waits_in_the_pending_file_and_the_next_store_opening_folds_it(
        chaostester, monkeypatch):
    monkeypatch.setattr("pytest_poolchaos.history.session.QUICK_S", 60.0)  # see the first test
    scripted(chaostester, "2")
    chaostester.run(HISTORY)
    db = chaostester.path / "history.sqlite"
    waiting = chaostester.path / "history.sqlite.pending"
    assert not db.exists()
    assert waiting.read_text().count("\n") == 1
    chaostester.run(HISTORY)  # fails: reads the history, so opens the store
    assert waiting.read_text() == ""
    assert rows(db, "SELECT tests, failed FROM runs ORDER BY seq") == [(2, 0), (2, 1)]


def test_the_listing_and_the_store_see_runs_that_are_still_waiting(tmp_path):
    from pytest_poolchaos.history import pending

    path = tmp_path / "h.sqlite"
    pending.append(path, {"id": "a", "created": "2026-01-01T00:00:00+00:00", "commit": None,
                          "branch": None, "quick": ["t.py::test_q"],
                          "results": [["t.py::test_s", "passed", 0.5, None, None, "gw0"]]})
    pending.path_of(path).open("a").write('{"id": "cut short\n[1, 2]\n')
    store, _ = HistoryStore.open(path, create=False)  # no database yet: made for the runs
    with store:
        assert [r["id"] for r in store.runs()] == ["a"]
        assert sorted((r.nodeid, r.duration_s) for r in store.rows()) == [
            ("t.py::test_q", store_mod.QUICK_S / 2), ("t.py::test_s", 0.5)]
    assert pending.path_of(path).read_text() == ""


def test_a_pending_file_past_its_bound_is_folded_by_the_run_that_grew_it(chaostester,
                                                                         monkeypatch):
    monkeypatch.setattr("pytest_poolchaos.history.pending.FOLD_BYTES", 1)
    scripted(chaostester, "")
    chaostester.run(HISTORY)
    assert (chaostester.path / "history.sqlite.pending").read_text() == ""
    assert rows(chaostester.path / "history.sqlite", "SELECT tests, failed FROM runs") == \
        [(2, 0)]


def test_the_history_names_a_run_by_its_journal_id(chaostester, monkeypatch):
    # `poolchaos report --run ID` and the history's runs then point at the same run.
    import json

    monkeypatch.setattr("pytest_poolchaos.history.session.QUICK_S", 60.0)  # parks the run
    scripted(chaostester, "")
    chaostester.run(HISTORY, "--poolchaos-journal=journal.jsonl")
    parked = json.loads((chaostester.path / "history.sqlite.pending").read_text())
    starts = [json.loads(line) for line in (chaostester.path / "journal.jsonl").read_text(
        ).splitlines() if '"run-start"' in line]
    assert [start["run"] for start in starts] == [parked["id"]]
