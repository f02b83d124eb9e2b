"""Hooks other plugins and conftest files may implement.

The built-in rules are registered through ``pytest_poolchaos_classify`` exactly like a third
party's, so the extension path runs on every diagnosis; the built-in probes (environment,
loggers, sockets, asyncio tasks, ...) through ``pytest_poolchaos_probe`` likewise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .model import Diagnosis, Evidence, Finding
    from .probe import Probe


@pytest.hookspec
def pytest_poolchaos_classify(evidence: Evidence) -> Sequence[Finding] | None:
    """Return findings about one failed test, or None.

    Every implementation is called; the category whose findings score highest wins and their
    evidence lines and suggestions are shown. A finding must say why (non-empty ``evidence``).

    :param evidence: what was gathered about the failure (exception chain, compared operands,
        timeout, leaks, outstanding pollution, mocks, load).

    .. versionadded:: 0.1
    """


@pytest.hookspec
def pytest_poolchaos_diagnosis(nodeid: str, diagnosis: Diagnosis) -> None:
    """Called once per diagnosed failure, where it was diagnosed (on the worker under xdist)
    and again on the controller when reruns refined it.

    :param nodeid: the failed test.
    :param diagnosis: the conclusion, read-only.

    .. versionadded:: 0.1
    """


@pytest.hookspec
def pytest_poolchaos_probe(config: pytest.Config) -> Sequence[Probe] | None:
    """Return probes that teach the per-test scope a kind of state, or None.

    Called once per process that runs tests, when the first test opens (after collection, so
    conftest files of sub-directories are loaded); every implementation is called and the
    probes of all of them are used for the rest of the session. The scope then calls each
    probe's ``take()`` around every test and ``diff()`` only when two snapshots differ, so a
    probe costs what its ``take()`` costs: keep it to a few attribute reads. A probe that
    raises is switched off and reported once; it never changes an outcome.

    :param config: the pytest config (read options or the rootdir from it).
    :return: :class:`pytest_poolchaos.Probe` instances.

    .. versionadded:: 0.1
    """
