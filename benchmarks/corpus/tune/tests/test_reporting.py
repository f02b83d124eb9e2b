from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from pathlib import Path
from unittest.mock import Mock

import pytest
from reporting import audit, format_amount, format_duration, format_timestamp
from reporting.export import (
    ExportConfig,
    export_deadline,
    format_table,
    load_rates,
    stream_rows,
    summary_line,
    write_report,
)


def test_format_duration_minutes():
    assert format_duration(125) == "2m05s"


def test_audit_line_sorts_fields():
    assert audit("login", user="ada", ip="10.0.0.1") == "login ip=10.0.0.1 user=ada"


def test_format_amount_negative():
    assert format_amount(-150) == "-1.50"


def test_config_from_dict_limits_rows():
    config = ExportConfig.from_dict({"max_rows": 50})
    assert config.max_rows == 50


def test_summary_line_for_nightly_report():
    report = {"title": "nightly", "rows": 1200, "elapsed": 845}
    assert summary_line(report) == "nightly: 1200 rows in 845 ms"


def test_table_pads_columns():
    assert format_table([["a", "b"]], width=3) == "a   | b  "


# pytest-dev/pytest-mock#287 and python/cpython#98362: a side_effect list shorter than the
# number of calls the code makes ends in StopIteration.
def test_stream_rows_reads_whole_export():
    reader = Mock()
    reader.read.side_effect = [b"id,name\n1,ada\n", b"2,grace\n"]
    assert stream_rows(reader) == [b"id,name", b"1,ada", b"2,grace"]


class FakeSettings:
    """Test double for the settings object; only what the tests set is filled in."""

    export_format = "csv"
    export_timeout = None


# A None default on a hand-written double reaches arithmetic.
def test_export_deadline_is_in_the_future():
    assert export_deadline(FakeSettings()) > time.monotonic()


# Timezone pollution (CESNET/libyang#2367 "call tzset after setenv TZ", als-apg/osprey#530):
# TZ is changed and tzset() called, and neither is undone.
def test_kathmandu_office_sees_local_time():
    os.environ["TZ"] = "<+0545>-5:45"
    time.tzset()
    assert format_timestamp(0) == "1970-01-01 05:45"


def test_export_timestamps_are_utc():
    assert format_timestamp(1_700_000_000) == "2023-11-14 22:13"


# Current-directory pollution: a test changes directory for its output and never changes back.
def test_report_is_written_to_working_directory(tmp_path):
    os.chdir(tmp_path)
    path = write_report("summary.txt", ["rows: 3"])
    assert Path("summary.txt").read_text() == "rows: 3\n"
    assert path.exists()


def test_rate_table_loads_from_fixtures():
    assert load_rates("fixtures/rates.json")["default"] == "100/s"


# An environment variable set for branding and never removed (nothing else reads it).
def test_brand_name_from_environment():
    os.environ["REPORTING_BRAND"] = "acme"
    assert os.environ["REPORTING_BRAND"] == "acme"


# A warnings filter silenced for the rest of the process.
def test_deprecated_format_is_quiet():
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.warn("old format", DeprecationWarning, stacklevel=1)


# A signal handler installed for a reload hook and not restored.
def test_reload_on_sigusr1():
    reloaded = []
    signal.signal(signal.SIGUSR1, lambda signum, frame: reloaded.append(signum))
    os.kill(os.getpid(), signal.SIGUSR1)
    deadline = time.monotonic() + 1
    while not reloaded and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reloaded == [signal.SIGUSR1]


# A background flusher thread started by the test and never stopped.
def test_metrics_flusher_runs():
    stop = threading.Event()
    flushed = []

    def flush() -> None:
        while not stop.wait(0.05):
            flushed.append(time.monotonic())

    threading.Thread(target=flush, name="metrics-flusher", daemon=True).start()
    time.sleep(0.12)
    assert flushed


@pytest.mark.parametrize(("seconds", "text"), [(5, "5s"), (60, "1m00s"), (61, "1m01s")])
def test_format_duration_table(seconds, text):
    assert format_duration(seconds) == text
