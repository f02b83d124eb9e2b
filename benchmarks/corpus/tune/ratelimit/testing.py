"""Test helpers shipped with the package."""

from __future__ import annotations


class FakeClock:
    """A clock tests move by hand: ``clock.advance(1.5)``."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        raise NotImplementedError
