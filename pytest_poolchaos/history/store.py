"""The history file: SQLite (stdlib), WAL, one short write transaction per recorded run.

A history file must never cost a user their run. Every failure to use it becomes a
``HistoryError`` with a one-line message; a file that is not a database (or a damaged one) is
moved aside and a new one started, the way pytest treats a broken cache file.

Tables: ``tests`` (one row per test key: the node id last seen for it, its first and last
recorded failure), ``runs`` (one row per run: when, which commit and branch, where it came
from), ``results`` (one row per run and test, for every result worth a row: one that did not
pass, or a pass that took ``QUICK_S`` or more) and ``passes`` (one row per run: the ids of the
tests that passed quicker than that, packed). Most tests of most runs pass quickly; a row each
cost a session end about 10 µs per test, the packed list a fraction of that. A quick pass reads
back as a pass of ``QUICK_S / 2``: a test's slow-down is measured against a baseline at least
that fine. Runs are ordered by ``created`` (ISO 8601 UTC text), then by insertion, so runs
imported from old JUnit files fall into their place in time.

``results`` is keyed run first, so a session end appends at the end of the table (keyed test
first, every run rewrote pages all over a growing file: 93 ms instead of 12 ms for 2,000 tests
once 100 runs were kept); one test's recent runs are then found by walking the runs newest
first and looking each (run, test) up, which stops after the window is full.
"""

from __future__ import annotations

import array
import bisect
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from . import QUICK_S, pending
from .keys import key_of
from .stats import FAILED, WINDOW, Past

__all__ = ["BUSY_TIMEOUT", "HistoryError", "HistoryStore", "Result", "Row", "RunInfo"]

#: Seconds to wait for another process's write to finish before giving up on this run.
BUSY_TIMEOUT = 2.0
#: Runs kept; older ones are dropped (with some slack, so pruning is rare).
KEEP_RUNS = 200
_PRUNE_SLACK = 20
_VERSION = 2  # 2 added ``passes``; a version 1 file gains it when opened
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26  # primary result codes (sqlite3 names them in 3.11+)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tests (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    nodeid TEXT NOT NULL,
    first_failed TEXT,
    last_failed TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    commit_sha TEXT,
    branch TEXT,
    source TEXT NOT NULL,
    tests INTEGER NOT NULL,
    failed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created, seq);
