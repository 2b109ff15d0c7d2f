"""A tenant on a Redis/Valkey Cluster: which node serves its slot, found by following the cluster's redirections.

Every key of a tenant carries one hash tag (`memory_client.contract.hash_tag`), so all of them live in one slot and
the library talks to one node at a time: the primary serving that slot. No CLUSTER command is needed (tenant users
are not granted any): a node that does not serve the slot answers a keyed command with ``MOVED <slot> <host:port>``,
and the library moves there. Nothing is applied by a command answered MOVED (inside MULTI the transaction is then
aborted), so the operation is simply run again at the node named. ASK, TRYAGAIN and CLUSTERDOWN (the slot is being
migrated, or the cluster has no primary for it yet) and a node that cannot be reached (a failover in progress) are
waited out: the nodes the Secret lists are asked in turn until one serves the slot, within a deadline.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

import redis
from redis.exceptions import ResponseError

__all__ = ["Redirect", "Router", "redirect_of"]

T = TypeVar("T")

#: MOVED replies followed in a row before giving up (a cluster whose nodes disagree about a slot's owner).
_MAX_HOPS: Final = 8
_WAITED: Final = frozenset({"ASK", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "LOADING", "READONLY"})


class Redirect(Exception):
    """A node answered that it does not serve the tenant's slot: `node` (host:port) does, or None when the slot has
    no settled owner right now (migrating, failing over); nothing was applied."""

    def __init__(self, node: str | None, code: str) -> None:
        super().__init__(code)
        self.node = node
        self.code = code


def redirect_of(error: ResponseError, current: str) -> Redirect | None:
    """The redirection an error reply is, if it is one. `current` (host:port) fills an empty host in MOVED."""
    code, _, rest = str(error).partition(" ")
    if code == "MOVED":
        target = rest.rpartition(" ")[2]
        host, _, port = target.rpartition(":")
        return Redirect(f"{host or current.rpartition(':')[0]}:{port}", code)
    if code in _WAITED:
        return Redirect(None, code)
    return None


class Router:
    """The node a `Store` talks to, and the way to another when the cluster says so.

    `run(op)` runs an operation and, on a redirection or a lost node (`lost`), hands the store the client of
    another node (`moved`) and runs it again: the operation must be safe to repeat whenever it raised `lost` or a
    redirection, which the store's are (`final` is the exception that says a write was applied: never repeated).
    `probe(client)` asks one node with a keyed command of the tenant's slot; nodes it fails on with `skip`
    (e.g. a node that does not know the tenant's user yet) are passed over. Clients of nodes used before are kept:
    connections borrowed from them go back to them.
    """

    def __init__(
        self,
        client: redis.Redis,
        seeds: Iterable[str],
        probe: Callable[[redis.Redis], Any],
        *,
        lost: type[Exception],
        final: type[Exception],
        skip: tuple[type[Exception], ...],
        timeout: float,
        moved: Callable[[redis.Redis], None],
    ) -> None:
        self._clients: dict[str, redis.Redis] = {}
        self._lock = threading.Lock()
        self._template = client
        self._node = self._remember(client)
        self._seeds = tuple(dict.fromkeys([self._node, *seeds]))
        self._probe = probe
        self._lost, self._final, self._skip = lost, final, skip
        self._timeout = timeout
        self._moved = moved

    @property
    def node(self) -> str:
        return self._node

    def _remember(self, client: redis.Redis) -> str:
        kwargs = client.connection_pool.connection_kwargs
        node = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
        self._clients.setdefault(node, client)
        return node

    def _client_at(self, node: str) -> redis.Redis:
        """A client of `node` with the same credentials and settings as the Secret's (one per node, kept)."""
        with self._lock:
            client = self._clients.get(node)
            if client is None:
                pool = self._template.connection_pool
                host, _, port = node.rpartition(":")
                kwargs = {**pool.connection_kwargs, "host": host.strip("[]"), "port": int(port)}
                client = redis.Redis(connection_pool=type(pool)(connection_class=pool.connection_class, **kwargs))
                self._clients[node] = client
            return client

    def use(self, node: str) -> None:
        """Talk to `node` from now on."""
        client = self._client_at(node)
        with self._lock:
            if node == self._node:
                return
            self._node = node
        self._moved(client)

    def run(self, op: Callable[[], T]) -> T:
        deadline: float | None = None
        hops = 0
        while True:
            try:
                return op()
            except Redirect as redirect:
                if redirect.node is not None and hops < _MAX_HOPS:
                    hops += 1
                    self.use(redirect.node)
                    continue
                problem = f"the tenant's slot answers {redirect.code}"
            except self._final:  # the write was applied and only its replies were lost: never again
                raise
            except self._lost as exc:
                problem = str(exc)
            now = time.monotonic()
            deadline = deadline or now + self._timeout
            if now >= deadline:
                raise self._lost(
                    f"no node of the cluster served the tenant's slot within {self._timeout:g} s: {problem}"
                ) from None
            hops = 0
            time.sleep(random.uniform(0.05, 0.2))  # noqa: S311 - jitter, not crypto
            self._find()

    def _find(self) -> None:
        """Ask the nodes in turn until one serves the slot (or names the one that does)."""
        for node in (self._node, *self._seeds):
            try:
                self._probe(self._client_at(node))
            except Redirect as redirect:
                if redirect.node is not None:
                    self.use(redirect.node)
                    return
            except (self._lost, *self._skip):
                continue
            else:
                self.use(node)
                return

    def close(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
        for client in clients:
            if client is not self._template:  # the caller's own client: its to close
                client.close()
