"""Keep a bug inside the plugin from ever aborting the user's run.

Plugin code that runs inside pytest's hooks goes through ``guarded``: an exception is recorded
as an internal problem (shown once in the report) and the session goes on as if the plugin had
not been there.
"""

from __future__ import annotations

import contextlib
import functools
import traceback
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: Internal problems seen in this process, as one-line texts (bounded: a broken probe that
#: fails on every test must not grow memory).
PROBLEMS: list[str] = []
_LIMIT = 50
_BUGS: set[str] = set()  # each problem without its "where": the bug, however it was reached
#: how many of PROBLEMS the terminal section has shown; the rest are told at unconfigure
SHOWN = [0]


def record(where: str, error: BaseException) -> None:
    frame = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    place = f" at {frame[0].filename}:{frame[0].lineno}" if frame else ""
    bug = f"{type(error).__name__}: {error}{place}"
    # The same bug on every test, or reached from several hooks, is one problem.
    if bug not in _BUGS and len(PROBLEMS) < _LIMIT:
        _BUGS.add(bug)
        PROBLEMS.append(f"{where}: {bug}")


def reset() -> None:
    """Forget problems of an earlier session in this process (pytester runs many)."""
    PROBLEMS.clear()
    _BUGS.clear()
    SHOWN[0] = 0


def unshown() -> list[str]:
    """Problems met after the terminal section was drawn (unconfigure, annotations)."""
    return PROBLEMS[SHOWN[0]:]


def guarded(default: Any) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the function; on an exception record it and return ``default``.

    ``default`` is typed loosely on purpose: the decorated function's own return type is the
    one callers see (``None`` is the usual default for an optional result).
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except Exception as error:
                record(func.__qualname__, error)
                fallback: R = default
                return fallback

        return wrapper

    return decorate


def call_guarded(where: str, func: Callable[[], Any]) -> Any:
    """``func()``; on an exception record it under ``where`` and return None."""
    try:
        return func()
    except Exception as error:
        record(where, error)
        return None


@contextlib.contextmanager
def contained(where: str) -> Iterator[None]:
    """Run a block of plugin code; an exception becomes an internal problem."""
    try:
        yield
    except Exception as error:
        record(where, error)


def call_each(hook: Any, **kwargs: Any) -> list[Any]:
    """Call every implementation of a poolchaos hook on its own and keep what each returned.

    Third-party code may raise anything (``pytest.fail``, ``pytest.skip``, ``SystemExit``):
    one implementation's error is an internal problem and the others still run, where pluggy
    would stop at the first. Only KeyboardInterrupt goes through.
    """
    results = []
    for impl in hook.get_hookimpls():
        try:
            result = impl.function(*[kwargs[name] for name in impl.argnames])
        except KeyboardInterrupt:
            raise
        except BaseException as error:
            record(f"{hook.name} in {impl.plugin_name}", error)
            continue
        if result is not None:
            results.append(result)
    return results
