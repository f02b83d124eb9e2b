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

import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from . import guard, hookspecs, roles
from .options import MARKER, register
from .sanitize import safe_text
from .settings import SETTINGS, Settings, resolve

if TYPE_CHECKING:
    from .chaos.fixture import ChaosTools
    from .controller.session import ChaosController
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
    guard.reset()
    settings = _settings(config)
    config.stash[SETTINGS] = settings
    config.addinivalue_line("markers", MARKER)
    # A role that cannot be made is left out (an internal problem); the run goes on.
    # Each process imports its own roles only: an xdist controller runs no test, a worker
    # reports to no terminal.
    recorder = None
    if roles.runs_tests(config):
        from .worker.recorder import ScopeRecorder
        from .worker.scope.probes import BuiltinProbes

        recorder = _register(config, "poolchaos-recorder", ScopeRecorder, config, settings)
        _register(config, "poolchaos-probes", BuiltinProbes, settings)
    if roles.reports(config):
        from .controller.session import ChaosController
        from .report import TerminalSection

        controller = _register(config, "poolchaos-controller", ChaosController, config,
                               settings, local=recorder)
        if controller is not None:
            _register(config, "poolchaos-terminal", TerminalSection, config, controller)
            _register_reporting(config, settings, controller)
    if settings.chaos is not None or settings.hunt:
        try:
            _register_chaos(config, settings)
        except pytest.UsageError:  # a combination of options that cannot work
            raise
        except Exception as error:
            guard.record("configure chaos", error)


def _settings(config: pytest.Config) -> Settings:
    # Bad input is the user's to fix (a UsageError); a bug in reading it is ours.
    try:
        settings = resolve(config)
        if settings.disable_rules:
            from .checks import check_rule_ids

            check_rule_ids(settings.disable_rules)
    except pytest.UsageError:
        raise
    except Exception as error:
        guard.record("reading the options", error)
        return Settings()
    return settings


def _register(config: pytest.Config, name: str, role: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        made = role(*args, **kwargs)
        config.pluginmanager.register(made, name)
    except pytest.UsageError:
        raise
    except Exception as error:
        guard.record(f"configure {name}", error)
        return None
    return made


def _register_reporting(config: pytest.Config, settings: Settings,
                        controller: ChaosController) -> None:
    if getattr(config.option, "xmlpath", None):
        from .report.junit import JunitProperties

        _register(config, "poolchaos-junit", JunitProperties)
    if not roles.runs_tests(config):
        from .controller.xdist import XdistCoordinator

        _register(config, "poolchaos-xdist", XdistCoordinator, config, settings, controller)


@pytest.hookimpl(wrapper=True)
def pytest_unconfigure(config: pytest.Config) -> Generator[None, None, None]:
    # The last word, after every unconfigure (the recorder's trylast one included): problems
    # met after the terminal section was drawn, one line each.
    try:
        return (yield)
    finally:
        with guard.contained("telling late problems"):
            _tell_late(config)


def _tell_late(config: pytest.Config) -> None:
    late = guard.unshown()
    if late and roles.reports(config):
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        for problem in late:
            line = f"poolchaos: plugin problem (a bug in poolchaos, not in your tests): " \
                   f"{safe_text(problem)}"
            if reporter is not None:
                reporter.write_line(line)
            else:
                print(line, file=sys.stderr)


def _register_chaos(config: pytest.Config, settings: Settings) -> None:
    # Imported only when asked for: chaos costs a default run nothing.
    if settings.hunt and not hasattr(config, "workerinput"):
        from .chaos.hunt import Hunt

        config.pluginmanager.register(Hunt(config, settings), "poolchaos-hunt")
    elif settings.chaos is not None:
        from .chaos.session import ChaosSession

        config.pluginmanager.register(ChaosSession(config, settings), "poolchaos-chaos")
