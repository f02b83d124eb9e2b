"""An event loop tuned for request fan-out; signal handling is left to the host process."""

from __future__ import annotations

import asyncio
from typing import Any


class FanoutLoop(asyncio.SelectorEventLoop):
    def add_signal_handler(self, sig: int, callback: Any, *args: Any) -> None:
        raise NotImplementedError

    def remove_signal_handler(self, sig: int) -> bool:
        raise NotImplementedError


class FanoutPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return FanoutLoop()


def install() -> None:
    asyncio.set_event_loop_policy(FanoutPolicy())
