"""Round trips to the store: plain reads, and optimistic transactions that carry their audit event.

Scripts are denied to tenant users, so atomicity comes from MULTI/EXEC and consistency from WATCH. A
transaction with reads costs two round trips on one connection: (1) WATCH + reads (+ the audit head), (2) MULTI,
the audit XADD linking to that head, the writes, EXEC. An audited write without reads (an append) usually costs
one, on a connection kept watching the audit stream since the previous EXEC (see `Store.transact`). When another
writer moved a watched key (usually the audit stream), EXEC returns nil, nothing was written, and the whole
thing is retried. Commands are sent raw because redis-py's pipelines spend a round trip per command after WATCH.

EXEC is all or nothing only for commands refused while queueing (ACLs, syntax); a command that fails at run time
(a key of another type, a stream whose last id is at the maximum) does not undo the others. So the audit event is
queued first (a run-time failure is never the event missing from what was written), the head it links to is
refused when it is ahead of this client's clock by more than `SKEW_MS` (a far-future or maximal id would make the
event's XADD fail, or every later event inherit it), and any failure inside EXEC is a `PartialWriteError`.
Every redis-py exception becomes one of the library's typed errors (`memory_client.errors`).
"""

from __future__ import annotations

import enum
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, NamedTuple, NoReturn

import redis
from redis.connection import Connection
from redis.exceptions import (
    AuthenticationError,
    ExecAbortError,
    NoPermissionError,
    RedisError,
    ResponseError,
)

from memory_client._cluster import Router, redirect_of
from memory_client._config import MemoryConfig
from memory_client._redis import check_client, disconnect, endpoint, lease, read_replies, release, send
from memory_client._resp import Command, Packed, names, pack
from memory_client.audit import GENESIS, AuditEvent
from memory_client.contract import SKEW_MS
from memory_client.errors import (
    AuditTrailError,
    ConflictError,
    MemoryConnectionError,
    MemoryPermissionError,
    NotReplicatedError,
    PartialWriteError,
    StoreError,
)

__all__ = ["Plan", "Replies", "Store", "decode_fields", "read_replies"]

# What a transaction writes, decided from what it read: the commands (maybe packed already) and the audit event
# (None: not audited).
Plan = tuple[Sequence[Command] | Packed, AuditEvent | None]

_MAX_ATTEMPTS: Final = 200
# A primed connection is used only this soon after priming: older ones may have been closed by the server's idle
# timeout, and a reconnect (or health-check PING reconnecting) would silently drop the WATCH the fast path needs.
_PRIMED_MAX_AGE: Final = 5.0
# On a cluster: how long an operation waits for a node to serve the tenant's slot again (a failover, a migration).
FAILOVER_TIMEOUT: Final = 20.0


class Replies(list[Any]):
    """A transaction's replies to its writes, in order; `event_id` is its audit event's stream id (None: none)."""

    event_id: str | None = None


def decode_fields(flat: Sequence[bytes]) -> dict[str, bytes]:
    """A stream entry's or HGETALL's flat field/value list as a dict with text names."""
    return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat) - 1, 2)}


_ERRORS: Final = frozenset({ResponseError, NoPermissionError, ExecAbortError})  # what `_redis` makes of errors


def _first_error(replies: Sequence[Any]) -> ResponseError | None:
    if _ERRORS.isdisjoint(map(type, replies)):  # the usual case, decided in C
        return None
    first = None
    for reply in replies:
        if isinstance(reply, ResponseError):
            # EXECABORT only says "an earlier command was refused"; the refusal itself is the useful error.
            if not isinstance(reply, ExecAbortError):
                return reply
            first = first or reply
    return first


def _error_code(error: BaseException) -> str:
    """The server's error code (its first word: WRONGTYPE, ERR, OOM, ...): the rest may quote arguments."""
    return str(error).partition(" ")[0] or type(error).__name__


