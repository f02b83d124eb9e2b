from __future__ import annotations

import threading
import time

import pytest
from chatsrv import ChatClient, ChatServer, default_path
from chatsrv.server import decode_frame


@pytest.fixture
def server():
    srv = ChatServer().start()
    yield srv
    srv.stop()


def _members(server: ChatServer, room: str, count: int) -> bool:
    deadline = time.monotonic() + 2
    while len(server.rooms.get(room, ())) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(server.rooms.get(room, ())) >= count


def test_join_is_acknowledged(server):
    client = ChatClient(server.path)
    assert client.join("lobby", "ada") == "OK"
    client.close()


def test_say_is_logged(server):
    client = ChatClient(server.path)
    client.join("lobby", "ada")
    client.say("hello")
    client.close()
    assert server.log == ["ada: hello"]


def test_decode_frame_ascii():
    assert decode_frame(b"\x00\x05hello") == "hello"


def test_decode_frame_with_accents():
    text = "café au lait"
    frame = len(text.encode()).to_bytes(2, "big") + text.encode()
    assert decode_frame(frame) == text


# miguelgrinberg/python-socketio#746 and paulsm/pyzeroconf#4 ("Bad file descriptor" after a
# socket was closed by its own thread): the server broadcasts to a member whose connection
# thread already closed the socket.
def test_broadcast_after_member_left(server):
    leaver = ChatClient(server.path)
    leaver.join("ops", "grace")
    leaver.close()
    time.sleep(0.05)
    assert server.broadcast("ops", "deploy done") == 1


# equinor/ert#2982 family: a client reconnects to a service that has already shut down.
def test_reconnect_after_maintenance(server):
    client = ChatClient(server.path)
    client.join("lobby", "ada")
    client.close()
    server.stop()
    again = ChatClient(server.path)
    assert again.join("lobby", "ada") == "OK"


# Luo et al. FSE 2014 "Network": the server restarts its listener on some runs and drops the
# newest connection.
def test_join_right_after_connect(server, contended):
    if contended:
        server.drop_next = 1
    client = ChatClient(server.path)
    try:
        assert client.join("lobby", "linus") == "OK"
    finally:
        client.close()


# posit-dev/py-shiny#2350 family: messages from concurrent senders asserted in send order.
def test_concurrent_messages_keep_send_order(server):
    clients = [ChatClient(server.path) for _ in range(3)]
    for index, client in enumerate(clients):
        client.join("lobby", f"user{index}")
    turn = [threading.Event() for _ in range(3)]
    turn[2].set()

    def speak(index: int) -> None:
        turn[index].wait(2)  # the last sender's message is on the wire first
        clients[index].say(f"msg-{index}")
        if index > 0:
            turn[index - 1].set()

    threads = [threading.Thread(target=speak, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(3)
    for client in clients:
        client.close()
    assert server.log == ["user0: msg-0", "user1: msg-1", "user2: msg-2"]


# PiCN#4 / fkie/multimaster_fkie#150 family ("Set changed size during iteration"): a member joins
# on its connection thread while the broadcast iterates the room.
def test_broadcast_during_join(server):
    first = ChatClient(server.path)
    first.join("ops", "ada")
    late: list[ChatClient] = []

    def joiner(member) -> None:
        if not late:
            late.append(ChatClient(server.path))
            late[0].join("ops", "linus")

    server.on_deliver = joiner
    try:
        assert server.broadcast("ops", "maintenance at noon") == 1
    finally:
        for client in [first, *late]:
            client.close()


#: Clients the module keeps connected between tests.
_KEPT: list[ChatClient] = []


# A client connection kept open in a module-level list.
def test_client_can_stay_connected(server):
    client = ChatClient(server.path)
    _KEPT.append(client)
    assert client.join("idle", "bot") == "OK"


# A server started on the default path and never stopped: the accept thread and the listening
# socket stay.
def test_service_listens_on_default_path():
    srv = ChatServer(default_path()).start()
    client = ChatClient(srv.path)
    assert client.join("lobby", "ada") == "OK"
    client.close()


# Same root cause as dask/distributed#3800, on a Unix socket path: an earlier test left a server
# bound to the default path.
def test_admin_console_on_default_path():
    console = ChatServer(default_path()).start()
    try:
        client = ChatClient(console.path)
        assert client.join("admin", "root") == "OK"
        client.close()
    finally:
        console.stop()
