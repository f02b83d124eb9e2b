"""Shared fixtures: ``chaostester`` runs real pytest sessions with the plugin loaded.

The outer session runs with ``-p no:poolchaos`` (pyproject addopts): the tool under test never
judges its own harness. Only the sessions started here load it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest


def _import_every_module() -> None:
    # pytester's in-process runs drop the modules first imported during a run. A plugin module
    # imported again later binds a fresh ``guard`` (or settings) module while older ones keep
    # the first: a problem recorded in one is then missing from the report read from the
    # other, and a test's outcome depends on which tests ran before it. Importing everything
    # once, before any run, keeps one copy of each module for the whole suite.
    import importlib
    import pkgutil

    import pytest_poolchaos

    for module in pkgutil.walk_packages(pytest_poolchaos.__path__, "pytest_poolchaos."):
        importlib.import_module(module.name)
    # The same holds for the standard library the plugin wraps or reads by module: a test
    # file's ``from unittest import mock`` takes the package's attribute, which can still be
    # a copy that a previous run imported, while the wrappers went onto the one in sys.modules.
    for name in _WRAPPED_STDLIB:
        importlib.import_module(name)


_WRAPPED_STDLIB = ("asyncio", "concurrent.futures.process", "concurrent.futures.thread",
                   "decimal", "multiprocessing.pool", "queue", "sqlite3", "unittest.mock",
                   "urllib.request")


_import_every_module()
SCHEMA = json.loads((Path(__file__).parent / "data" / "poolchaos-report.schema.json").read_text())
# pytest-rerunfailures is installed for the tests about it (they pass "-p rerunfailures");
# every other session runs without it, as the suite did before it was a test dependency.
# The confirming run (on by default) is off for tests that are not about it: it would make
# every session with a failure start another pytest. Tests of it pass --poolchaos-confirm=auto.
BASE_ARGS = ("-p", "poolchaos", "-p", "no:randomly", "-p", "no:cacheprovider",
             "-p", "no:rerunfailures", "--poolchaos-confirm=off")


class ChaosTester:
    """pytester plus the plugin, a JSON report per run, and lookups into that report."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.path = pytester.path
        pytester.makeini("[pytest]\nconsole_output_style = classic\n")

    def run(self, *args: str, subprocess: bool = False, json_report: bool = True,
            timeout: float = 120) -> ChaosResult:
        extra = ["--poolchaos-json=poolchaos.json"] if json_report else []
        report = self.path / "poolchaos.json"
        report.unlink(missing_ok=True)
        if subprocess:
            result = self.pytester.runpytest_subprocess(*BASE_ARGS, *extra, *args,
                                                        timeout=timeout)
        else:
            # In-process sessions share os.environ with this one: tests that leak env on
            # purpose must not leak into the next test here.
            saved = dict(os.environ)
            try:
                result = self.pytester.runpytest_inprocess(*BASE_ARGS, *extra, *args)
            finally:
                os.environ.clear()
                os.environ.update(saved)
        data = json.loads(report.read_text()) if json_report and report.exists() else None
        if data is not None:
            jsonschema.validate(data, SCHEMA)
        return ChaosResult(result, data)


class ChaosResult:
    def __init__(self, result: pytest.RunResult, data: dict[str, Any] | None) -> None:
        self.result = result
        self.data = data
        self.stdout = result.stdout

    @property
    def ret(self) -> int:
        return int(self.result.ret)

    def test(self, name: str) -> dict[str, Any]:
        """The JSON entry whose nodeid ends with ``name`` (e.g. ``test_x.py::test_y``)."""
        assert self.data is not None, "no JSON report was written"
        matches = [t for t in self.data["tests"] if t["nodeid"].endswith(name)]
        assert len(matches) == 1, f"{name!r} matched {[t['nodeid'] for t in matches]}"
        return matches[0]

    def diagnosis(self, name: str) -> dict[str, Any]:
        diagnosis = self.test(name)["diagnosis"]
        assert diagnosis is not None, f"{name} has no diagnosis"
        return diagnosis

    def category(self, name: str) -> str:
        return str(self.diagnosis(name)["category"])

    def leaks(self, name: str) -> list[dict[str, str]]:
        return list(self.test(name)["leaks"])

    def text(self) -> str:
        return str(self.result.stdout.str())


@pytest.fixture
def chaostester(pytester: pytest.Pytester) -> ChaosTester:
    return ChaosTester(pytester)
