from __future__ import annotations

import decimal
import locale
import logging
import threading
import time
from decimal import Decimal
from unittest.mock import MagicMock

import pytest
from metrics import (
    Counter,
    Exporter,
    Histogram,
    RingBuffer,
    cli,
    core,
    format_value,
    plugins,
    sort_series,
    top,
)
from metrics.billing import bill
from metrics.export import export_csv


def test_counter_counts():
    counter = Counter("requests")
    for _ in range(3):
        counter.inc()
    assert counter.value == 3


def test_ring_buffer_keeps_newest():
    ring = RingBuffer(2)
    for item in (1, 2, 3):
        ring.append(item)
    assert ring.items == [2, 3]


def test_format_value_two_decimals():
    assert format_value(3.14159) == "3.14"


# Eck et al. FSE 2019 (order of asynchronous events): the first periodic export is expected to
# contain the final total while the producer is still counting.
def test_first_export_has_the_full_count():
    counter = Counter("events")
    exporter = Exporter(counter, interval=0.01)
    exporter.start()

    def produce() -> None:
        for _ in range(400):
            counter.inc()
            time.sleep(0.0002)

    producer = threading.Thread(target=produce)
    producer.start()
    producer.join(5)
    time.sleep(0.03)
    exporter.stop()
    assert exporter.snapshots[0] == 400


# "list modified during sort": a collector thread appends points while the series is sorted in
# place on another thread.
def test_sort_series_while_collecting():
    points = [(float(i % 997), float(i)) for i in range(200_000)]
    stop = threading.Event()
    appended = threading.Event()

    def collector() -> None:
        while not stop.is_set():
            points.append((time.monotonic(), 1.0))
            appended.set()
            time.sleep(0.0001)

    thread = threading.Thread(target=collector)
    thread.start()
    appended.wait(2)
    try:
        sort_series(points)
    finally:
        stop.set()
        thread.join(2)
    assert points[0][0] == 0.0


# apache/paimon#8942 and jbaldwin/libcoro#207: increments from two threads, one lost when both
# read before either writes (only when the threads overlap).
def test_parallel_increments_are_counted(contended):
    counter = Counter("logins")
    if contended:
        both_read = threading.Barrier(2, timeout=2)
        counter.listeners.append(lambda current: both_read.wait())
    first, second = threading.Thread(target=counter.inc), threading.Thread(target=counter.inc)
    first.start()
    if not contended:
        first.join(2)
    second.start()
    first.join(2)
    second.join(2)
    assert counter.value == 2


# python/cpython#83759 family (MagicMock comparison): samples taken from a mock source.
def test_top_samples_from_source():
    source = MagicMock()
    samples = [source.read(), source.read(), source.read()]
    assert len(top(samples, 2)) == 2


# A MagicMock reaches string formatting with a format spec.
def test_gauge_value_is_formatted():
    gauge = MagicMock(name="cpu_gauge")
    assert format_value(gauge.current()) == "0.00"


def test_median_interpolates():
    histogram = Histogram()
    for value in range(1, 11):
        histogram.observe(float(value))
    assert histogram.percentile(50) == pytest.approx(5.5)


# Synaptic-Labs-AI/PACT-Plugin#1349 family: a discovered plugin directory shadows a project
# package of the same name for every later import.
def test_third_party_plugins_are_found(tmp_path):
    vendor = tmp_path / "vendor" / "metrics_plugins"
    vendor.mkdir(parents=True)
    (vendor / "__init__.py").write_text("VENDOR = 'acme'\n")
    assert plugins.discover(tmp_path / "vendor").VENDOR == "acme"


def test_statsd_line_format():
    from metrics_plugins import statsd

    assert statsd.format_line("hits", 3) == "hits:3|c"


# Locale pollution (arangodb/arangodb#21317, civicrm/civicrm-core#25276): LC_CTYPE changed for a
# legacy-terminal test and not restored; later writes use its encoding.
def test_legacy_terminal_encoding():
    locale.setlocale(locale.LC_CTYPE, "C")
    assert locale.getpreferredencoding(False) == "ANSI_X3.4-1968"


def test_export_csv_with_accented_names(tmp_path):
    path = export_csv(tmp_path / "usage.csv", [("café_visits", 3.0)])
    assert path.read_text(encoding="utf-8") == "café_visits,3.0\n"


# Global arithmetic context changed by one test (the decimal analogue of the module-global
# pollution in iPFlakies).
def test_rate_card_rounds_to_four_digits():
    decimal.getcontext().prec = 4
    assert Decimal("1") / Decimal("3") == Decimal("0.3333")


def test_bill_is_exact():
    assert bill(Decimal("1234.5"), Decimal("0.0125")) == Decimal("15.43125")


# pytest-dev/pytest#5743 and canonical/ubuntu-pro-client#594: a root handler bound to the stream
# capsys captured; later writes to the closed stream print "Logging error" on stderr.
def test_cli_verbose_flag(capsys):
    assert cli.main(["--verbose"]) == 0
    assert "verbose output on" in capsys.readouterr().out


def test_cli_report_writes_nothing_to_stderr(capsys):
    assert cli.main([]) == 0
    captured = capsys.readouterr()
    assert captured.out == "requests 3\n"
    assert captured.err == ""


# A named logger disabled by one test (to quiet a load test) and left disabled.
def test_load_test_runs_quietly():
    logging.getLogger("metrics").disabled = True
    for value in range(100):
        core.emit("load", value)


def test_emit_logs_the_metric(caplog):
    core.emit("requests", 3)
    assert "metric requests=3" in caplog.text


# logging.disable() is process-wide and outlives the test that called it.
def test_benchmark_mode_disables_logging():
    logging.disable(logging.INFO)
    assert not logging.getLogger("metrics.cli").isEnabledFor(logging.INFO)


def test_cli_logs_progress(caplog):
    cli.main([])
    assert "building report" in caplog.text
