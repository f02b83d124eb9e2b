"""A small double-entry ledger on SQLite, with a background writer and an audit trail."""

from __future__ import annotations

import concurrent.futures as cf
import queue
import sqlite3
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

# Amounts are stored as their decimal text so nothing is lost to binary floating point.
sqlite3.register_adapter(Decimal, str)

#: Currency shown when an account has none of its own.
DEFAULT_CURRENCY = "USD"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, balance INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (entry TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS prices (item TEXT PRIMARY KEY, amount TEXT NOT NULL);
"""


def connect(path: Path, timeout: float = 0.2, **kwargs: Any) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=timeout, **kwargs)
    conn.executescript(_SCHEMA)
    return conn


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        self.pending: list[tuple[str, int]] = []
        self._writer = cf.ThreadPoolExecutor(1, thread_name_prefix="ledger-writer")
        self._audit_q: queue.Queue[tuple[str, threading.Event, list[BaseException]] | None] = (
            queue.Queue())
        self._auditor = threading.Thread(target=self._audit_loop, name="ledger-audit",
                                         daemon=True)
        self._auditor.start()

    # -- accounts ------------------------------------------------------------------------------

    def open_account(self, name: str, balance: int = 0) -> None:
        with self.conn:
            self.conn.execute("INSERT INTO accounts VALUES (?, ?)", (name, balance))

    def balance(self, name: str) -> int:
        row = self.conn.execute("SELECT balance FROM accounts WHERE name = ?",
                                (name,)).fetchone()
        return int(row[0])

    def deposit(self, name: str, amount: int,
                after_read: Callable[[], None] | None = None) -> None:
        """Add to a balance through a connection of the calling thread's own."""
        conn = connect(self.path, timeout=2)
        try:
            (current,) = conn.execute("SELECT balance FROM accounts WHERE name = ?",
                                      (name,)).fetchone()
            if after_read is not None:
                after_read()
            with conn:
                conn.execute("UPDATE accounts SET balance = ? WHERE name = ?",
                             (current + amount, name))
        finally:
            conn.close()

    # -- background flush ----------------------------------------------------------------------

    def record(self, name: str, amount: int) -> None:
        self.pending.append((name, amount))

    def _flush(self) -> int:
        with self.conn:
            for name, amount in self.pending:
                self.conn.execute("UPDATE accounts SET balance = balance + ? WHERE name = ?",
                                  (amount, name))
        flushed, self.pending = len(self.pending), []
        return flushed

    def sync(self) -> int:
        """Flush recorded entries on the writer thread and wait for it."""
        return self._writer.submit(self._flush).result(timeout=2)

    # -- transfers with an audit trail ---------------------------------------------------------

    def _audit_loop(self) -> None:
        conn = connect(self.path)
        try:
            while (item := self._audit_q.get()) is not None:
                entry, done, errors = item
                try:
                    with conn:
                        conn.execute("INSERT INTO audit VALUES (?)", (entry,))
                except sqlite3.Error as error:
                    errors.append(error)
                done.set()
        finally:
            conn.close()

    def _audit(self, entry: str) -> None:
        done, errors = threading.Event(), []
        self._audit_q.put((entry, done, errors))
        done.wait(2)
        if errors:
            raise errors[0]

    def transfer(self, source: str, target: str, amount: int) -> None:
        with self.conn:
            self.conn.execute("UPDATE accounts SET balance = balance - ? WHERE name = ?",
                              (amount, source))
            self.conn.execute("UPDATE accounts SET balance = balance + ? WHERE name = ?",
                              (amount, target))
            # The audit row must exist before the transfer is committed.
            self._audit(f"{source}->{target}:{amount}")

    # -- prices --------------------------------------------------------------------------------

    def set_price(self, item: str, amount: Decimal) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO prices VALUES (?, ?)", (item, amount))

    def price(self, item: str) -> Decimal:
        (text,) = self.conn.execute("SELECT amount FROM prices WHERE item = ?",
                                    (item,)).fetchone()
        return Decimal(text)

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._audit_q.put(None)
        self._auditor.join(2)
        self.conn.close()


def invoice_total(lines: list[Decimal]) -> Decimal:
    return sum(lines, Decimal(0))


def label(amount: Decimal, currency: str | None = None) -> str:
    return f"{currency or DEFAULT_CURRENCY} {amount:.2f}"


def fee_total(fees: list[float]) -> float:
    return sum(fees)
