"""Fork callbacks that can stay registered for good without holding the session.

``os.register_at_fork`` callbacks can never be removed, and what they reach is kept alive
into interpreter exit, past its first collection. A bound method of the scope (or anything
whose module reaches ``typing`` and the rest) keeps the whole session that long: about 4 ms
more on every run's exit, measured. The callbacks here reach their target through a weak
reference, and this module's namespace holds builtins only.
"""

from __future__ import annotations

import os
from functools import partial
from typing import TYPE_CHECKING
from weakref import ref

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: None where there is no fork
register_at_fork = getattr(os, "register_at_fork", None)

del os, TYPE_CHECKING, annotations  # no module stays in the namespace

__all__ = ["CHILD_FORKS", "at_fork"]

#: one entry per fork this process is the child of: a descriptor or snapshot taken before a
#: fork belongs to the parent
CHILD_FORKS: list[None] = []


class _Relay:
    __slots__ = ("method", "target")

    def __init__(self, bound: Callable[[], Any]) -> None:
        self.target = ref(bound.__self__)  # type: ignore[attr-defined]
        self.method: str = bound.__func__.__name__  # type: ignore[attr-defined]

    def __call__(self) -> None:
        target = self.target()
        if target is not None:
            getattr(target, self.method)()


def at_fork(before: Callable[[], Any], after_in_parent: Callable[[], Any]) -> None:
    """Register two bound methods, held weakly, to run around every fork of this process."""
    if register_at_fork is not None:
        register_at_fork(before=_Relay(before), after_in_parent=_Relay(after_in_parent))


if register_at_fork is not None:
    register_at_fork(after_in_child=partial(CHILD_FORKS.append, None))