CREATE TABLE IF NOT EXISTS results (
    run INTEGER NOT NULL,
    test INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    category TEXT,
    verdict TEXT,
    duration_s REAL NOT NULL,
    worker TEXT,
    PRIMARY KEY (run, test)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS passes (
    run INTEGER PRIMARY KEY,
    tests BLOB NOT NULL
);
"""


class HistoryError(Exception):
    """The history file could not be used; the message is the one line users see."""


class CorruptHistory(HistoryError):
    """The file is not a SQLite database, or a damaged one."""


class RunInfo(NamedTuple):
    """One run: its id, when, what it tested and where it came from."""

    id: str
    created: str  # ISO 8601, UTC
    commit: str | None = None
    branch: str | None = None
    source: str = "pytest"  # or "junit:<file name>"


class Result(NamedTuple):
    """One test of one run (a tuple: a session end makes thousands of them)."""

    nodeid: str
    outcome: str
    duration_s: float
    category: str | None = None
    verdict: str | None = None
    worker: str | None = None
    key: str = ""  # derived from nodeid when empty

    @property
    def test_key(self) -> str:
        return self.key or key_of(self.nodeid)


class Row(NamedTuple):
    """One result with its run, as the ``poolchaos history`` listing reads them."""

    key: str
    nodeid: str
    created: str
    outcome: str
    category: str | None
    duration_s: float
    commit: str | None


class HistoryStore:
    """An open history file. Use ``HistoryStore.open``; close it (or use ``with``)."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self.db = connection

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = True, timeout: float | None = None
             ) -> tuple[HistoryStore, str | None]:
        """The store and, when the old file was broken and moved aside, a line saying so."""
        wait = BUSY_TIMEOUT if timeout is None else timeout
        if not create and not path.is_file():
            if not pending.exists(path):
                raise HistoryError(f"no history file at {path}")
            create = True  # only green runs so far: they are all waiting
        note = None
        try:
            store = cls(path, _connect(path, wait, create))
        except CorruptHistory as error:
            aside = move_aside(path)
            note = (f"history file {path} was unreadable ({error}); moved it to {aside.name} "
                    f"and started a new one")
            store = cls(path, _connect(path, wait, create))
        try:
            store.fold()
        except BaseException:
            store.close()
            raise
        return store, note

    def fold(self) -> None:
        """Move the runs waiting in the pending file into the database. A file that cannot
        be written leaves them waiting: what is stored can still be read, and writing this
        run fails with the same error."""
        try:
            with pending.claimed(self.path) as runs:
                for run in runs:
                    try:
                        results = [Result(*result) for result in run.get("results", ())]
                    except TypeError:  # not a line this version wrote: nothing to keep
                        continue
                    self.record(RunInfo(run["id"], run["created"], run.get("commit"),
                                        run.get("branch")), results, run.get("quick", ()))
        except CorruptHistory:
            raise
        except (HistoryError, OSError):
            pass

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- this run -----------------------------------------------------------------------------

    def past(self, keys: Iterable[str], window: int = WINDOW
             ) -> dict[str, tuple[list[Past], str | None, str | None]]:
        """Per key: its last ``window`` runs (newest first), first and last failure dates."""
        with _errors(self.path, "read"):
            wanted = set(keys)
            tests = [row for row in self.db.execute(
                "SELECT key, id, first_failed, last_failed FROM tests") if row[0] in wanted]
            if not tests:
                return {}
            runs = list(self.db.execute(
                "SELECT seq, created FROM runs ORDER BY created DESC, seq DESC"))
            quick = _Passes(self.db)
            found: dict[str, tuple[list[Past], str | None, str | None]] = {}
            for key, test, first, last in tests:
                rows = {run: Past(*rest) for run, *rest in self.db.execute(_ROWS, (test,))}
                past: list[Past] = []
                for seq, created in runs:
                    if len(past) >= window:
                        break
                    if seq in rows:
                        past.append(rows[seq])
                    elif quick.has(seq, test):
                        past.append(Past(created, "passed", QUICK_S / 2, None))
                if past:
                    found[key] = (past, first, last)
            return found

    def record(self, run: RunInfo, results: Sequence[Result],
               quick: Sequence[str] = ()) -> bool:
        """Add one run in one transaction; False when a run with this id is already there.

        ``quick`` are the node ids of tests that passed quicker than ``QUICK_S`` and carry
        nothing else worth a row (a session end knows them apart without a Result each).
        """
        quick = [*quick, *(r.nodeid for r in results if _quick(r))]
        results = [r for r in results if not _quick(r)]
        with _errors(self.path, "write"):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                added = self._insert(run, results, quick)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            return added

    def _insert(self, run: RunInfo, results: Sequence[Result], quick: Sequence[str]) -> bool:
        failed = [r for r in results if r.outcome in FAILED]
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO runs (id, created, commit_sha, branch, source, tests, failed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run.id, run.created, run.commit, run.branch, run.source,
             len(results) + len(quick), len(failed)))
        if cursor.rowcount == 0:
            return False
        seq = cursor.lastrowid
        ids = self._test_ids([r.nodeid for r in results] + list(quick),
                             [r.key for r in results] + [""] * len(quick),
                             canonical=run.source == "pytest")
        passes = array.array("I", sorted(ids[len(results):]))
        if passes:
            self.db.execute("INSERT OR REPLACE INTO passes (run, tests) VALUES (?, ?)",
                            (seq, _packed(passes)))
        # in test id order: the rows land at the end of the table, one page after the other
        rows = sorted(zip(ids, results, strict=False), key=lambda pair: pair[0])
        self.db.executemany(
            "INSERT OR REPLACE INTO results (run, test, outcome, category, verdict, duration_s,"
            " worker) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((seq, test, r.outcome, r.category, r.verdict, float(r.duration_s), r.worker)
             for test, r in rows))
        # named, not numbered (?1): Python 3.12 warns of numbered ones bound by position
        self.db.executemany(_FAILED_DATES, ({"day": run.created, "test": test}
                                            for test, r in rows if r.outcome in FAILED))
        self._prune()
        return True

    def _test_ids(self, nodeids: Sequence[str], keys: Sequence[str], canonical: bool
                  ) -> list[int]:
        """Each test's id (by node id, and its key where one is given), adding the tests seen
        for the first time.

        A pytest run (``canonical``) is matched by node id, which spares deriving keys for the
        tests already known; a test known only from a JUnit import (a guessed node id) is
        found by its key and gets its real node id.
        """
        by_nodeid: dict[str, int] = (dict(self.db.execute("SELECT nodeid, id FROM tests"))
                                     if canonical else {})
        ids: list[int | None] = [by_nodeid.get(nodeid) for nodeid in nodeids]
        late = [i for i, test in enumerate(ids) if test is None]
        if not late:
            return ids  # type: ignore[return-value]  # every one was found
        late_keys = {i: keys[i] or key_of(nodeids[i]) for i in late}
        by_key: dict[str, int] = dict(self.db.execute("SELECT key, id FROM tests"))
        new: dict[str, str] = {}
        renamed: list[tuple[str, int]] = []
        for i, key in late_keys.items():
            if key in by_key:
                ids[i] = by_key[key]
                if canonical:
                    renamed.append((nodeids[i], by_key[key]))
            else:
                new.setdefault(key, nodeids[i])
        self.db.executemany("UPDATE tests SET nodeid = ? WHERE id = ?", renamed)
        self.db.executemany("INSERT INTO tests (key, nodeid) VALUES (?, ?)", new.items())
        if new:
            by_key = dict(self.db.execute("SELECT key, id FROM tests"))
            for i, key in late_keys.items():
                ids[i] = by_key[key]
        found = [test for test in ids if test is not None]
        assert len(found) == len(nodeids), "a result without a test row"
        return found

    def _prune(self) -> None:
        (count,) = self.db.execute("SELECT COUNT(*) FROM runs").fetchone()
        if count <= KEEP_RUNS + _PRUNE_SLACK:
            return
        # A test's first and last failure stay in ``tests``: still true, just older.
        old = list(self.db.execute("SELECT seq FROM runs ORDER BY created DESC, seq DESC "
                                   "LIMIT -1 OFFSET ?", (KEEP_RUNS,)))
        self.db.executemany("DELETE FROM results WHERE run = ?", old)  # a key range each
        self.db.executemany("DELETE FROM passes WHERE run = ?", old)
        self.db.executemany("DELETE FROM runs WHERE seq = ?", old)

    # -- the listing ----------------------------------------------------------------------------

    def runs(self, since: str | None = None) -> list[dict[str, Any]]:
        with _errors(self.path, "read"):
            cursor = self.db.execute(
                "SELECT id, created, commit_sha, branch, source, tests, failed FROM runs"
                " WHERE created >= ? ORDER BY created, seq", (since or "",))
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor]

    def rows(self, since: str | None = None) -> Iterator[Row]:
        """Every result since ``since``, grouped by test, oldest run first."""
        with _errors(self.path, "read"):
            since = since or ""
            found = [(Row(*row), seq) for *row, seq in self.db.execute(
                "SELECT t.key, t.nodeid, runs.created, r.outcome, r.category, r.duration_s,"
                " runs.commit_sha, runs.seq FROM results r JOIN runs ON runs.seq = r.run"
                " JOIN tests t ON t.id = r.test WHERE runs.created >= ?", (since,))]
            tests = {test: (key, nodeid) for test, key, nodeid in self.db.execute(
                "SELECT id, key, nodeid FROM tests")}
            for seq, created, commit, blob in self.db.execute(
                    "SELECT runs.seq, runs.created, runs.commit_sha, p.tests FROM passes p"
                    " JOIN runs ON runs.seq = p.run WHERE runs.created >= ?", (since,)):
                for test in _unpacked(blob):
                    if test in tests:
                        key, nodeid = tests[test]
                        found.append((Row(key, nodeid, created, "passed", None, QUICK_S / 2,
                                          commit), seq))
            found.sort(key=lambda pair: (pair[0].key, pair[0].created, pair[1]))
            for row, _ in found:
                yield row