def _check_head(head: Any, now_ms: int, stream: str) -> None:
    """Refuse to link an event to a head id ahead of the clock: a far-future id would be inherited by every later
    event, and one at the maximum makes the event's XADD fail at run time, after the writes went through."""
    if not head:
        return
    ms = int(head[0][0].partition(b"-")[0])
    if ms > now_ms + SKEW_MS:
        raise AuditTrailError(
            f"the audit stream {stream}'s newest entry id {head[0][0].decode()} is ahead of this client's clock by "
            f"more than {SKEW_MS // 1000} s (written around the library); nothing was written"
        )


def _head_hash(head: Any) -> str:
    """The `h` of the newest audit event, from XREVRANGE ... COUNT 1 (`[[id, [field, value, ...]]]`)."""
    if not head:
        return GENESIS
    flat = head[0][1]
    if len(flat) >= 2 and flat[-2] == b"h":  # every writer puts it last
        return str(flat[-1].decode())
    return decode_fields(flat).get("h", b"").decode() or GENESIS


class _Primed(NamedTuple):
    """A connection that WATCHes the audit stream, and the head it read right after the WATCH."""

    conn: Connection
    client: redis.Redis  # whose pool the connection belongs to
    head: Any
    forks: int  # `_forks` when primed: a child process must not use its parent's socket
    at: float


_forks = 0


def _forked() -> None:
    global _forks  # noqa: PLW0603 - a counter the fork hook bumps; os.getpid() per write is a system call
    _forks += 1


os.register_at_fork(after_in_child=_forked)


_MULTI: Final = pack([("MULTI",)])


class _Again(enum.Enum):
    """Why a transaction attempt wrote nothing and runs again."""

    AT_ONCE = "the connection was lost before EXEC's reply, and the audit trail proves it did not run"
    BACK_OFF = "a watched key moved"


class _Written(NamedTuple):
    """An attempt that ran: what it read, EXEC's replies (the event's first), the commands' names, the event's hash,
    and WAIT's reply (how many replicas confirmed; None when the store does not wait for replicas)."""

    data: list[Any]
    outcome: Sequence[Any]
    names: tuple[str, ...]
    digest: str
    confirmed: Any = None


class _Close(NamedTuple):
    """What follows a transaction's queued commands: EXEC, then WAIT for replicas (`waits`: its reply is right after
    EXEC's), then, when audited, the WATCH and head read that prime the next one. `replies`: MULTI's and these."""

    packed: bytes
    replies: int
    waits: bool


class _RepliesLost(MemoryConnectionError):
    """The connection died after EXEC, and the audit trail shows the write was applied: never run it again."""


_Step = _Written | _Again


class _Lease:
    """A pooled connection (or the primed one) for one operation, as a context manager. On any failure it is
    disconnected, so no WATCH or MULTI state ever reaches its next user; released to the pool on success unless
    it became the primed connection (`kept`)."""

    __slots__ = ("client", "conn", "kept", "store")

    def __init__(self, store: Store, primed: _Primed | None) -> None:
        self.store = store
        self.kept = False
        if primed is not None:
            self.conn, self.client = primed.conn, primed.client
            return
        self.client = store.client  # the node's pool at lease time: on a cluster, `store.client` may move meanwhile
        try:
            self.conn = lease(self.client)
        except (AuthenticationError, NoPermissionError):
            raise MemoryPermissionError(f"{store.who()} could not authenticate at {store.where}") from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise MemoryConnectionError(f"cannot reach the store at {store.where} ({type(exc).__name__})") from None
        except RedisError as exc:  # e.g. HELLO refused while connecting
            raise StoreError(f"connecting to the store at {store.where} failed: {_error_code(exc)}") from None

    def __enter__(self) -> _Lease:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        client = self.client
        if kind is None:
            if not self.kept:
                release(client, self.conn)
            return
        disconnect(self.conn)
        release(client, self.conn)
        if issubclass(kind, AuthenticationError):  # a reconnect whose AUTH was refused (user deleted, new password)
            raise MemoryPermissionError(f"{self.store.who()} could not authenticate at {self.store.where}") from None
        if issubclass(kind, (redis.ConnectionError, redis.TimeoutError)):
            raise MemoryConnectionError(f"lost the connection to {self.store.where} ({kind.__name__})") from None
        if issubclass(kind, NoPermissionError):
            raise MemoryPermissionError(f"{self.store.who()} was refused at {self.store.where}") from None
        if issubclass(kind, RedisError):  # anything else redis-py may raise: typed, without the server's text
            raise StoreError(f"the store at {self.store.where} failed: {_error_code(error or kind())}") from None


