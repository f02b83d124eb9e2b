"""Loaded with ``-p`` into the pytest subprocesses of diagnostic runs only.

It writes one JSON line per finished test (outcome, duration, the recorder's Evidence) as soon
as the test ends, so a run killed by a timeout still tells what happened before. The JSON report
does not carry Evidence, and the comparison operands are what measured suggestions need.
It can also raise every test's pytest-timeout limit, markers included (a marker beats
``--timeout`` on the command line): one limit for all, or a JSON map of nodeid to limit when
a batch of failures runs together.

In a light run (``-p no:poolchaos``, see runner.py) it stands in for the plugin's
declarations: its ini keys and options (an ini file may set them), its hook specifications
(a conftest may implement them) and its marker are known, and nothing else of it runs.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from ..model import PAYLOAD_ATTR
from ..outcome import crash_message, fold
from ..sanitize import scrub

OUT = "POOLCHAOS_DIAGNOSE_OUT"  # also tells the controller to write no report files
TIMEOUT = "POOLCHAOS_DIAGNOSE_TIMEOUT"
#: a JSON list of the node ids to run of all those collected (the rest are only imported)
ONLY = "POOLCHAOS_DIAGNOSE_ONLY"

_seen: dict[str, dict[str, Any]] = {}


def _blocked(pluginmanager: pytest.PytestPluginManager) -> bool:
    return pluginmanager.is_blocked("poolchaos")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    if _blocked(pluginmanager):
        from .. import hookspecs

        pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    if _blocked(pluginmanager):
        from ..options import register

        register(parser)


def pytest_configure(config: pytest.Config) -> None:
    if _blocked(config.pluginmanager):
        from ..options import MARKER

        config.addinivalue_line("markers", MARKER)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _keep_only(config, items)
    limit = os.environ.get(TIMEOUT)
    if not limit or not config.pluginmanager.hasplugin("timeout"):
        return
    limits = _limits(limit)
    for item in items:
        value = limits.get(item.nodeid) if isinstance(limits, dict) else limits
        if value is not None:
            # Prepended, so get_closest_marker finds it before the test's own marker.
            item.add_marker(pytest.mark.timeout(float(value)), append=False)


def _keep_only(config: pytest.Config, items: list[pytest.Item]) -> None:
    only = os.environ.get(ONLY)
    if not only:
        return
    wanted = set(json.loads(only))
    dropped = [item for item in items if item.nodeid not in wanted]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.nodeid in wanted]


def _limits(text: str) -> dict[str, float] | float | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items()}
    return float(value) if isinstance(value, int | float) else None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _seen.setdefault(report.nodeid, {"nodeid": report.nodeid, "outcome": "passed",
                                             "when": None, "duration_s": 0.0})
    entry["duration_s"] += report.duration
    if report.when == "call":
        entry["call_s"] = report.duration
    outcome = fold(entry["outcome"], report)
    if outcome != entry["outcome"]:
        entry["outcome"], entry["when"] = outcome, report.when
        if report.failed:
            entry["message"] = crash_message(report)
    if report.when == "teardown":
        payload = getattr(report, PAYLOAD_ATTR, None) or {}
        entry["evidence"] = payload.get("evidence")
        _write(entry)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Every test's line is written: the parent stops waiting soon after this one, so a thread
    # or process a test left behind cannot hold the run at interpreter exit
    # (runner.EXIT_GRACE_S).
    _write({FINISHED: True, "exitstatus": int(exitstatus)})


#: key of the last line a child writes, once its session is over
FINISHED = "finished"


def _write(entry: dict[str, Any]) -> None:
    path = os.environ.get(OUT)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            # Scrubbed here: the parent never saw the secrets this run's tests set and removed.
            out.write(json.dumps(scrub(entry), default=str) + "\n")
