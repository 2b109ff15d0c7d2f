"""Raw RESP2 round trips on a redis-py client's pooled connections: the library's own fast path (commands packed
once with holes, replies read in as few socket reads as the data allows), offered to the operator's jobs.

Everything here that touches redis-py beyond its documented API lives in `memory_client._redis`, bounded by the
distribution's redis-py range; `check_client` refuses a client it cannot serve (RESP3, wrapped connections).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis
from redis.connection import Connection

from memory_client._redis import check_client, disconnect, lease, read_replies, release, send
from memory_client._resp import HOLE, Arg, Command, Hole, Packed, Shape, Template, names, pack

__all__ = [
    "HOLE",
    "Arg",
    "Command",
    "Connection",
    "Hole",
    "Packed",
    "Shape",
    "Template",
    "check_client",
    "connection",
    "exchange",
    "names",
    "pack",
    "read_replies",
]


@contextmanager
def connection(client: redis.Redis) -> Iterator[Connection]:
    """A pooled connection for raw pipelining (the client checked first); dropped on any failure, since it may hold
    replies not yet read."""
    check_client(client)
    conn = lease(client)
    try:
        yield conn
    except BaseException:
        disconnect(conn)
        raise
    finally:
        release(client, conn)


def exchange(conn: Connection, packed: Sequence[bytes], replies: int) -> list[Any]:
    """One round trip: the packed commands out, their `replies` back (error replies as ResponseError values)."""
    send(conn, b"".join(packed))
    return read_replies(conn, replies)
