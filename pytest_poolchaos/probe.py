"""What a probe is: the public types of the ``pytest_poolchaos_probe`` hook.

A probe teaches the per-test pool scope one kind of state. The scope calls ``take()`` before
each test's setup and after its teardown (and, for a test using fixtures wider than a
function, once more after setup, so what those fixtures hold is not blamed on the test).
Only when two snapshots differ (``==``) is ``diff(before, after)`` called, and what it returns
is the test's: a ``Change`` is a global setting left changed (a leak line, an entry in the
pollution ledger that later failures are checked against, put back with
``--poolchaos-isolate=restore``); a ``Held`` is a resource left open (a leak line, stopped with
``--poolchaos-leaks=cleanup`` when it says how).

``take`` runs twice per test in every suite: return something cheap to build and to compare
(a counter, a tuple of ids, a copied small container), never a deep copy, and ``None`` while
the library it watches is not imported (check ``sys.modules``: never import it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Change", "Held", "Probe"]


def _cannot_undo() -> None:
    raise NotImplementedError("this change cannot be put back")


class Change:
    """One global setting a test changed and left changed.

    :param kind: short name of the state (``"env"``, ``"logger"``, ``"redis-db"``).
    :param key: which one (``"os.environ['TZ']"``); one ledger entry per (kind, key).
    :param before: the value before, as text (None: absent).
    :param after: the value after, as text (None: removed).
    :param fix: how a test avoids leaving it changed.
    :param undo: puts the value back (``--poolchaos-isolate=restore``).
    :param shown: False keeps it in the ledger only (evidence for later failures) without a
        leak line, for state that code under test also changes legitimately (lazy caches).
    """

    __slots__ = ("after", "before", "fix", "key", "kind", "shown", "undo")

    def __init__(self, kind: str, key: str, before: str | None, after: str | None, fix: str,
                 undo: Callable[[], None] = _cannot_undo, shown: bool = True) -> None:
        self.kind = kind
        self.key = key
        self.before = before
        self.after = after
        self.fix = fix
        self.undo = undo
        self.shown = shown

    @property
    def ident(self) -> tuple[str, str, str | None]:
        return (self.kind, self.key, self.after)

    def describe(self) -> str:
        from .model import describe_change

        return describe_change(self.kind, self.key, self.before, self.after)


class Held:
    """One resource a test left open after its teardown.

    :param kind: short name (``"socket"``, ``"asyncio-task"``, ``"redis-connection"``); what
        ``@pytest.mark.poolchaos(ignore_leaks=...)`` names.
    :param detail: one line saying what it is and where it came from.
    :param key: groups the same resource across tests (defaults to ``kind``).
    :param close: stops it (``--poolchaos-leaks=cleanup``); None when it cannot be stopped
        safely from outside.
    """

    __slots__ = ("close", "detail", "key", "kind")

    def __init__(self, kind: str, detail: str, key: str = "",
                 close: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self.detail = detail
        self.key = key or kind
        self.close = close

    @property
    def ident(self) -> tuple[str, str, str | None]:
        return (self.kind, self.key, self.detail)


class Probe:
    """One kind of state; subclass it and return instances from ``pytest_poolchaos_probe``.

    ``kind`` names it in problems the plugin reports about the probe itself (a probe that
    raises is switched off for the rest of the session and said so once, never failing a test).
    """

    kind = ""

    def take(self) -> Any:
        """A snapshot; equal snapshots mean nothing changed."""
        raise NotImplementedError

    def diff(self, before: Any, after: Any) -> Sequence[Change | Held]:
        """What changed between two unequal snapshots of this probe."""
        raise NotImplementedError

    def close(self) -> None:
        """The session ends: undo whatever ``__init__`` installed."""
