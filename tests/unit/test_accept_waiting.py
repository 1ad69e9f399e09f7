"""The index's event loop takes every connection waiting in the listen queue on one turn (index/server.py's
``accept_waiting``), up to the connection limit: a real waitress server on a loopback port, real sockets."""

from __future__ import annotations

import socket
import types

import pytest
import waitress
from waitress.wasyncore import close_all

from index.server import accept_waiting


@pytest.fixture
def make_server():
    made = []

    def make(limit: int):
        server = waitress.create_server(lambda environ, start: [], host="127.0.0.1", port=0, connection_limit=limit,
                                        map={})
        server.handle_accept = types.MethodType(accept_waiting, server)
        made.append(server)
        return server

    yield make
    for server in made:
        close_all(server._map)


def connect(server, count: int) -> list[socket.socket]:
    port = server.socket.getsockname()[1]
    return [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]


def test_one_turn_takes_every_waiting_connection(make_server):
    server = make_server(limit=1000)
    before = len(server._map)  # the listening socket and the trigger
    clients = connect(server, 40)
    server.handle_accept()
    assert len(server._map) - before == 40
    server.handle_accept()  # nothing waits: nothing taken, no error
    assert len(server._map) - before == 40
    for client in clients:
        client.close()


def test_the_connection_limit_still_holds(make_server):
    server = make_server(limit=12)
    clients = connect(server, 30)
    server.handle_accept()
    assert len(server._map) == 12  # the rest wait in the kernel's queue, as waitress leaves them
    for client in clients:
        client.close()
