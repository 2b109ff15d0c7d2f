"""Every use of redis-py beyond its documented API, in one place: raw packed round trips on a pooled connection.

The library (and the retention job) send packed RESP and read the replies straight off the connection's socket
with one hiredis reader, which redis-py has no public API for: `Connection._sock`, its health-check deadline, and
`send_packed_command`. The distribution bounds redis-py (``redis>=5.0,<9``, client/pyproject.toml) for that
reason, and `check_client` refuses clients these reads cannot serve (RESP3, connections that are not sockets)
when a `Store` is built, instead of failing later on a reply of another shape. Why raw: BENCHMARKS.md.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any, Final

import hiredis
import redis
from redis.connection import AbstractConnection, Connection
from redis.exceptions import ExecAbortError, NoPermissionError, ResponseError

from memory_client.errors import ConfigError

__all__ = ["check_client", "disconnect", "endpoint", "lease", "read_replies", "release", "send"]


def check_client(client: object, where: str = "client=") -> None:
    """Refuse a client whose connections the raw round trips cannot use, naming the setting (ConfigError).

    A RESP3 client (``protocol=3``, in the URL or as an argument) gets replies of other shapes (maps where the
    library reads flat lists: `agent_report()` would fail with KeyError), and a connection class that is not one of
    redis-py's socket connections (a wrapper, a client-side-caching proxy) has no socket to read.
    """
    if not isinstance(client, redis.Redis):
        raise ConfigError(f"{where} must be a sync redis.Redis client, got {type(client).__name__}")
    pool = client.connection_pool
    kwargs: dict[str, Any] = getattr(pool, "connection_kwargs", {})
    protocol = kwargs.get("protocol")
    if protocol not in (None, 2, "2"):
        raise ConfigError(
            f"{where} speaks RESP{protocol} (protocol={protocol}); the library reads RESP2 replies only: "
            f"drop protocol={protocol} from REDIS_URL or the client"
        )
    kind = getattr(pool, "connection_class", None)
    if not (isinstance(kind, type) and issubclass(kind, AbstractConnection)) or getattr(pool, "cache", None):
        name = getattr(kind, "__name__", type(kind).__name__)
        raise ConfigError(
            f"{where} uses connections of class {name}, not redis-py's socket connections: the library reads "
            "replies off the socket (a wrapped or caching client cannot be used)"
        )


def endpoint(client: redis.Redis) -> str:
    """host:port of the client's pool, for error messages."""
    kwargs = client.connection_pool.connection_kwargs
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


def lease(client: redis.Redis) -> Connection:
    """A connection from the client's pool (connected, authenticated); give it back with `release`."""
    conn: Connection = client.connection_pool.get_connection()
    return conn


def release(client: redis.Redis, conn: Connection) -> None:
    client.connection_pool.release(conn)


def disconnect(conn: Connection) -> None:
    """Close the socket: no WATCH, MULTI or unread reply survives to the connection's next user."""
    conn.disconnect()  # type: ignore[no-untyped-call]


def send(conn: Connection, packed: bytes, *, check_health: bool = True) -> None:
    """Write packed commands. `check_health=False` skips redis-py's PING of an idle connection, whose reconnect
    would silently drop a WATCH."""
    conn.send_packed_command([packed], check_health=check_health)  # type: ignore[no-untyped-call]


def _reply_error(message: str) -> ResponseError:
    """hiredis' factory for error replies: the redis-py exception classes the rest of the library expects."""
    code = message.partition(" ")[0]
    if code == "NOPERM":
        return NoPermissionError(message)
    if code == "EXECABORT":
        return ExecAbortError(message)
    return ResponseError(message)


_MORE: Final = object()  # hiredis' "not enough data yet"; RESP2 replies are never this object
_readers = threading.local()  # one reply reader per thread: empty after every complete read, dropped on failure


def _reader() -> hiredis.Reader:
    try:
        reader: hiredis.Reader = _readers.reader
    except AttributeError:
        reader = _readers.reader = hiredis.Reader(replyError=_reply_error, notEnoughData=_MORE)
    return reader


def read_replies(conn: Connection, count: int) -> list[Any]:
    """Read `count` replies from `conn` in as few socket reads as the data allows.

    Error replies come back as ResponseError instances in place (nested ones inside EXEC's array too), so one
    refused command does not hide the replies after it. Socket failures raise redis' TimeoutError or
    ConnectionError, as redis-py's own reads do; the caller disconnects the connection then.
    """
    sock: socket.socket | None = getattr(conn, "_sock", None)  # redis-py has no public accessor for the socket
    if sock is None:
        raise redis.ConnectionError("the connection is closed")
    reader = _reader()  # empty: every read before took all it was fed
    replies: list[Any] = []
    try:
        while len(replies) < count:
            data = sock.recv(65536)
            if not data:
                raise redis.ConnectionError("the server closed the connection")
            reader.feed(data)
            replies += iter(reader.gets, _MORE)  # every reply complete so far
        if len(replies) > count:
            raise redis.ConnectionError(f"the server sent {len(replies)} replies to {count} commands")
    except BaseException as exc:
        del _readers.reader  # it may hold part of a reply
        if isinstance(exc, TimeoutError):
            raise redis.TimeoutError("timed out reading replies") from None
        if isinstance(exc, hiredis.ProtocolError):
            raise redis.ConnectionError("the server's reply is not valid RESP") from None
        if isinstance(exc, OSError):
            raise redis.ConnectionError(f"reading replies failed ({type(exc).__name__})") from None
        raise
    if conn.health_check_interval:  # as redis-py's read_response: a live connection needs no PING for a while
        conn.next_health_check = time.monotonic() + conn.health_check_interval  # type: ignore[assignment]
    return replies
