"""Keep a bug inside the plugin from ever aborting the user's run.

Plugin code that runs inside pytest's hooks goes through ``guarded``: an exception is recorded
as an internal problem (shown once in the report) and the session goes on as if the plugin had
not been there.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: Internal problems seen in this process, as one-line texts (bounded: a broken probe that
#: fails on every test must not grow memory).
PROBLEMS: list[str] = []
_LIMIT = 50


def record(where: str, error: BaseException) -> None:
    if len(PROBLEMS) >= _LIMIT:
        return
    frame = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    place = f" at {frame[0].filename}:{frame[0].lineno}" if frame else ""
    PROBLEMS.append(f"{where}: {type(error).__name__}: {error}{place}")


def guarded(default: R) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the function; on an exception record it and return ``default``."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except Exception as error:
                record(func.__qualname__, error)
                return default

        return wrapper

    return decorate
