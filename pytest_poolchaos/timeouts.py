"""Which pytest-timeout limit applied to a test, where it came from, and whether it fired.

pytest-timeout announces every timer through its ``pytest_timeout_set_timer`` hook (before
setup, only for a limit above 0); ``remember`` is called from an ``optionalhook`` wrapper on that
hook, so nothing here imports pytest-timeout. When the hook did not fire (``func_only`` and a
failed setup, or a limit of 0) the limit is worked out from the marker and the configuration with
pytest-timeout's own precedence: marker > ``--timeout`` > ``PYTEST_TIMEOUT`` > ini (reference.md
§3.1). Without pytest-timeout, or with ``-p no:timeout``, no limit applies and the answer is None.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from typing import TYPE_CHECKING, Any

import pytest

from . import clock, model

if TYPE_CHECKING:
    from .model import TimeoutInfo

__all__ = ["armed_at", "effective", "fired_limit", "marked", "remember", "session_limit"]

#: pytest-timeout's failure text, ``PYTEST_FAILURE_MESSAGE = "Timeout (>%ss) from pytest-timeout."``
FIRED = r"Timeout \(>([0-9.]+)s\) from pytest-timeout"

_SET = pytest.StashKey["TimeoutInfo"]()
#: when pytest-timeout armed the item's timer (clock.wall), read just before it does
_ARMED = pytest.StashKey[float]()
#: the configuration's (seconds, method, source, func_only); None without pytest-timeout
_SESSION = pytest.StashKey["tuple[float | None, str, str | None, bool] | None"]()


def remember(item: pytest.Item, settings: Any) -> None:
    """Keep the settings pytest-timeout is about to arm a timer with (its ``Settings`` tuple),
    and when: the test's scope opens later, after whatever runs between."""
    item.stash[_ARMED] = clock.wall()
    method = getattr(settings, "method", None)
    if method == "signal" and threading.current_thread() is not threading.main_thread():
        method = "thread"  # pytest-timeout switches the same way off the main thread
    item.stash[_SET] = model.TimeoutInfo(
        seconds=_seconds(getattr(settings, "timeout", None)),
        method=method,
        source=_source(item),
        func_only=bool(getattr(settings, "func_only", False)),
    )


def effective(item: pytest.Item, failure_text: str = "") -> TimeoutInfo | None:
    """The limit that applied to ``item``; ``fired`` when ``failure_text`` is pytest-timeout's."""
    # Every test asks (the recorder, before setup): a stash miss by ``in``, not by the
    # KeyError ``stash.get`` raises and catches.
    stash = item.stash
    info = stash[_SET] if _SET in stash else _configured(item)
    if not failure_text:
        return info
    limit = fired_limit(failure_text)
    if limit is None:
        return info
    if info is None:
        return model.TimeoutInfo(seconds=limit, fired=True)
    return model.TimeoutInfo(info.seconds or limit, info.method, info.source, info.func_only,
                             True)


def armed_at(item: pytest.Item) -> float | None:
    """When pytest-timeout last armed ``item``'s timer (clock.wall), if it did."""
    return item.stash.get(_ARMED, None)


def fired_limit(text: str) -> float | None:
    """The limit quoted in pytest-timeout's failure text, or None when it did not fire."""
    if not text or "pytest-timeout" not in text:
        return None  # every passing test asks; the pattern is for the failures that say so
    match = re.search(FIRED, text)
    return float(match.group(1)) if match else None


def _configured(item: pytest.Item) -> TimeoutInfo | None:
    session = _session(item.config)
    if session is None or (not session[0] and not marked(item)):
        return None  # the common case, kept cheap: it runs for every test
    seconds_s, method_s, _, func_only_s = session
    marker = _marker_values(item)
    limit = marker["timeout"] if marker.get("timeout") is not None else seconds_s
    seconds = _seconds(limit)  # a marker's 0 switches the limit off for this test
    if not seconds:
        return None
    method = marker.get("method") or method_s
    func_only = marker.get("func_only")
    if func_only is None:
        func_only = func_only_s
    return model.TimeoutInfo(seconds, str(method or "signal"), _source(item), bool(func_only))


