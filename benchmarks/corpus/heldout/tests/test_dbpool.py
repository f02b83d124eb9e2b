from __future__ import annotations

import sqlite3

import pytest
from dbpool import DBPool, pages
from dbpool.pool import shared_connection


@pytest.fixture
def db(tmp_path):
    pool = DBPool(str(tmp_path / "app.db"), size=2, busy_timeout=0.1)
    pool.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT)")
    yield pool
    pool.close()


def test_insert_and_select(db):
    db.execute("INSERT INTO events (name) VALUES (?)", ("login",))
    assert db.execute("SELECT name FROM events") == [("login",)]


def test_pages_for_exact_multiple():
    assert pages(40, 20) == 2


def test_pages_for_partial_last_page():
    assert pages(45, 20) == 3


# python docs for sqlite3 "database is locked" and the busy timeout: a writer holds the lock
# longer than the other connection's busy timeout.
def test_insert_while_report_transaction_open(db):
    report = db.acquire()
    report.execute("BEGIN IMMEDIATE")
    report.execute("INSERT INTO events (name) VALUES ('report-start')")
    try:
        db.execute("INSERT INTO events (name) VALUES (?)", ("signup",))
    finally:
        report.execute("ROLLBACK")
        db.release(report)


# sqlite3's check_same_thread: a connection created on one thread used from another (the
# pool hands its caller's connections to a worker thread).
def test_vacuum_runs_in_background(db):
    assert db.execute_later("VACUUM").result(timeout=2) == []


# "Cannot operate on a closed database": a statement issued after the pool shut down.
def test_audit_write_after_shutdown(db):
    db.execute("INSERT INTO events (name) VALUES ('before')")
    db.close()
    db.execute("INSERT INTO events (name) VALUES ('audit')")


# A connection the module caches for the life of the process.
def test_shared_connection_is_reused(tmp_path):
    path = str(tmp_path / "cache.db")
    assert shared_connection(path) is shared_connection(path)


def test_rows_come_back_in_insert_order(db):
    for name in ("a", "b", "c"):
        db.execute("INSERT INTO events (name) VALUES (?)", (name,))
    assert [row[0] for row in db.execute("SELECT name FROM events ORDER BY id")] == ["a", "b", "c"]


def test_connection_rejects_bad_sql(db):
    with pytest.raises(sqlite3.OperationalError):
        db.execute("SELEC 1")