_ROWS = """
SELECT r.run, runs.created, r.outcome, r.duration_s, r.category
FROM results r JOIN runs ON runs.seq = r.run WHERE r.test = ?
"""


def _quick(result: Result) -> bool:
    return (result.outcome == "passed" and float(result.duration_s) < QUICK_S
            and result.category is None and result.verdict is None)


def _packed(ids: array.array[int]) -> bytes:
    if sys.byteorder != "little":  # the file may move between machines
        ids.byteswap()
    return ids.tobytes()


def _unpacked(blob: bytes) -> array.array[int]:
    ids = array.array("I")
    ids.frombytes(blob)
    if sys.byteorder != "little":
        ids.byteswap()
    return ids


class _Passes:
    """The quick passes of each run, unpacked once per run asked about."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.cache: dict[int, array.array[int]] = {}

    def has(self, run: int, test: int) -> bool:
        ids = self.cache.get(run)
        if ids is None:
            row = self.db.execute("SELECT tests FROM passes WHERE run = ?", (run,)).fetchone()
            ids = self.cache[run] = _unpacked(row[0]) if row else array.array("I")
        index = bisect.bisect_left(ids, test)
        return index < len(ids) and ids[index] == test
_FAILED_DATES = """
UPDATE tests SET
    first_failed = CASE WHEN first_failed IS NULL OR :day < first_failed THEN :day
                   ELSE first_failed END,
    last_failed = CASE WHEN last_failed IS NULL OR :day > last_failed THEN :day
                  ELSE last_failed END
