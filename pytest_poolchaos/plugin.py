"""pytest entry point (``-p poolchaos``): declarations and wiring only, no logic.

Roles are plugin objects registered by name so users and tests can reach them with
``config.pluginmanager.get_plugin(...)``:

* ``poolchaos-recorder`` (worker/recorder.py) wherever tests run: a serial run or an xdist
  worker; the per-test path;
* ``poolchaos-controller`` (controller/session.py) and ``poolchaos-terminal`` where reports
  are made: a serial run or the xdist controller; the session path;
* ``poolchaos-xdist`` (controller/xdist.py) on an xdist controller;
* ``poolchaos-probes`` (the built-in probes of the pool scope), through
  ``pytest_poolchaos_probe``, the hook a team's own probes use;
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
from .settings import SETTINGS, Settings, resolve
from .worker.recorder import ScopeRecorder
from .worker.scope.probes import BuiltinProbes

if TYPE_CHECKING:
    from .chaos.fixture import ChaosTools
    from .worker.fixture import PoolTools

__all__ = ["chaos", "pool_scope"]


@pytest.fixture
def pool_scope(request: pytest.FixtureRequest) -> Generator[PoolTools, None, None]:
    """Collision-free names, self-closing executors, bounded waits, concurrent starts."""
    from .worker.fixture import PoolTools  # loaded by the tests that use it only

    tools = PoolTools(request.node.nodeid)
    try:
        yield tools
    finally:
        tools.close()


@pytest.fixture
def chaos(request: pytest.FixtureRequest) -> Generator[ChaosTools, None, None]:
    """Faults a test injects itself: kill_worker, stress, delay_starts, thundering_herd."""
    from .chaos.fixture import ChaosTools  # loaded by the tests that use it

    session = request.config.pluginmanager.get_plugin("poolchaos-chaos")
    tools = ChaosTools(request.node.nodeid, session.noise if session is not None else None)
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
        manager.register(BuiltinProbes(settings), "poolchaos-probes")
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
    if settings.chaos is not None or settings.hunt:
        _register_chaos(config, settings)


def _register_chaos(config: pytest.Config, settings: Settings) -> None:
    # Imported only when asked for: chaos costs a default run nothing.
    if settings.hunt and not hasattr(config, "workerinput"):
        from .chaos.hunt import Hunt

        config.pluginmanager.register(Hunt(config, settings), "poolchaos-hunt")
    elif settings.chaos is not None:
        from .chaos.session import ChaosSession

        config.pluginmanager.register(ChaosSession(config, settings), "poolchaos-chaos")
