"""The secret patterns of ``sanitize.redact_text``: what they mask, what they leave alone."""

from __future__ import annotations

import pytest

from pytest_poolchaos.sanitize import MASK, is_secret, redact_text


@pytest.mark.parametrize(("text", "secret"), [
    ("postgres://app:hunter2x@db.internal:5432/orders", "hunter2x"),
    ("--api-token=abcdef123", "abcdef123"),
    ("--password  s3cretvalue", "s3cretvalue"),
    ("API_TOKEN=zzzz9999 pytest", "zzzz9999"),
    ('{"client_secret": "cs-4242-xyz"}', "cs-4242-xyz"),
    ("Authorization: Bearer abc.def.ghi-jkl", "abc.def.ghi-jkl"),
    ("key AKIAABCDEFGHIJKLMNOP in the log", "AKIAABCDEFGHIJKLMNOP"),
    ("ghp_" + "a" * 36, "a" * 36),
    ("eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.SflKxwRJSMeKKF2QT4f", "SflKxwRJSMeKKF2QT4f"),
])
def test_each_secret_shape_is_masked(text, secret):
    redacted = redact_text(text, environ={})
    assert secret not in redacted
    assert MASK in redacted


@pytest.mark.parametrize("text", [
    "tests/test_pool.py::test_submit[4] -n 2 --timeout=30",
    "https://example.com/path?q=1",
    "assert 5 >= 10",
    "monkey keys of the map",
])
def test_ordinary_text_is_left_alone(text):
    assert redact_text(text, environ={}) == text


@pytest.mark.parametrize("shape", ["x", "X", "a.", "a://", "--", "--a", "A_", "Bearer "])
def test_long_values_of_every_shape_are_searched_once(shape):
    # Unbounded repeats made these quadratic: 300 kB took minutes (pytest-timeout ends it).
    text = shape * (300_000 // len(shape))
    assert len(redact_text(text, environ={})) <= len(text)


@pytest.mark.parametrize(("name", "secret"), [
    ("GITHUB_TOKEN", True), ("db_password", True), ("AWS_SECRET_ACCESS_KEY", True),
    ("SENTRY_DSN", True), ("HTTP_AUTHORIZATION", True), ("PATH", False), ("HOME", False),
    ("POOL_MODE", False),
])
def test_secret_names(name, secret):
    assert is_secret(name) is secret