WHERE id = :test
"""


def _connect(path: Path, timeout: float, create: bool) -> sqlite3.Connection:
    try:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise HistoryError(f"cannot create the folder of {path} ({error.strerror})") from None
    with _errors(path, "open"):
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        _prepare(db, path)
    except BaseException:
        db.close()
        raise
    return db


def _prepare(db: sqlite3.Connection, path: Path) -> None:
    with _errors(path, "open"):
        (version,) = db.execute("PRAGMA user_version").fetchone()  # reads the header: a
        db.execute("PRAGMA temp_store = MEMORY")                    # non-database fails here
        # WAL with NORMAL survives a crashed process; only a power cut may lose the last run
        db.execute("PRAGMA synchronous = NORMAL")
        if version == _VERSION:
            return
        if 0 < version < _VERSION:  # an older file: add what is new, keep every row
            _upgrade(db, path)
            return
        if version > _VERSION:
            raise HistoryError(f"{path} was written by a newer pytest-poolchaos "
                               f"(history format {version}); not touching it")
    with _errors(path, "write"):
        db.execute("PRAGMA journal_mode = WAL")  # persistent: set once, when created
    _upgrade(db, path)


def _upgrade(db: sqlite3.Connection, path: Path) -> None:
    # The schema is all CREATE ... IF NOT EXISTS: a new file and an older one get the same.
    with _errors(path, "write"):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


class _errors:
    """Turn sqlite3's exceptions into one-line HistoryErrors (a context manager)."""

    def __init__(self, path: Path, doing: str) -> None:
        self.path = path
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: object) -> None:
        if error is None or not isinstance(error, sqlite3.Error):
            return
        raise _convert(self.path, self.doing, error) from None


def _convert(path: Path, doing: str, error: sqlite3.Error) -> HistoryError:
    text = str(error)
    if _is_corrupt(error):
        return CorruptHistory(text)
    if "locked" in text or "busy" in text:
        return HistoryError(f"{path} is locked by another process ({text})")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return HistoryError(f"cannot {doing} {path} ({text})")
    return HistoryError(f"cannot {doing} {path} ({type(error).__name__}: {text})")


def _is_corrupt(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)  # Python 3.11+
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(error)
    return "not a database" in text or "malformed" in text


def move_aside(path: Path) -> Path:
    """Rename a broken file (and its WAL files) next to itself; the next open starts anew."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.broken-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.replace(Path(f"{aside}{suffix}"))
    return aside