@dataclass
class Store:
    config: MemoryConfig
    client: redis.Redis
    _primed: _Primed | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _closes: dict[tuple[bool, bool], _Close] = field(init=False, repr=False)  # by (audited, durable)
    _audit: tuple[str, str] = field(init=False, repr=False)  # the audit stream and the actor its events name
    _router: Router | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        check_client(self.client)
        config = self.config
        audit = config.audit_key
        prime: list[Command] = [("WATCH", audit), ("XREVRANGE", audit, "+", "-", "COUNT", 1)]
        wait: list[Command] = [("WAIT", config.wait_replicas, config.wait_timeout_ms)] if config.wait_replicas else []

        def close(audited: bool, durable: bool) -> _Close:
            tail = [*(wait if durable else []), *(prime if audited else [])]
            return _Close(pack([("EXEC",), *tail]), 2 + len(tail), durable and bool(wait))

        self._closes = {(a, d): close(a, d) for a in (True, False) for d in (True, False)}
        self._audit = (audit, config.actor)
        if config.cluster_nodes:
            self._router = Router(
                self.client,
                config.cluster_nodes,
                self._probe,
                lost=MemoryConnectionError,
                final=_RepliesLost,
                skip=(MemoryPermissionError,),
                timeout=FAILOVER_TIMEOUT,
                moved=self._moved,
            )

    @property
    def where(self) -> str:
        return endpoint(self.client)

    def who(self) -> str:
        return self.config.username or "the tenant user"

    def _raise(self, error: ResponseError, names: Sequence[str]) -> NoReturn:
        if self._router is not None and (redirect := redirect_of(error, self._router.node)) is not None:
            raise redirect  # nothing was applied: the router moves to the node named and runs the operation again
        if isinstance(error, NoPermissionError):
            denied = sorted(set(names) - {"MULTI", "EXEC", "WATCH"})
            raise MemoryPermissionError(
                f"{self.who()} is not allowed one of {', '.join(denied)} on these keys "
                "(another tenant's prefix, another agent's area under strict isolation, or a denied command)"
            ) from None
        raise StoreError(
            f"the store refused one of {', '.join(sorted(set(names) - {'MULTI', 'EXEC', 'WATCH'}))}: "
            f"{_error_code(error)} (a key holds another type than the library writes there, or a bad argument)"
        ) from None

    def _take_primed(self) -> _Primed | None:
        with self._lock:
            primed, self._primed = self._primed, None
        if primed is None or primed.forks != _forks:  # after a fork the socket is the parent's: leave it
            return None
        if time.monotonic() - primed.at > _PRIMED_MAX_AGE or primed.client is not self.client:
            disconnect(primed.conn)
            release(primed.client, primed.conn)
            return None
        return primed

    def _keep_primed(self, lease: _Lease, head: Any) -> None:
        with self._lock:
            if self._primed is None and lease.client is self.client:
                self._primed = _Primed(lease.conn, lease.client, head, _forks, time.monotonic())
                lease.kept = True

    def close(self) -> None:
        primed = self._take_primed()
        if primed is not None:
            disconnect(primed.conn)
        if self._router is not None:
            self._router.close()

    # -- a cluster: the node serving the tenant's slot ----------------------------------------------------

    def _moved(self, client: redis.Redis) -> None:
        """The router found the tenant's slot at another node: talk to it (the primed connection is the old one's)."""
        with self._lock:
            self.client = client

    def _probe(self, client: redis.Redis) -> None:
        """Whether `client`'s node serves the tenant's slot: a keyed read of the audit stream (the router's probe)."""
        try:
            conn = lease(client)
        except (AuthenticationError, NoPermissionError):
            raise MemoryPermissionError(f"{self.who()} could not authenticate at {endpoint(client)}") from None
        except RedisError as exc:
            raise MemoryConnectionError(f"cannot reach {endpoint(client)} ({type(exc).__name__})") from None
        try:
            reply = self._roundtrip(conn, [("XLEN", self.config.audit_key)])[0]
        except RedisError as exc:
            disconnect(conn)
            raise MemoryConnectionError(f"lost {endpoint(client)} ({type(exc).__name__})") from None
        finally:
            release(client, conn)
        if isinstance(reply, ResponseError):
            redirect = redirect_of(reply, endpoint(client))
            if redirect is not None:
                raise redirect

    def _connection(self, primed: _Primed | None = None) -> _Lease:
        return _Lease(self, primed)

    @staticmethod
    def _roundtrip(conn: Connection, commands: Sequence[Command], *, check_health: bool = True) -> list[Any]:
        return Store._exchange(conn, pack(commands), len(commands), check_health=check_health)

    @staticmethod
    def _exchange(conn: Connection, packed: bytes, replies: int, *, check_health: bool = True) -> list[Any]:
        send(conn, packed, check_health=check_health)
        return read_replies(conn, replies)

    def read(self, commands: Sequence[Command]) -> list[Any]:
        """Run read commands in one round trip; raw RESP2 replies (bytes), in order.

        Reads are idempotent, so a connection that turns out dead (server restart) is retried once; on a cluster,
        at the node serving the tenant's slot, within `FAILOVER_TIMEOUT`.
        """
        if self._router is not None:
            return self._router.run(lambda: self._read(commands))
        return self._read(commands)

    def _read(self, commands: Sequence[Command]) -> list[Any]:
        try:
            with self._connection() as lease:
                replies = self._roundtrip(lease.conn, commands)
        except MemoryConnectionError:
            with self._connection() as lease:
                replies = self._roundtrip(lease.conn, commands)
        error = _first_error(replies)
        if error is not None:
            self._raise(error, names(commands))
        return replies

    def _applied(self, digest: str, head: Any) -> bool:
        """Whether a transaction whose connection died was applied, decided by its audit event.

        The event was queued in the same MULTI as the writes (all or nothing), linked to `head` under WATCH, so
        if it was applied it is exactly the entry after `head`. Raises MemoryConnectionError if the store is
        still unreachable.
        """
        start = f"({head[0][0].decode()}" if head else "-"
        after = self.read([("XRANGE", self.config.audit_key, start, "+", "COUNT", 1)])[0]
        return bool(after) and decode_fields(after[0][1]).get("h", b"").decode() == digest

    def transact(
        self,
        plan: Callable[[list[Any]], Plan],
        *,
        reads: Sequence[Command] = (),
        watch: Sequence[str] = (),
        audited: bool = True,
        durable: bool = True,
    ) -> tuple[list[Any], Replies]:
        """Read, decide, write atomically; retried while watched keys move. Returns (reads, write replies).

        `plan` may raise (QuotaExceededError, ConflictError): nothing is written then.

        Fast path: every audited EXEC is followed, in the same round trip, by WATCH on the audit stream and a
        read of its head, and that connection is kept aside ("primed"). The next audited transaction without
        reads of its own then needs one round trip: MULTI, writes, XADD linking to that head, EXEC. If anyone
        appended since, the WATCH makes EXEC fail, and the re-primed head from the same round trip is retried.

        On a cluster an attempt answered MOVED (nothing ran) moves to the node named and runs again; one whose
        node died is run again at the new primary unless the audit trail there shows it applied. With
        `wait_replicas`, EXEC is followed by WAIT, and a write fewer replicas confirmed raises NotReplicatedError
        (`durable=False`: not waited for, as the audit events of reads).
        """
        if self._router is not None:
            return self._router.run(lambda: self._transact(plan, reads, watch, audited, durable))
        return self._transact(plan, reads, watch, audited, durable)

    def _transact(
        self,
        plan: Callable[[list[Any]], Plan],
        reads: Sequence[Command],
        watch: Sequence[str],
        audited: bool,
        durable: bool,
    ) -> tuple[list[Any], Replies]:
        fast = audited and not reads and not watch
        for attempt in range(_MAX_ATTEMPTS):
            primed = self._take_primed() if fast else None
            if primed is not None:
                step = self._primed_attempt(plan, primed, durable)
            else:
                step = self._watched_attempt(plan, reads, watch, audited, durable)
            if isinstance(step, _Written):
                replies = self._replies(step)
                if step.confirmed is not None:
                    self._check_replicated(step)
                return step.data, replies
            if step is _Again.BACK_OFF:  # jitter: concurrent writers of one trail must not retry in lockstep
                time.sleep(random.uniform(0, min(0.02, 0.0005 * 2**attempt)))  # noqa: S311 - jitter, not crypto
        raise ConflictError(f"gave up after {_MAX_ATTEMPTS} attempts: too many concurrent writers")

    def _primed_attempt(self, plan: Callable[[list[Any]], Plan], primed: _Primed, durable: bool) -> _Step:
        """The fast path: the connection WATCHes the audit stream already and holds its head; nothing to read."""
        with self._connection(primed) as lease:
            # No health-check PING on the primed connection: its reconnect would drop the WATCH.
            return self._decide_and_write(
                lease, plan, [], primed.head, audited=True, watching=True, fresh=False, durable=durable
            )

    def _watched_attempt(
        self,
        plan: Callable[[list[Any]], Plan],
        reads: Sequence[Command],
        watch: Sequence[str],
        audited: bool,
        durable: bool,
    ) -> _Step:
        """WATCH the keys (and the audit stream) and read, in one round trip; then decide and write."""
        with self._connection() as lease:
            data, head = self._watch_and_read(lease, reads, watch, audited)
            watching = bool(watch) or audited
            return self._decide_and_write(
                lease, plan, data, head, audited=audited, watching=watching, fresh=True, durable=durable
            )

    def _decide_and_write(
        self,
        lease: _Lease,
        plan: Callable[[list[Any]], Plan],
        data: list[Any],
        head: Any,
        *,
        audited: bool,
        watching: bool,
        fresh: bool,
        durable: bool,
    ) -> _Step:
        """Ask `plan` what to write, then MULTI, the audit event, the writes, EXEC (audited: then WATCH and the new
        head, kept as the next call's primed state) in one round trip."""
        commands, event = plan(data)
        if not commands and event is None:
            if watching:
                self._roundtrip(lease.conn, [("UNWATCH",)])
            return _Written(data, [], (), "")
        body = commands if isinstance(commands, Packed) else Packed.of(commands)
        names, xadd, digest = body.names, b"", ""
        if event is not None:
            xadd, digest = self._link(event, head)
            names = ("XADD", *names)  # queued first: see the module docstring
        close = self._closes[audited, durable]
        packed = b"".join((_MULTI, xadd, body.data, close.packed))
        written = self._send_exec(lease.conn, packed, len(names) + close.replies, fresh, digest, head)
        if written is None:
            return _Again.AT_ONCE
        outcome = written[len(names) + 1]
        if isinstance(outcome, ResponseError):  # refused while queueing: nothing ran
            self._raise(_first_error(written) or outcome, names)
        if audited and _first_error(written[-2:]) is None:  # WATCH and the head read went through
            # A stale WATCH on a connection that goes back to the pool can only cause a retry.
            self._keep_primed(lease, written[-1])
        if outcome is None:  # a watched key moved: nothing ran
            return _Again.BACK_OFF
        return _Written(data, outcome, names, digest, written[len(names) + 2] if close.waits else None)

    def _check_replicated(self, step: _Written) -> None:
        wanted = self.config.wait_replicas
        confirmed = step.confirmed if isinstance(step.confirmed, int) else 0
        if confirmed < wanted:
            why = (
                f"WAIT was refused: {_error_code(step.confirmed)}"
                if isinstance(step.confirmed, ResponseError)
                else (f"{confirmed} of {wanted} replica(s) confirmed it within {self.config.wait_timeout_ms} ms")
            )
            raise NotReplicatedError(
                f"the write was applied at {self.where} with its audit event, but {why}: it is not acknowledged "
                "as durable (read it back before writing it again)",
                wanted,
                confirmed,
            )

    def _send_exec(
        self, conn: Connection, packed: bytes, replies: int, fresh: bool, digest: str, head: Any
    ) -> list[Any] | None:
        """Send the transaction and read its replies; None when the connection was lost and the audit trail proves
        the transaction did not run (safe to run again)."""
        try:
            send(conn, packed, check_health=fresh)
            return read_replies(conn, replies)
        except (redis.ConnectionError, redis.TimeoutError):
            disconnect(conn)
            if not digest:  # unaudited: nothing tells whether it was applied
                raise
            if self._applied(digest, head):
                raise _RepliesLost(
                    f"lost the connection to {self.where} after the write was applied; its replies are lost"
                ) from None
            return None

    def _link(self, event: AuditEvent, head: Any) -> tuple[bytes, str]:
        """The event's XADD linked to `head` (refused when the head is ahead of the clock), and its hash."""
        stream, actor = self._audit
        now_ms = time.time_ns() // 1_000_000
        _check_head(head, now_ms, stream)
        return event.xadd(stream, actor, now_ms, _head_hash(head))

    def _replies(self, step: _Written) -> Replies:
        """EXEC's replies as the caller's (the event's stripped, its id kept); a run-time failure raises, after the
        connection went back (a PartialWriteError leaves it usable: the transaction is over)."""
        if _first_error(step.outcome) is not None:
            self._partial(step.outcome, step.names, step.digest)
        replies = Replies(step.outcome[1:] if step.digest else step.outcome)
        if step.digest:
            replies.event_id = step.outcome[0].decode()
        return replies

    def _partial(self, outcome: Sequence[Any], names: Sequence[str], digest: str) -> NoReturn:
        errors = [(name, r) for name, r in zip(names, outcome, strict=True) if isinstance(r, ResponseError)]
        failed = ", ".join(f"{name} ({_error_code(r)})" for name, r in errors)
        audited = bool(digest) and not isinstance(outcome[0], ResponseError)
        raise PartialWriteError(
            f"{len(errors)} of {len(names)} commands failed at run time on {self.where}: {failed}; the others were "
            f"applied (Redis does not roll back), the audit event {'was' if audited else 'was not'}",
            tuple(name for name, _ in errors),
            audited,
        )

    def _watch_and_read(
        self, lease: _Lease, reads: Sequence[Command], watch: Sequence[str], audited: bool
    ) -> tuple[list[Any], Any]:
        # A command must be allowed entirely by the root rules or entirely by one selector: WATCH on a data key
        # and the audit key together is refused, so each gets its own WATCH.
        first: list[Command] = [("WATCH", *watch)] if watch else []
        if audited:
            first.append(("WATCH", self.config.audit_key))
        watches = len(first)
        first += reads
        if audited:
            first.append(("XREVRANGE", self.config.audit_key, "+", "-", "COUNT", 1))
        if not first:
            return [], None
        try:
            replies = self._roundtrip(lease.conn, first)
        except (redis.ConnectionError, redis.TimeoutError):
            # Nothing is written in this round trip, so a dead pooled connection is safely replaced once.
            disconnect(lease.conn)
            replies = self._roundtrip(lease.conn, first)
        error = _first_error(replies)
        if error is not None:
            self._raise(error, names(first))
        return replies[watches : watches + len(reads)], (replies[-1] if audited else None)
