"""The test's workers as they were when its assert failed, before its ``finally:`` ran.

Evidence is read after the call phase, when a ``finally:`` block has released the thread the
assert waited for, or joined the one it counted on: a thread busy at the failure looks long
done. pytest's rewritten asserts format their message through one helper of
``_pytest.assertion.rewrite`` right before raising, inside the test's own frame; wrapping that
helper gives the moment of failure for the cost of one call per failed assert, and nothing
on a passing one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the model loads on the first failure, never on a green run
    from ..model import Worker

_HELPER = "_format_explanation"


class FailureMoment:
    """Installed for the session; ``take`` reads the workers when a rewritten assert fails."""

    def __init__(self, read: Callable[[], tuple[Worker, ...]]) -> None:
        self._read = read
        self._original: Any = None
        #: (the AssertionError's message, the workers then), for the last failed assert
        self.last: tuple[str, tuple[Worker, ...]] | None = None

    def install(self) -> None:
        module = sys.modules.get("_pytest.assertion.rewrite")
        original = getattr(module, _HELPER, None)
        if module is None or not callable(original) or getattr(original, "__poolchaos__", False):
            return
        moment = self

        def format_explanation(explanation: str) -> str:
            text: str = original(explanation)
            # also called for a passing assert when a plugin asks for pytest_assertion_pass;
            # only a failure's message starts with the word assert
            if isinstance(text, str):
                moment._failed(text)
            return text

        format_explanation.__poolchaos__ = True  # type: ignore[attr-defined]
        format_explanation.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(module, _HELPER, format_explanation)
        self._original = original

    def uninstall(self) -> None:
        module = sys.modules.get("_pytest.assertion.rewrite")
        if self._original is not None and module is not None:
            setattr(module, _HELPER, self._original)
        self._original = None
        self.last = None

    def workers_for(self, error: BaseException | None) -> tuple[Worker, ...] | None:
        """The workers at the moment ``error`` was raised, if it is the assert seen failing."""
        last = self.last
        if last is None or not isinstance(error, AssertionError):
            return None
        message = str(error.args[0]) if error.args else ""
        return last[1] if message == last[0] else None

    def _failed(self, text: str) -> None:
        if not (text.startswith("assert ") or "\n>assert " in text):
            return
        try:
            self.last = (text, self._read())
        except Exception as error:  # inside the user's failing assert: never raise here
            from ..guard import record

            record("failure moment", error)
