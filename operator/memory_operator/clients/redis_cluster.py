"""`ClusterAdmin`: the admin connection to a MemoryStore that is a Redis/Valkey Cluster.

A cluster keeps ACL users per node: SETUSER on one node reaches no other, replicas included, and a replica promoted
by a failover serves only the users it was given itself (docs/cluster.md, measured). So every user operation runs
on every node that can serve (health `online` or `loading`, primaries and replicas), and a node that lost its
users (restarted empty, added later) gets them back from the next pass like any drift. Everything about a
tenant's keys runs on the primary serving the tenant's slot: the cluster layout gives every key of a tenant one
hash tag (`mem:{<ns>:<name>}:`, `audit:{<ns>:<name>}`, `seal:{...}`, `jobs:{...}:`), so a tenant's usage, survey,
trail, seal and deletion are one node's business, never a walk of the whole cluster.

The topology (CLUSTER SHARDS) is read from any node that answers, remembered for `TOPOLOGY_TTL` seconds, and read
again at once when a routed call meets a moved slot or a node that went away (a failover).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from redis.crc import key_slot

from memory_client.seal import TrailInfo
from memory_operator.builders.acl import AclUser, ServerCapabilities
from memory_operator.clients.redis_admin import (
    AclChange,
    RedisAdmin,
    ServerInfo,
    StoreCommandError,
    StoreError,
    StoreSlotMoved,
    StoreUnavailable,
    StoreUnsupported,
    SurveyScope,
    Usage,
)

__all__ = ["ClusterAdmin", "ClusterNode"]

T = TypeVar("T")

#: what a node's ACL result says, worst first: a user missing on some node is reported as missing
_WORST = (AclChange.CREATED, AclChange.CHANGED, AclChange.UNCHANGED)


@dataclass(frozen=True)
class ClusterNode:
    """One node as CLUSTER SHARDS reports it."""

    address: str  # host:port, as clients reach it
    role: str  # master | replica (the server's words)
    health: str  # online | failed | loading
    shard: int
    slots: tuple[tuple[int, int], ...]  # the shard's slot ranges

    @property
    def primary(self) -> bool:
        return self.role in ("master", "primary")


class ClusterAdmin(RedisAdmin):
    """A `RedisAdmin` for a cluster: users on every serving node, a tenant's keys on its slot's primary.

    `url` is any node (the seed); the others come from CLUSTER SHARDS. Each node gets its own pooled `RedisAdmin`
    with the same credentials and timeouts, so one hung node costs its own timeout, as a standalone store does.
    """

    #: how long a topology read is trusted before the next call reads it again
    TOPOLOGY_TTL = 5.0

    def __init__(
        self,
        url: str,
        *,
        username: str,
        password: str,
        ca_pem: bytes | None = None,
        ca_path: Path | None = None,
        timeout: float = 5.0,
        connect_timeout: float | None = None,
        max_connections: int = 4,
    ) -> None:
        super().__init__(
            url,
            username=username,
            password=password,
            ca_pem=ca_pem,
            ca_path=ca_path,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
        )
        self._scheme = urlsplit(url).scheme
        self._node_options = {
            "username": username,
            "password": password,
            "ca_pem": ca_pem,
            "ca_path": ca_path,
            "timeout": timeout,
            "connect_timeout": connect_timeout,
            "max_connections": max_connections,
        }
        self._lock = threading.Lock()
        self._admins: dict[str, RedisAdmin] = {}
        self._nodes: tuple[ClusterNode, ...] = ()
        self._read_at = float("-inf")

    def __repr__(self) -> str:
        return f"ClusterAdmin({self.endpoint!r})"

    # -- topology -----------------------------------------------------------------------------------------

    def _admin(self, address: str) -> RedisAdmin:
        with self._lock:
            admin = self._admins.get(address)
            if admin is None:
                admin = RedisAdmin(f"{self._scheme}://{address}", **self._node_options)  # type: ignore[arg-type]
                self._admins[address] = admin
        return admin

    def nodes(self, *, fresh: bool = False) -> tuple[ClusterNode, ...]:
        """Every node of the cluster (CLUSTER SHARDS from the seed, or any known node when the seed is down)."""
        if not fresh and self._nodes and time.monotonic() - self._read_at < self.TOPOLOGY_TTL:
            return self._nodes
        askers: list[RedisAdmin] = [self, *(self._admin(n.address) for n in self._nodes)]
        failure: StoreError | None = None
        for asker in askers:
            try:
                shards = asker.cluster_shards()
                break
            except StoreCommandError as exc:
                if "cluster support disabled" in str(exc):
                    raise StoreUnsupported(
                        f"{asker.endpoint} is not a cluster (spec.mode: Cluster needs cluster-enabled yes)",
                        asker.endpoint,
                    ) from None
                failure = exc
            except StoreUnavailable as exc:
                failure = exc
        else:
            raise failure or StoreUnavailable(f"no node of the cluster at {self.endpoint} answers", self.endpoint)
        nodes = tuple(
            ClusterNode(node["address"], node["role"], node["health"], i, tuple(shard["slots"]))
            for i, shard in enumerate(shards)
            for node in shard["nodes"]
        )
        with self._lock:
            gone = [a for a in self._admins if a not in {n.address for n in nodes}]
            dropped = [self._admins.pop(a) for a in gone]
            self._nodes, self._read_at = nodes, time.monotonic()
        for admin in dropped:
            admin.close()
        return nodes

    def serving(self) -> list[ClusterNode]:
        """The nodes that serve clients now or will once loaded (health online or loading), primaries and
        replicas: where users must be. A failed node is skipped; it gets the users when it is back."""
        serving = [n for n in self.nodes() if n.health in ("online", "loading")]
        if not serving:
            raise StoreUnavailable(f"no node of the cluster at {self.endpoint} is online", self.endpoint)
        return serving

    def primary_for(self, key: str, *, fresh: bool = False) -> ClusterNode:
        """The online primary serving `key`'s slot."""
        slot = key_slot(key.encode())
        for node in self.nodes(fresh=fresh):
            if node.primary and node.health == "online" and any(a <= slot <= b for a, b in node.slots):
                return node
        raise StoreUnavailable(f"no online primary of the cluster at {self.endpoint} serves slot {slot}", self.endpoint)

    def _on_slot(self, key: str, call: Callable[[RedisAdmin], T]) -> T:
        """`call` on the primary of `key`'s slot; once more after a fresh topology when the slot moved or the node
        went away (a failover), so one pass is enough to follow a promotion."""
        try:
            return call(self._admin(self.primary_for(key).address))
        except StoreSlotMoved as exc:
            self._read_at = float("-inf")  # the next call reads the topology again
            if exc.redirect is not None:  # the node said who serves the slot now: gossip may not have told the seed
                return call(self._admin(exc.redirect))
        except StoreUnavailable:
            pass
        return call(self._admin(self.primary_for(key, fresh=True).address))

    def _on_each(self, call: Callable[[RedisAdmin], T]) -> tuple[list[T], bool]:
        """`call` on every serving node; and whether a node still loading its data refused it (it is retried on
        the next pass). A node that does not answer is skipped only once a fresh topology no longer lists it online
        (it failed, or left): until the cluster notices, the call fails and the pass is retried."""
        results: list[T] = []
        loading = False
        for node in self.serving():
            try:
                results.append(call(self._admin(node.address)))
            except (StoreUnavailable, StoreCommandError) as exc:
                if node.health == "loading":
                    loading = True
                    continue
                if isinstance(exc, StoreCommandError):
                    raise
                current = {n.address: n for n in self.nodes(fresh=True)}.get(node.address)
                if current is not None and current.health == "online":
                    raise
        if not results:
            raise StoreUnavailable(f"no node of the cluster at {self.endpoint} answered", self.endpoint)
        return results, loading

    # -- server facts -------------------------------------------------------------------------------------

    def server_info(self) -> ServerInfo:
        """The oldest engine version among the serving nodes, once they all run the same engine."""
        infos, _ = self._on_each(lambda admin: admin.server_info())
        engines = {(i.engine, i.version) for i in infos}
        if len(engines) > 1:
            shown = ", ".join(sorted(f"{e} {'.'.join(map(str, v))}" for e, v in engines))
            raise StoreUnsupported(f"the cluster at {self.endpoint} mixes servers ({shown})", self.endpoint)
        return min(infos, key=lambda i: i.version)

    def capabilities(self) -> ServerCapabilities:
        """What every serving node accepts: the commands they all list, the oldest version among them."""
        every, _ = self._on_each(lambda admin: admin.capabilities())
        commands = frozenset.intersection(*(c.commands for c in every))
        oldest = min(every, key=lambda c: c.version)
        return ServerCapabilities(engine=oldest.engine, version=oldest.version, commands=commands)

    def cluster_enabled(self) -> bool:
        """True once some node describes the cluster (StoreUnsupported when the server is not one)."""
        return bool(self.nodes(fresh=True))

    # -- ACL users: on every node that can serve ----------------------------------------------------------

    def get_user(self, name: str) -> dict[str, object] | None:
        """The user's rules on the first serving node that has it (None: no node has it)."""
        found, _ = self._on_each(lambda admin: admin.get_user(name))
        return next((rules for rules in found if rules is not None), None)

    def set_user(self, user: AclUser, password: str, caps: ServerCapabilities | None) -> AclChange:
        """Converge `user` on every serving node; the worst of what the nodes had: missing anywhere is CREATED
        (a node still loading that refused counts as missing), other rules anywhere CHANGED."""
        found, loading = self._on_each(lambda admin: admin.set_user(user, password, caps))
        changes = {*found, *([AclChange.CREATED] if loading else [])}
        return next(change for change in _WORST if change in changes)

    def coverage(self, base: str) -> dict[str, set[str] | None]:
        """Per node: the users under `base` it has (None: it failed, or did not answer)."""
        out: dict[str, set[str] | None] = {}
        for node in self.nodes():
            out[node.address] = None
            if node.health == "failed":
                continue
            try:
                out[node.address] = set(self._admin(node.address).users_under(base))
            except (StoreUnavailable, StoreCommandError):
                continue
        return out

    def users_under(self, base: str) -> list[str]:
        """The tenant's users on any serving node (a user left on one node is still found, and revoked)."""
        found, _ = self._on_each(lambda admin: admin.users_under(base))
        return sorted({name for names in found for name in names})

    def delete_users(self, names: Iterable[str]) -> int:
        """Delete users on every serving node; how many existed on the node that had the most. A node still
        loading that refused keeps them: the call fails (the finalizer retries) rather than leave a user behind."""
        doomed = sorted(set(names))
        found, loading = self._on_each(lambda admin: admin.delete_users(doomed))
        if loading:
            raise StoreUnavailable(f"a node of the cluster at {self.endpoint} is loading; retrying", self.endpoint)
        return max(found, default=0)

    # -- a tenant's keys: on its slot's primary ------------------------------------------------------------

    def scan_delete(self, prefix: str, batch: int = 500) -> int:
        return self._on_slot(prefix, lambda admin: admin.scan_delete(prefix, batch))

    def usage(self, prefix: str, sample: int = 200) -> Usage:
        return self._on_slot(prefix, lambda admin: admin.usage(prefix, sample))

    def survey(self, scopes: Mapping[str, SurveyScope], batch: int = 500) -> dict[str, dict[str, int]]:
        """Each primary walks its own keys once, for the tenants whose slot it serves."""
        by_node: dict[str, dict[str, SurveyScope]] = {}
        for prefix, scope in scopes.items():
            by_node.setdefault(self.primary_for(prefix).address, {})[prefix] = scope
        found: dict[str, dict[str, int]] = {}
        for address, mine in by_node.items():
            found.update(self._admin(address).survey(mine, batch))
        return found

    def read_hash(self, key: str) -> dict[str, str]:
        return self._on_slot(key, lambda admin: admin.read_hash(key))

    def write_hash(self, key: str, fields: dict[str, str]) -> None:
        self._on_slot(key, lambda admin: admin.write_hash(key, fields))

    def append_audit(self, key: str, fields: dict[str, str], attempts: int = 10) -> None:
        self._on_slot(key, lambda admin: admin.append_audit(key, fields, attempts))

    def read_trail(self, stream: str, seal: str) -> tuple[dict[str, str], int, TrailInfo | None]:
        return self._on_slot(stream, lambda admin: admin.read_trail(stream, seal))

    def trail_info(self, stream: str) -> TrailInfo | None:
        return self._on_slot(stream, lambda admin: admin.trail_info(stream))

    def stream_entry(self, stream: str, entry_id: str) -> dict[str, str] | None:
        return self._on_slot(stream, lambda admin: admin.stream_entry(stream, entry_id))

    def stream_after(
        self, stream: str, after: str | None, limit: int, page: int = 1000
    ) -> Iterator[tuple[str, dict[str, str]]]:
        """The entries, from the primary serving the stream when the walk starts (a walk is not resumed elsewhere
        when a failover happens midway: the next pass reads again)."""
        return self._admin(self.primary_for(stream).address).stream_after(stream, after, limit, page)

    def first_entry_from(self, stream: str, ms: int) -> str | None:
        return self._on_slot(stream, lambda admin: admin.first_entry_from(stream, ms))

    def trim_stream_to(self, stream: str, first_kept: str) -> int:
        return self._on_slot(stream, lambda admin: admin.trim_stream_to(stream, first_kept))

    def close(self) -> None:
        with self._lock:
            admins, self._admins = list(self._admins.values()), {}
        for admin in admins:
            admin.close()
        super().close()
