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

import sys
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
    from .probe import Change, Held, Probe

__all__ = [
    "Attempt",
    "Category",
    "Change",
    "Comparison",
    "Diagnosis",
    "Evidence",
    "ExceptionRecord",
    "Finding",
    "Held",
    "Leak",
    "LedgerEntry",
    "Probe",
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
    if name in ("Change", "Held", "Probe"):
        from . import probe

        return getattr(probe, name)
    if name in __all__:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _skip_assertion_rewriting() -> None:
    """Take this package off the list of modules pytest rewrites.

    pytest rewrites the asserts of every module of a plugin's distribution, so that helpers a
    plugin gives to tests fail with rich messages. This package gives none: its asserts narrow
    types. Rewriting costs every import a hash of the module's source, about a third of what
    the plugin adds to a one-test run. The marks live in a private set of pytest's import hook;
    where a pytest keeps them elsewhere this does nothing and the package is merely slower to
    import.
    """
    for finder in sys.meta_path:
        marked = getattr(finder, "_must_rewrite", None)
        if isinstance(marked, set) and __name__ in marked:
            marked.discard(__name__)
            cache = getattr(finder, "_marked_for_rewrite_cache", None)
            if isinstance(cache, dict):
                cache.clear()


_skip_assertion_rewriting()
