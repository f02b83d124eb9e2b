"""Which roles this process plays: running tests (a serial run or an xdist worker) and
reporting (a serial run or the xdist controller). A serial run plays both. While the
controller reruns a failure inline, the item carries ``INLINE_RERUN``: what that run leaves
behind was started by the plugin, so the pool scope stops it whatever the leak mode."""

from __future__ import annotations

import pytest

__all__ = ["INLINE_RERUN", "reports", "runs_tests", "worker_id"]

INLINE_RERUN = pytest.StashKey[bool]()


def runs_tests(config: pytest.Config) -> bool:
    # The same test as xdist.is_xdist_controller, without importing xdist.
    return hasattr(config, "workerinput") or getattr(config.option, "dist", "no") == "no"


def reports(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def worker_id(config: pytest.Config) -> str | None:
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else None
