"""pytest entry point (``-p poolchaos``): declarations and wiring only, no logic.

Roles are plugin objects registered by name so users and tests can reach them with
``config.pluginmanager.get_plugin(...)``:

* ``poolchaos-recorder`` (worker/recorder.py) wherever tests run: a serial run or an xdist
  worker; the per-test path;
* ``poolchaos-controller`` (controller/session.py) and ``poolchaos-terminal`` where reports
  are made: a serial run or the xdist controller; the session path;
* ``poolchaos-xdist`` (controller/xdist.py) on an xdist controller;
* ``poolchaos-rules`` (the built-in rules), through the same hook third parties use; registered
  on the first failure, so a green run never loads the catalogue.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

from . import guard, hookspecs, roles
from .controller.session import ChaosController
from .options import MARKER, register
from .report import TerminalSection
from .settings import SETTINGS, resolve
from .worker.recorder import ScopeRecorder

if TYPE_CHECKING:
    from .worker.fixture import PoolTools

__all__ = ["pool_scope"]


@pytest.fixture
def pool_scope(request: pytest.FixtureRequest) -> Generator[PoolTools, None, None]:
    """Collision-free names, self-closing executors, bounded waits, concurrent starts."""
    from .worker.fixture import PoolTools  # loaded by the tests that use it only

    tools = PoolTools(request.node.nodeid)
    try:
        yield tools
    finally:
        tools.close()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    register(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    settings = resolve(config)
    guard.reset()
    config.stash[SETTINGS] = settings
    config.addinivalue_line("markers", MARKER)
    manager = config.pluginmanager
    recorder = None
    if roles.runs_tests(config):
        recorder = ScopeRecorder(config, settings)
        manager.register(recorder, "poolchaos-recorder")
    if roles.reports(config):
        controller = ChaosController(config, settings, local=recorder)
        manager.register(controller, "poolchaos-controller")
        manager.register(TerminalSection(config, controller), "poolchaos-terminal")
        if getattr(config.option, "xmlpath", None):
            from .report.junit import JunitProperties

            manager.register(JunitProperties(), "poolchaos-junit")
        if recorder is None:
            from .controller.xdist import XdistCoordinator

            manager.register(XdistCoordinator(config, settings, controller), "poolchaos-xdist")
