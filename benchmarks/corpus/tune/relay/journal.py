"""The relay's delivery journal: one SQLite file, one connection per thread."""

from __future__ import annotations

import queue
import sqlite3
import threading
import time


def connect(path: str, timeout: float = 5.0) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
    conn.execute("CREATE TABLE IF NOT EXISTS sent (id TEXT)")
    conn.commit()
    return conn


def bulk_import(path: str, ids: list[str], started: threading.Event) -> None:
    """Imports a backlog in one transaction; each row is read from a slow archive."""
    conn = connect(path)
    try:
        with conn:
            for index, ident in enumerate(ids):
                conn.execute("INSERT INTO sent VALUES (?)", (ident,))
                if index == 0:
                    started.set()
                time.sleep(0.1)  # the archive read
    finally:
        conn.close()


class Recorder:
    """Records deliveries; a checker thread confirms each one on its own connection."""

    def __init__(self, path: str) -> None:
        self.conn = connect(path, timeout=0.2)
        self._checks: queue.Queue[tuple[str, threading.Event, list[Exception]] | None] = \
            queue.Queue()
        self._checker = threading.Thread(target=self._check_loop, args=(path,),
                                         name="delivery-check", daemon=True)
        self._checker.start()

    def _check_loop(self, path: str) -> None:
        conn = connect(path, timeout=0.2)
        while (item := self._checks.get()) is not None:
            ident, done, errors = item
            try:
                with conn:
                    conn.execute("INSERT INTO sent VALUES (?)", (ident + ":checked",))
            except sqlite3.Error as error:
                errors.append(error)
            done.set()
        conn.close()

    def record(self, ident: str) -> None:
        with self.conn:
            self.conn.execute("INSERT INTO sent VALUES (?)", (ident,))
            # the check must be on disk before the delivery is committed
            done, errors = threading.Event(), []
            self._checks.put((ident, done, errors))
            done.wait(2)
            if errors:
                raise errors[0]

    def close(self) -> None:
        self._checks.put(None)
        self._checker.join(2)
        self.conn.close()
