"""sanitize: the one redaction every output goes through, and what makes text encodable."""

from __future__ import annotations

import os
from typing import Any

import pytest

from pytest_poolchaos import sanitize
from pytest_poolchaos.report import files


def test_scrub_masks_and_escapes_every_text_and_keeps_the_rest():
    data = {"thread-\udce9": ["postgres://app:pw-S1@db/app", 3, None, True, 1.5],
            "nested": {"detail": "Bearer abcdefgh12345678", "n": 0}}
    cleaned = sanitize.scrub(data)
    assert cleaned == {"thread-\\udce9": ["postgres://app:***@db/app", 3, None, True, 1.5],
                       "nested": {"detail": "Bearer ***", "n": 0}}
    assert repr(cleaned).encode("utf-8")  # nothing left that UTF-8 cannot encode


def test_redact_args_masks_the_value_given_as_its_own_argument():
    args = ["--db-password", "pw-value-S2", "--api-token=tok-value-S3", "-k", "slow",
            "--auth-file", "--verbose"]
    assert sanitize.redact_args(args) == ["--db-password", "***", "--api-token=***", "-k",
                                          "slow", "--auth-file", "--verbose"]
    # and the values are masked wherever they show up later
    assert sanitize.redact_text("login with pw-value-S2 failed") == "login with *** failed"


def test_a_secret_set_and_removed_is_still_masked(monkeypatch):
    sanitize.watch_environ()
    try:
        assert type(os.environ) is not os._Environ
        monkeypatch.setenv("SHORT_LIVED_TOKEN", "short-lived-S4")
        monkeypatch.delenv("SHORT_LIVED_TOKEN")
        assert sanitize.redact_text("rejected short-lived-S4") == "rejected ***"
        # an ordinary variable is not remembered
        monkeypatch.setenv("PLAIN_SETTING", "plain-value-S5")
        monkeypatch.delenv("PLAIN_SETTING")
        assert sanitize.redact_text("plain-value-S5") == "plain-value-S5"
    finally:
        sanitize.unwatch_environ()


def test_a_secret_the_process_started_with_is_masked_once_removed():
    # There before the environment was watched, as if inherited: no write remembered it,
    # only the read when the watching starts.
    environ: Any = os.environ
    key = environ.encodekey("EARLY_API_TOKEN")
    environ._data[key] = environ.encodevalue("early-value-S8")
    sanitize.watch_environ()
    try:
        del os.environ["EARLY_API_TOKEN"]
        assert sanitize.redact_text("sent early-value-S8") == "sent ***"
    finally:
        sanitize.unwatch_environ()
        environ._data.pop(key, None)


def test_step_summary_is_appended_and_other_files_replaced(tmp_path, monkeypatch):
    summary, other = tmp_path / "summary.md", tmp_path / "other.md"
    summary.write_text("earlier step\n")
    other.write_text("old report\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    for path in (summary, other):
        (files.append_text if files.is_step_summary(path) else files.write_text)(path, "new\n")
    assert summary.read_text() == "earlier step\n\nnew\n"
    assert other.read_text() == "new\n"


def test_safe_text_of_a_huge_text_is_quick_and_masks_across_the_limit(monkeypatch):
    import time

    start = time.perf_counter()
    shown = sanitize.safe_text("x" * 2_000_000, 100)
    assert time.perf_counter() - start < 1.0  # redacting first was quadratic: minutes
    assert len(shown) == 100
    assert shown.endswith("…")
    monkeypatch.setenv("LIMIT_TOKEN", "secret-across-the-limit-S6")
    text = "y" * 90 + "secret-across-the-limit-S6" + "z" * 5000
    assert "secret-across" not in sanitize.safe_text(text, 100)


@pytest.mark.parametrize("text", ["-" * 50_000, "--auth" * 8_000, "KEY" * 15_000,
                                  "a-b" * 16_000, "password" + " " * 50_000],
                         ids=["dashes", "options", "capitals", "hyphenated", "spaces"])
def test_redaction_takes_linear_time(text):
    # Each of these took minutes with unbounded repeats (a long separator line, a serialized
    # blob); a linear pass over 50,000 characters takes milliseconds.
    import time

    start = time.perf_counter()
    sanitize.redact_text(text)
    assert time.perf_counter() - start < 2.0


def test_the_patterns_still_mask_what_they_are_for():
    text = ("--api-token=abcd1234 --password hunter22 API_TOKEN=xyzw1234 "
            "password: s3cr3t99 postgres://app:pgpass-S9@db.local/app")
    assert sanitize.redact_text(text) == (
        "--api-token=*** --password *** API_TOKEN=*** password: *** "
        "postgres://app:***@db.local/app")


def test_the_environment_is_read_again_after_any_write(monkeypatch):
    # Its secrets are read again only after a write. A write through os.environb is not
    # remembered as a secret (its key is bytes), so only that fresh read can mask it.
    if getattr(os, "environb", None) is None:
        pytest.skip("no os.environb on this platform")
    sanitize.watch_environ()
    try:
        assert sanitize.redact_text("bytes-value-S6") == "bytes-value-S6"
        monkeypatch.setitem(os.environb, b"LATE_BYTES_TOKEN", b"bytes-value-S6")
        assert sanitize.redact_text("sent bytes-value-S6") == "sent ***"
    finally:
        sanitize.unwatch_environ()
    # unwatched, writes are not counted: the environment is read every time
    monkeypatch.setitem(os.environb, b"UNWATCHED_BYTES_TOKEN", b"unwatched-S7")
    assert sanitize.redact_text("sent unwatched-S7") == "sent ***"
