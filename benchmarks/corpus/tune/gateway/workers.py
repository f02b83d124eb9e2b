"""Echo workers in child processes, spoken to over a pipe."""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.connection import Connection


def _serve(conn: Connection, requests: int) -> None:
    for _ in range(requests):
        conn.send(conn.recv())
    conn.close()


class Worker:
    """A child that answers ``requests`` requests and exits. Requests sent before start()
    wait in the pipe."""

    def __init__(self, requests: int) -> None:
        self._conn, self._child = mp.Pipe()
        self.process = mp.Process(target=_serve, args=(self._child, requests),
                                  name="echo-worker")

    def start(self) -> None:
        self.process.start()
        self._child.close()

    def send(self, request: object) -> None:
        self._conn.send(request)

    def recv(self) -> object:
        return self._conn.recv()

    def stop(self) -> None:
        self._conn.close()
        self.process.join(5)
