"""Reading a round trip's replies off the socket: split data, errors in place, and no state left by a failed read."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any, cast

import pytest
import redis
from redis.connection import Connection
from redis.exceptions import ExecAbortError, NoPermissionError, ResponseError

from memory_client._redis import read_replies


class _Conn:
    """What read_replies uses of a redis-py connection: its socket and health-check bookkeeping."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.health_check_interval = 0


@pytest.fixture
def pair() -> Iterator[tuple[Connection, socket.socket]]:
    ours, server = socket.socketpair()
    ours.settimeout(2)
    yield cast(Connection, _Conn(ours)), server
    ours.close()
    server.close()


REPLIES = b"+OK\r\n-NOPERM no\r\n*3\r\n:1\r\n-ERR wrong\r\n$3\r\nabc\r\n-EXECABORT aborted\r\n"


def _check(replies: list[Any]) -> None:
    assert replies[0] == b"OK"
    assert isinstance(replies[1], NoPermissionError)
    assert replies[2][0] == 1 and isinstance(replies[2][1], ResponseError) and replies[2][2] == b"abc"
    assert isinstance(replies[3], ExecAbortError)


def _next_read_starts_clean() -> None:
    """The next read on this thread finds no half reply of the failed one in front of its data."""
    ours, other = socket.socketpair()
    with ours, other:
        other.sendall(REPLIES)
        _check(read_replies(cast(Connection, _Conn(ours)), 4))


def test_replies_split_across_many_reads_come_back_whole_and_in_order(pair: tuple[Connection, socket.socket]) -> None:
    conn, server = pair

    def dribble() -> None:
        for i in range(len(REPLIES)):
            server.sendall(REPLIES[i : i + 1])

    writer = threading.Thread(target=dribble)
    writer.start()
    replies = read_replies(conn, 4)
    writer.join()
    _check(replies)


def test_a_connection_closed_mid_reply_fails_and_leaves_nothing_behind(pair: tuple[Connection, socket.socket]) -> None:
    conn, server = pair
    server.sendall(b"+OK\r\n$10\r\nabc")  # the second reply cut short
    server.close()
    with pytest.raises(redis.ConnectionError, match="closed the connection"):
        read_replies(conn, 2)
    _next_read_starts_clean()


def test_a_timeout_fails_as_redis_timeout_and_leaves_nothing_behind(pair: tuple[Connection, socket.socket]) -> None:
    conn, server = pair
    cast(_Conn, conn)._sock.settimeout(0.05)
    server.sendall(b"*2\r\n:1\r\n")  # half an array, then silence
    with pytest.raises(redis.TimeoutError):
        read_replies(conn, 1)
    _next_read_starts_clean()


def test_more_replies_than_commands_is_a_broken_connection(pair: tuple[Connection, socket.socket]) -> None:
    conn, server = pair
    server.sendall(b"+OK\r\n+OK\r\n")
    with pytest.raises(redis.ConnectionError, match="2 replies to 1 commands"):
        read_replies(conn, 1)
