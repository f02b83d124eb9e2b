"""The history file: SQLite (stdlib), WAL, one short write transaction per recorded run.

A history file must never cost a user their run. Every failure to use it becomes a
``HistoryError`` with a one-line message; a file that is not a database (or a damaged one) is
moved aside and a new one started, the way pytest treats a broken cache file.

Tables: ``tests`` (one row per test key, the node id last seen for it), ``runs`` (one row per
run: when, which commit and branch, where it came from) and ``results`` (one row per test and
run). Runs are ordered by ``created`` (ISO 8601 UTC text), then by insertion, so runs imported
from old JUnit files fall into their place in time.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .keys import key_of
from .stats import FAILED, WINDOW, Past

__all__ = ["BUSY_TIMEOUT", "HistoryError", "HistoryStore", "Result", "Row", "RunInfo"]

#: Seconds to wait for another process's write to finish before giving up on this run.
BUSY_TIMEOUT = 2.0
#: Runs kept; older ones are dropped (with some slack, so pruning is rare).
KEEP_RUNS = 200
_PRUNE_SLACK = 20
_VERSION = 1
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26  # primary result codes (sqlite3 names them in 3.11+)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tests (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    nodeid TEXT NOT NULL
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
CREATE INDEX IF NOT EXISTS runs_created ON runs (created);
CREATE TABLE IF NOT EXISTS results (
    test INTEGER NOT NULL,
    run INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    category TEXT,
    verdict TEXT,
    duration_s REAL NOT NULL,
    worker TEXT,
    PRIMARY KEY (test, run)
) WITHOUT ROWID;
"""


class HistoryError(Exception):
    """The history file could not be used; the message is the one line users see."""


class CorruptHistory(HistoryError):
    """The file is not a SQLite database, or a damaged one."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: str
    created: str  # ISO 8601, UTC
    commit: str | None = None
    branch: str | None = None
    source: str = "pytest"  # or "junit:<file name>"


@dataclass(frozen=True, slots=True)
class Result:
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


@dataclass(frozen=True, slots=True)
class Row:
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
            raise HistoryError(f"no history file at {path}")
        try:
            return cls(path, _connect(path, wait, create)), None
        except CorruptHistory as error:
            aside = move_aside(path)
            note = (f"history file {path} was unreadable ({error}); moved it to {aside.name} "
                    f"and started a new one")
            return cls(path, _connect(path, wait, create)), note

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
            wanted = self._ids(keys)
            if not wanted:
                return {}
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (test INTEGER PRIMARY KEY)")
            self.db.execute("DELETE FROM wanted")
            self.db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)",
                                ((test,) for test in wanted.values()))
            keys_by_id = {test: key for key, test in wanted.items()}
            found: dict[str, tuple[list[Past], str | None, str | None]] = {}
            for test, created, outcome, duration, category in self.db.execute(_RECENT, (window,)):
                found.setdefault(keys_by_id[test], ([], None, None))[0].append(
                    Past(created, outcome, float(duration), category))
            for test, first, last in self.db.execute(_FAILED_SPAN):
                key = keys_by_id[test]
                if key in found:
                    found[key] = (found[key][0], first, last)
            return found

    def record(self, run: RunInfo, results: Sequence[Result]) -> bool:
        """Add one run in one transaction; False when a run with this id is already there."""
        with _errors(self.path, "write"):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                added = self._insert(run, results)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            return added

    def _insert(self, run: RunInfo, results: Sequence[Result]) -> bool:
        failed = sum(1 for r in results if r.outcome in FAILED)
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO runs (id, created, commit_sha, branch, source, tests, failed)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run.id, run.created, run.commit, run.branch, run.source, len(results), failed))
        if cursor.rowcount == 0:
            return False
        seq = cursor.lastrowid
        keyed = [(r.test_key, r) for r in results]
        ids = self._test_ids(keyed, canonical=run.source == "pytest")
        self.db.executemany(
            "INSERT OR REPLACE INTO results (test, run, outcome, category, verdict, duration_s,"
            " worker) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((ids[key], seq, r.outcome, r.category, r.verdict, float(r.duration_s), r.worker)
             for key, r in keyed))
        self._prune()
        return True

    def _test_ids(self, keyed: Sequence[tuple[str, Result]], canonical: bool) -> dict[str, int]:
        known = {key: (test, nodeid) for test, key, nodeid
                 in self.db.execute("SELECT id, key, nodeid FROM tests")}
        new = [(key, r.nodeid) for key, r in keyed if key not in known]
        self.db.executemany("INSERT OR IGNORE INTO tests (key, nodeid) VALUES (?, ?)", new)
        if canonical:  # a pytest run knows the real node id; an import only guessed it
            renamed = [(r.nodeid, key) for key, r in keyed
                       if key in known and known[key][1] != r.nodeid]
            self.db.executemany("UPDATE tests SET nodeid = ? WHERE key = ?", renamed)
        if new:
            return dict(self.db.execute("SELECT key, id FROM tests"))
        return {key: test for key, (test, _) in known.items()}

    def _prune(self) -> None:
        (count,) = self.db.execute("SELECT COUNT(*) FROM runs").fetchone()
        if count <= KEEP_RUNS + _PRUNE_SLACK:
            return
        self.db.execute("DELETE FROM runs WHERE seq IN (SELECT seq FROM runs ORDER BY created "
                        "DESC, seq DESC LIMIT -1 OFFSET ?)", (KEEP_RUNS,))
        self.db.execute("DELETE FROM results WHERE run NOT IN (SELECT seq FROM runs)")

    def _ids(self, keys: Iterable[str]) -> dict[str, int]:
        wanted = set(keys)
        return {key: test for key, test in self.db.execute("SELECT key, id FROM tests")
                if key in wanted}

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
            cursor = self.db.execute(
                "SELECT t.key, t.nodeid, runs.created, r.outcome, r.category, r.duration_s,"
                " runs.commit_sha FROM results r JOIN runs ON runs.seq = r.run"
                " JOIN tests t ON t.id = r.test WHERE runs.created >= ?"
                " ORDER BY t.key, runs.created, runs.seq", (since or "",))
            for row in cursor:
                yield Row(*row)


_RECENT = """
SELECT test, created, outcome, duration_s, category FROM (
    SELECT r.test, runs.created, r.outcome, r.duration_s, r.category,
           ROW_NUMBER() OVER (PARTITION BY r.test ORDER BY runs.created DESC, runs.seq DESC) AS n
    FROM results r JOIN wanted w ON w.test = r.test JOIN runs ON runs.seq = r.run
) WHERE n <= ? ORDER BY test, n
"""
_FAILED_SPAN = """
SELECT r.test, MIN(runs.created), MAX(runs.created)
FROM results r JOIN wanted w ON w.test = r.test JOIN runs ON runs.seq = r.run
WHERE r.outcome IN ('failed', 'error') GROUP BY r.test
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
        if version > _VERSION:
            raise HistoryError(f"{path} was written by a newer pytest-poolchaos "
                               f"(history format {version}); not touching it")
    with _errors(path, "write"):
        db.execute("PRAGMA journal_mode = WAL")  # persistent: set once, when created
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
