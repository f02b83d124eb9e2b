"""pytest entry point (``-p poolchaos``): declarations and wiring only, no logic.

Roles are plugin objects registered by name so users and tests can reach them with
``config.pluginmanager.get_plugin(...)``:

* ``poolchaos-recorder`` (ScopeRecorder) wherever tests run: a serial run or an xdist worker;
* ``poolchaos-controller`` (ChaosController) and ``poolchaos-terminal`` where reports are made:
  a serial run or the xdist controller;
* ``poolchaos-rules`` (the built-in rules) everywhere, through the same hook third parties use.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

from . import guard, hookspecs
from .classify import BuiltinRules
from .controller import ChaosController
from .exit_guard import ExitGuard
from .journal import Journal
from .options import MARKER, register
from .recorder import ScopeRecorder
from .report.terminal import TerminalSection
from .settings import SETTINGS, Settings, resolve

if TYPE_CHECKING:
    from .chaos.fixture import ChaosTools
    from .fixture import PoolScope

__all__ = ["chaos", "pool_scope"]


@pytest.fixture
def pool_scope(request: pytest.FixtureRequest) -> Generator[PoolScope, None, None]:
    """Collision-free names, self-closing executors, bounded waits, concurrent starts."""
    from .fixture import PoolScope  # loaded by the tests that use it, not by every session

    scope = PoolScope(request.node.nodeid)
    try:
        yield scope
    finally:
        scope.close()


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
    manager.register(BuiltinRules(settings), "poolchaos-rules")
    if not _is_xdist_controller(config):
        manager.register(ScopeRecorder(config, settings), "poolchaos-recorder")
    if not hasattr(config, "workerinput"):
        controller = ChaosController(config, settings)
        manager.register(controller, "poolchaos-controller")
        manager.register(TerminalSection(config, controller), "poolchaos-terminal")
    _register_distributed(config, settings)
    if settings.chaos is not None or settings.hunt:
        _register_chaos(config, settings)


def _register_distributed(config: pytest.Config, settings: Settings) -> None:
    # After the controller: the exit guard's tryfirst sessionfinish must run before the
    # controller's (pluggy calls later registrations first), so hanging threads are reported.
    manager = config.pluginmanager
    if settings.journal is not None:
        manager.register(Journal(config, settings), "poolchaos-journal")
    if not _is_xdist_controller(config):
        manager.register(ExitGuard(config, settings), "poolchaos-exit-guard")
    if hasattr(config, "workerinput"):
        from .distributed import WorkerOutput

        manager.register(WorkerOutput(), "poolchaos-worker-output")
    elif _is_xdist_controller(config):
        from .distributed import XdistCoordinator

        manager.register(XdistCoordinator(config), "poolchaos-xdist")


def _register_chaos(config: pytest.Config, settings: Settings) -> None:
    # Imported only when asked for: chaos costs a default run nothing.
    if settings.hunt and not hasattr(config, "workerinput"):
        from .chaos.hunt import Hunt

        config.pluginmanager.register(Hunt(config, settings), "poolchaos-hunt")
    elif settings.chaos is not None:
        from .chaos.session import ChaosSession

        config.pluginmanager.register(ChaosSession(config, settings), "poolchaos-chaos")


def _is_xdist_controller(config: pytest.Config) -> bool:
    # Same test as xdist.is_xdist_controller, without importing xdist.
    return not hasattr(config, "workerinput") and getattr(config.option, "dist", "no") != "no"
