"""ChaosSession: applies a chaos spec to one pytest session.

Where tests run (a serial run or each xdist worker) it installs the noise and opens it around
every test; where reports are made (a serial run or the xdist controller) it starts the CPU
stress helpers and hands the resolved spec, seed included, to the workers. Stress and noise
both end before the diagnostic phase, so reruns are quiet unless ``--poolchaos-rerun-chaos``
asks otherwise, and before any report is written.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from ..guard import contained, guarded
from ..model import PAYLOAD_ATTR
from ..settings import CHAOS_KEY, Settings
from .noise import Noise
from .spec import ChaosSpec
from .stress import Stress

__all__ = ["ChaosSession", "replay_hint"]



def replay_hint(spec: ChaosSpec) -> str:
    return f"--poolchaos-chaos={spec.describe()}"


class ChaosSession:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        assert settings.chaos is not None
        self.config = config
        self.spec: ChaosSpec = settings.chaos
        self.worker = hasattr(config, "workerinput")
        self.distributing = not self.worker and getattr(config.option, "dist", "no") != "no"
        self.noise = Noise(self.spec)
        self.stress: Stress | None = None
        self.helper_pids: list[int] = []
        self._installed = False

    # -- lifetime -------------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)  # after the pool scope's wrappers, so ours go on top
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._start()

    @guarded(None)
    def _start(self) -> None:
        if not self.distributing:
            self.noise.install()
            self._installed = True
        if not self.worker:
            self._publish()
            if self.spec.cpu:
                self.stress = Stress(self.spec.cpu).start()
                self.helper_pids = self.stress.pids

    def _publish(self) -> None:
        controller = self.config.pluginmanager.get_plugin("poolchaos-controller")
        if controller is not None:
            controller.session.chaos = self.spec.describe()

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        # Before the controller's diagnostic phase and reports: reruns must be quiet.
        self.stop()
        return (yield)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.stop()

    @guarded(None)
    def stop(self) -> None:
        if self._installed:
            self._installed = False
            self.noise.uninstall()
        if self.stress is not None:
            stress, self.stress = self.stress, None
            stress.stop()

    # -- xdist ----------------------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        with contained("chaos: configure worker"):
            node.workerinput[CHAOS_KEY] = self.spec.describe()

    # -- one test -------------------------------------------------------------------------------

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        # logstart/logfinish frame the test only when it is logged: the silent inline reruns
        # of the diagnostic phase are not.
        if self._installed:
            with contained("chaos: test start"):
                self.noise.begin(nodeid)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        if self._installed:
            with contained("chaos: test end"):
                self.noise.end()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # After the recorder (tryfirst) put its payload on the report, before xdist sends it.
        if self._installed and report.when == "teardown":
            self._note(report)

    @guarded(None)
    def _note(self, report: pytest.TestReport) -> None:
        payload = report.__dict__.get(PAYLOAD_ATTR)
        diagnosis = payload.get("diagnosis") if isinstance(payload, dict) else None
        if not diagnosis:
            return
        line = (f"ran under chaos {self.spec.describe()}: "
                f"{self.noise.summary(self.noise.applied)}; replay with {replay_hint(self.spec)}")
        diagnosis["evidence"] = [*diagnosis.get("evidence", ()), line]

    # -- terminal -------------------------------------------------------------------------------

    @guarded("")
    def pytest_report_header(self, config: pytest.Config) -> str:
        return (f"poolchaos chaos: {self.spec.describe()} "
                f"(same noise again: {replay_hint(self.spec)})")

    @guarded(None)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.worker:
            return
        helpers = (f"; {len(self.helper_pids)} CPU stress helper(s) of the plugin, pids "
                   f"{', '.join(map(str, self.helper_pids))}, stopped before the reports"
                   if self.helper_pids else "")
        terminalreporter.write_line(f"poolchaos chaos: {self.spec.describe()}{helpers}")
