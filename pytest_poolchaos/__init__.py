"""pytest-poolchaos: diagnose flaky and failing concurrent tests."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .model import (
    Attempt,
    Category,
    Comparison,
    Diagnosis,
    Evidence,
    ExceptionRecord,
    Finding,
    Leak,
    LedgerEntry,
    Rule,
    Suggestion,
    TimeoutInfo,
    Verdict,
)

try:
    __version__ = version("pytest-poolchaos")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "Attempt",
    "Category",
    "Comparison",
    "Diagnosis",
    "Evidence",
    "ExceptionRecord",
    "Finding",
    "Leak",
    "LedgerEntry",
    "Rule",
    "Suggestion",
    "TimeoutInfo",
    "Verdict",
    "__version__",
]