def marked(item: pytest.Item) -> bool:
    """A ``timeout`` marker on the item or a node above it (where ``get_closest_marker``
    looks), read from the nodes' own lists: no keyword mapping is built per test, and the
    nodes above are looked at once for all the items under them."""
    if _own_timeout(item):
        return True
    parent = getattr(item, "parent", None)
    known = _PARENTS.get(id(parent))
    if known is not None and known[0] is parent:
        return known[1]
    found = False
    node = parent
    while node is not None and not found:
        found = _own_timeout(node)
        node = getattr(node, "parent", None)
    if len(_PARENTS) > 1000:  # sessions come and go (pytester): never more than this kept
        _PARENTS.clear()
    _PARENTS[id(parent)] = (parent, found)
    return found


#: id(node) -> (the node, whether it or one above it has a timeout marker)
_PARENTS: dict[int, tuple[Any, bool]] = {}


def _own_timeout(node: Any) -> bool:
    markers = getattr(node, "own_markers", None)
    if not markers:
        return False
    return any(getattr(mark, "name", None) == "timeout" for mark in markers)


def session_limit(config: pytest.Config) -> TimeoutInfo | None:
    """The configuration's limit and method for the session (markers may differ per test)."""
    session = _session(config)
    if session is None or not session[0]:
        return None
    seconds, method, source, func_only = session
    return model.TimeoutInfo(seconds, method, source, func_only)


def _session(config: pytest.Config) -> tuple[float | None, str, str | None, bool] | None:
    """The configuration's limit, method, source and func_only: the same for every test."""
    last = _LAST
    if last and last[0]() is config:
        return last[1]  # type: ignore[no-any-return]
    stash = config.stash
    if _SESSION not in stash:
        stash[_SESSION] = _session_settings(config)
    found = stash[_SESSION]
    _LAST[:] = [weakref.ref(config), found]
    return found


#: [a weak reference to the configuration last asked about, its _session answer]: every test
#: asks, and a stash lookup costs three calls
_LAST: list[Any] = []


def _session_settings(config: pytest.Config
                      ) -> tuple[float | None, str, str | None, bool] | None:
    if not config.pluginmanager.hasplugin("timeout"):
        return None
    method = _option(config, "timeout_method") or _ini(config, "timeout_method")
    return (_seconds(_config_timeout(config)), str(method or "signal"), _config_source(config),
            bool(_ini(config, "timeout_func_only")))


def _marker_values(item: pytest.Item) -> dict[str, Any]:
    marker = item.get_closest_marker("timeout")
    if marker is None:
        return {}
    values = dict(zip(("timeout", "method"), marker.args, strict=False))
    values.update(marker.kwargs)
    return values


def _source(item: pytest.Item) -> str | None:
    for node, marker in item.iter_markers_with_node("timeout"):
        if marker.args or "timeout" in marker.kwargs:
            return f"marker at {_location(item, node)}"
        break  # a marker that sets only the method takes the limit from the configuration
    return _config_source(item.config)


def _config_source(config: pytest.Config) -> str | None:
    if _option(config, "timeout") is not None:
        return "cli"
    if os.environ.get("PYTEST_TIMEOUT"):
        return "env PYTEST_TIMEOUT"
    return "ini" if _ini(config, "timeout") else None


def _location(item: pytest.Item, node: object) -> str:
    if node is item:
        relpath, lineno, _ = item.location
        return f"{relpath}:{(lineno or 0) + 1}"
    path = getattr(node, "path", None)
    try:
        rel = os.path.relpath(str(path), str(item.config.rootpath))
    except ValueError:  # another drive on Windows
        rel = str(path)
    lineno = _node_line(node)
    return f"{rel}:{lineno}" if lineno else rel


def _node_line(node: object) -> int | None:
    reportinfo = getattr(node, "reportinfo", None)
    try:
        lineno = reportinfo()[1] if callable(reportinfo) else None
    except Exception:  # reportinfo of a custom node may need state it does not have
        return None
    return lineno + 1 if isinstance(lineno, int) and lineno > 0 else None


def _config_timeout(config: pytest.Config) -> Any:
    cli = _option(config, "timeout")
    if cli is not None:
        return cli
    return os.environ.get("PYTEST_TIMEOUT") or _ini(config, "timeout")


def _option(config: pytest.Config, name: str) -> Any:
    return config.getoption(name, None)


def _ini(config: pytest.Config, name: str) -> Any:
    try:
        return config.getini(name)
    except ValueError:  # the key is unknown when pytest-timeout is absent
        return None


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None
