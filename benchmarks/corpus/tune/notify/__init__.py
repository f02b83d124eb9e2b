"""Notification delivery: an outbox, acknowledged sends, upload slots, batching and SMTP."""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("notify")


class Outbox:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.items: collections.deque[str] = collections.deque()

    def put(self, item: str) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify()

    def take(self, timeout: float = 1.0,
             before_wait: Callable[[], None] | None = None) -> str | None:
        """The next item, waiting up to ``timeout`` for one; None if nothing came."""
        if not self.items:
            if before_wait is not None:
                before_wait()
            with self.cond:
                if not self.cond.wait(timeout):
                    return None
        with self.cond:
            return self.items.popleft()


class Courier:
    """Sends messages to a peer thread and waits for the peer's acknowledgement."""

    def __init__(self, ack_delay: float = 0.0) -> None:
        self.cond = threading.Condition()
        self.acks: set[int] = set()
        self.ack_delay = ack_delay
        self._peers: list[threading.Thread] = []

    def _peer(self, message_id: int) -> None:
        threading.Event().wait(self.ack_delay)  # the peer persists the message first
        with self.cond:
            self.acks.add(message_id)
            self.cond.notify_all()

    def send(self, message_id: int, ack_timeout: float = 0.2) -> bool:
        peer = threading.Thread(target=self._peer, args=(message_id,), name="courier-peer")
        self._peers.append(peer)
        peer.start()
        with self.cond:
            return self.cond.wait_for(lambda: message_id in self.acks, ack_timeout)

    def close(self) -> None:
        for peer in self._peers:
            peer.join(2)


class Upload:
    """One upload holding a slot, released by whichever finishes first: the upload or its
    watchdog."""

    def __init__(self, slots: threading.BoundedSemaphore, deadline: float,
                 before_release: Callable[[str], None] | None = None,
                 on_expired: Callable[[], None] | None = None) -> None:
        self.slots = slots
        self.released = False
        self.before_release = before_release
        self.on_expired = on_expired
        slots.acquire()
        self.watchdog = threading.Timer(deadline, self._expire)
        self.watchdog.name = "upload-watchdog"
        self.watchdog.start()

    def _release(self, who: str) -> None:
        if not self.released:
            if self.before_release is not None:
                self.before_release(who)
            self.released = True
            self.slots.release()

    def _expire(self) -> None:
        self._release("watchdog")
        if self.on_expired is not None:
            self.on_expired()

    def finish(self) -> None:
        self.watchdog.cancel()
        self._release("upload")


class Batcher:
    """Collects messages and delivers them together ``linger`` seconds after the first one of
    a batch arrived."""

    def __init__(self, linger: float = 0.1) -> None:
        self.linger = linger
        self.lock = threading.Lock()
        self.batch: list[tuple[str, float]] = []
        self.latencies: list[float] = []
        self._timer: threading.Timer | None = None

    def send(self, message: str) -> None:
        with self.lock:
            self.batch.append((message, time.monotonic()))
            if self._timer is None:
                self._timer = threading.Timer(self.linger, self._deliver)
                self._timer.start()

    def _deliver(self) -> None:
        with self.lock:
            now = time.monotonic()
            self.latencies += [now - sent for _, sent in self.batch]
            self.batch, self._timer = [], None

    def close(self) -> None:
        with self.lock:
            timer = self._timer
        if timer is not None:
            timer.join(2)


class Notifier:
    """Posts a webhook from a sender thread, retrying refused connections with backoff."""

    def __init__(self, address: tuple[str, int], backoff: tuple[float, ...] = (0.3, 0.6)) -> None:
        self.address = address
        self.backoff = backoff
        self.delivered = False
        self._sender: threading.Thread | None = None

    def _send(self) -> None:
        for delay in (0.0, *self.backoff):
            threading.Event().wait(delay)
            try:
                with socket.create_connection(self.address, timeout=1):
                    self.delivered = True
                    return
            except OSError:
                log.warning("delivery to %s:%s failed", *self.address)

    def post(self) -> None:
        self._sender = threading.Thread(target=self._send, name="webhook-sender", daemon=True)
        self._sender.start()

    def flush(self) -> bool:
        assert self._sender is not None
        self._sender.join()
        return self.delivered


class SmtpClient:
    def __init__(self, host: str, retries: int = 3) -> None:
        self.host = host
        self.retries = retries

    def send(self, to: str, body: str) -> bool:
        raise NotImplementedError("network")


def deliver(client: Any, to: str, body: str) -> int:
    """Send with the client's own retry budget; the number of attempts used."""
    for attempt in range(1, client.retries + 1):
        if client.send(to, body):
            return attempt
    return client.retries


def subject_line(subject: str, max_bytes: int = 16) -> str:
    """Subjects are cut to the gateway's byte limit."""
    return subject.encode("utf-8")[:max_bytes].decode("utf-8")


def closed_port() -> tuple[str, int]:
    """A local address nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()


def render_message(name: str, **fields: object) -> str:
    """Render a template; the templates module is loaded lazily on first use."""
    import importlib

    return importlib.import_module("notify.templates").render(name, **fields)


def fan_out(executor: Any, recipients: list[str], outbox: dict[str, str],
            templates: dict[str, str]) -> None:
    """Queue one personalised message per recipient; the executor sends them."""

    def render_one(name: str) -> None:
        outbox[name] = templates[name.split("@")[1]].format(name=name)

    for name in recipients:
        executor.submit(render_one, name)
