"""The pytest-timeout limit of a test: the one value a green run with a timeout needs."""

from typing import NamedTuple

__all__ = ["TimeoutInfo"]


class TimeoutInfo(NamedTuple):
    """The pytest-timeout limit that applied to a test and whether it fired.

    A NamedTuple rather than a dataclass: a green run with a timeout configured reads one per
    test, and defining it must not cost what the rest of the start-up costs.
    """

    seconds: float | None
    method: str | None = None
    source: str | None = None  # "marker at path:line", "cli", "env PYTEST_TIMEOUT", "ini"
    func_only: bool = False
    fired: bool = False
