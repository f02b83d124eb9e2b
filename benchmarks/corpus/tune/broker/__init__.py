"""A small publish/subscribe broker: a dispatcher thread, subscriber queues, an asyncio side."""

from __future__ import annotations

import asyncio
import logging
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("broker")

Handler = Callable[[str, str], None]


def topic_matches(pattern: str, topic: str) -> bool:
    """``*`` stands for exactly one dot-separated segment."""
    wanted, got = pattern.split("."), topic.split(".")
    return all(want in ("*", part) for want, part in zip(wanted, got, strict=False))


@dataclass
class Message:
    topic: str
    payload: str
    expires_at: int

    @classmethod
    def make(cls, topic: str, payload: str, ttl: int, clock: Callable[[], float]) -> Message:
        return cls(topic, payload, int(clock()) + ttl)

    def alive(self, now: float) -> bool:
        return now < self.expires_at


class Subscriber:
    def __init__(self, pattern: str, handler: Handler | None = None,
                 threaded: bool = False, name: str = "sub") -> None:
        self.pattern = pattern
        self.handler = handler
        self.inbox: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._loop, name=f"subscriber-{name}")
            self._thread.start()

    def deliver(self, topic: str, payload: str) -> None:
        if self.handler is not None and self._thread is None:
            self.handler(topic, payload)
        else:
            self.inbox.put((topic, payload))

    def _loop(self) -> None:
        while (item := self.inbox.get()) is not None:
            assert self.handler is not None
            self.handler(*item)

    def next(self, timeout: float) -> tuple[str, str]:
        item = self.inbox.get(timeout=timeout)
        assert item is not None
        return item

    def close(self) -> None:
        if self._thread is not None:
            self.inbox.put(None)
            self._thread.join(2)


class Broker:
    def __init__(self, on_dispatch: Callable[[str], None] | None = None) -> None:
        self.subscribers: list[Subscriber] = []
        self.stats = {"queued": 0, "delivered": 0}
        self.on_dispatch = on_dispatch
        self._inbox: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="broker-dispatch")
        self._dispatcher.start()

    def subscribe(self, subscriber: Subscriber) -> Subscriber:
        self.subscribers.append(subscriber)
        return subscriber

    def publish(self, topic: str, payload: str) -> None:
        if not any(topic_matches(sub.pattern, topic) for sub in self.subscribers):
            log.info("no subscriber for %s, message dropped", topic)
            return
        self.stats["queued"] += 1
        self._inbox.put((topic, payload))

    def _dispatch_loop(self) -> None:
        while (item := self._inbox.get()) is not None:
            topic, payload = item
            queued = self.stats["queued"]
            if self.on_dispatch is not None:
                self.on_dispatch(payload)
            for sub in list(self.subscribers):
                if topic_matches(sub.pattern, topic):
                    sub.deliver(topic, payload)
            self.stats["queued"] = queued - 1
            self.stats["delivered"] += 1

    def close(self) -> None:
        self._inbox.put(None)
        self._dispatcher.join(2)
        for sub in self.subscribers:
            sub.close()


_default: Broker | None = None
#: Called while the default broker is being built (tests hook it to hold the builder).
_before_create: Callable[[], None] | None = None


def default_broker() -> Broker:
    global _default
    if _default is None:
        if _before_create is not None:
            _before_create()
        _default = Broker()
    return _default


# -- a socket transport ----------------------------------------------------------------------


def write_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack("!I", len(payload)) + payload)


def read_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack("!I", sock.recv(4))
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data


class RemoteSubscriber:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def receive(self, count: int) -> list[bytes]:
        return [read_frame(self.sock) for _ in range(count)]


@dataclass
class Receipt:
    count: int


class Transport:
    """The real uplink: connecting is asynchronous, flushing the send buffer is not."""

    def __init__(self) -> None:
        self.buffer: list[str] = []

    async def connect(self, host: str) -> None:
        await asyncio.sleep(0)

    def flush(self) -> Receipt:
        sent, self.buffer = len(self.buffer), []
        return Receipt(sent)


class Bridge:
    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def forward(self, payloads: list[str]) -> int:
        self.transport.buffer = list(payloads)
        receipt = self.transport.flush()
        return int(receipt.count)


# -- the asyncio side ------------------------------------------------------------------------


class Peers:
    """Other brokers that must hear about a new topic before anyone subscribes to it."""

    def __init__(self) -> None:
        self.announced: list[str] = []

    async def announce(self, topic: str) -> None:
        await asyncio.sleep(0)
        self.announced.append(topic)


class AsyncBroker:
    def __init__(self) -> None:
        self.topics: dict[str, list[str]] = {}
        self.queues: dict[str, asyncio.Queue[str]] = {}
        self.peers = Peers()

    async def subscribe(self, topic: str, name: str) -> None:
        if topic not in self.topics:
            await self.peers.announce(topic)
            self.topics[topic] = []
        self.topics[topic].append(name)

    def queue(self, topic: str) -> asyncio.Queue[str]:
        return self.queues.setdefault(topic, asyncio.Queue())

    async def publish(self, topic: str, payload: str, delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)
        await self.queue(topic).put(payload)

    async def receive(self, topic: str, within: float) -> str:
        return await asyncio.wait_for(self.queue(topic).get(), within)


class BrokerClient:
    """A blocking client that runs a private event loop for its acknowledgements."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()

    def publish(self, topic: str, payload: str) -> asyncio.Future[int]:
        receipt: asyncio.Future[int] = self._loop.create_future()
        self._loop.call_soon(receipt.set_result, len(payload))
        return receipt

    def close(self) -> None:
        self._loop.close()


def stamp() -> float:
    return time.time()
