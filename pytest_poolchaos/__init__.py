"""pytest-poolchaos: diagnose flaky and failing concurrent tests.

The public names load on first use, so importing a submodule (the diagnostic subprocesses'
plugin, the console script) costs next to nothing.

Layout, by where the code runs:

* ``worker/``: wherever tests run (a serial run or an xdist worker), the per-test path;
* ``controller/``: where reports are made (a serial run or the xdist controller), the
  session path, with ``diagnose/`` (reruns, polluter search) and ``report/`` (terminal, JSON,
  Markdown, annotations) after the session;
* ``classify/``: the rules and the one decision, pure functions of the model, used by both;
* ``model.py`` (values and their wire shape), ``settings.py``/``options.py``, ``sanitize.py``,
  ``guard.py``, ``journal.py``, ``timeouts.py``: what every role stands on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("pytest-poolchaos")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0.0.0"
    if name in __all__:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
