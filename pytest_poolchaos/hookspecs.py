"""Hooks other plugins and conftest files may implement.

The built-in rules are registered through ``pytest_poolchaos_classify`` exactly like a third
party's, so the extension path runs on every diagnosis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .model import Diagnosis, Evidence, Finding


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
