"""A Valkey Cluster on loopback: N primaries with R replicas each, formed from Python, stopped by PID.

Every node is an `Engine` (the sandbox's single server) with cluster mode switched on, its own nodes.conf in
its own directory, the `default` user disabled and the same admin user and password as every other node. The
cluster is formed with CLUSTER ADDSLOTSRANGE, CLUSTER MEET and CLUSTER REPLICATE (no valkey-cli), and outages
are staged per node: `stop`/`start` one node, `kill_primary` a shard's primary and wait for its replica's
promotion, or `failover` by hand. docs/cluster.md has what was measured on it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
from redis.cluster import ClusterNode as StartupNode
from redis.cluster import RedisCluster

from memory_sandbox.engine import Engine, EngineError, free_port

__all__ = ["SLOTS", "Cluster", "ClusterError", "ClusterNode"]

#: hash slots in a Valkey/Redis Cluster
SLOTS = 16384


class ClusterError(EngineError):
    """The cluster did not form, or did not reach the awaited state in time."""


@dataclass
class ClusterNode:
    """One server of the cluster, with the shard it was formed in (its role may change by failover)."""

    engine: Engine
    shard: int
    cluster_port: int
    node_id: str = ""

    @property
    def host(self) -> str:
        return self.engine.host

    @property
    def port(self) -> int:
        return self.engine.port

    @property
    def pid(self) -> int | None:
        return self.engine.pid

    @property
    def running(self) -> bool:
        return self.engine.pid is not None

    def admin_client(self, **kwargs: object) -> redis.Redis:
        """A plain (not cluster-aware) admin connection to this node alone."""
        return self.engine.admin_client(decode_responses=True, socket_timeout=2.0, **kwargs)

    def role(self) -> str:
        """`primary` or `replica`, as the node itself says now (ROLE)."""
        with self.admin_client() as client:
            role = client.execute_command("ROLE")[0]
        return "primary" if role == "master" else "replica"

    def cluster_info(self) -> dict[str, str]:
        with self.admin_client() as client:
            text = client.execute_command("CLUSTER INFO")
        if isinstance(text, dict):
            return {str(k): str(v) for k, v in text.items()}
        return dict(line.split(":", 1) for line in str(text).splitlines() if ":" in line)

    def start(self, timeout: float = 10.0) -> ClusterNode:
        """Start (again) on the same ports with the same nodes.conf: the node rejoins under its old id."""
        self.engine.start(timeout=timeout)
        return self

    def stop(self) -> None:
        """Stop by PID (SIGTERM)."""
        self.engine.stop()

    def kill(self) -> None:
        """End by PID with SIGKILL, as a machine dies."""
        self.engine.kill()


@dataclass
class Cluster:
    """`primaries` shards with `replicas` replicas each, on 127.0.0.1; a context manager that stops them all.

    `node_timeout_ms` is `cluster-node-timeout`: how long a silent primary goes before its replica takes over.
    """

    primaries: int = 3
    replicas: int = 1
    node_timeout_ms: int = 1000
    binary: Path | None = None
    admin_username: str = "memory-operator-admin"
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    nodes: list[ClusterNode] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.primaries < 1 or self.replicas < 0:
            raise ValueError("a cluster needs at least one primary and a non-negative replica count")

    # --- the nodes and the topology ------------------------------------------------------------------------

    def shard_nodes(self, shard: int) -> list[ClusterNode]:
        return [node for node in self.nodes if node.shard == shard]

    def primary_of(self, shard: int) -> ClusterNode:
        """The running node of `shard` that says it is a primary now."""
        for node in self.shard_nodes(shard):
            if node.running and node.role() == "primary":
                return node
        raise ClusterError(f"shard {shard} has no running primary")

    def running_nodes(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.running]

    @property
    def startup_nodes(self) -> list[StartupNode]:
        """What `RedisCluster(startup_nodes=...)` takes: every running node."""
        return [StartupNode(node.host, node.port) for node in self.running_nodes()]  # type: ignore[no-untyped-call]

    def cluster_client(self, username: str | None = None, password: str | None = None, **kwargs: Any) -> RedisCluster:
        """A cluster-aware client (MOVED/ASK, topology refresh); the admin user unless another is given."""
        return RedisCluster(
            startup_nodes=self.startup_nodes,
            username=username or self.admin_username,
            password=password if password is not None else self.admin_password,
            decode_responses=True,
            **kwargs,
        )

    def shards(self) -> list[dict[str, Any]]:
        """CLUSTER SHARDS from a running node: per shard its slot ranges and nodes (id, port, role, health)."""
        node = self.running_nodes()[0]
        with node.admin_client() as client:
            raw = client.execute_command("CLUSTER SHARDS")
        return [_shard(entry) for entry in raw]

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> Cluster:
        """Start every node, assign slots, meet, replicate, and wait until the cluster is whole."""
        if self.nodes:
            return self
        try:
            for shard in range(self.primaries):
                for _ in range(1 + self.replicas):
                    self.nodes.append(self._node(shard).start())
            self._form(timeout)
        except BaseException:
            self.close()
            raise
        return self

    def _node(self, shard: int) -> ClusterNode:
        cluster_port = free_port()  # the bus port, chosen too: port + 10000 is not known to be free
        engine = Engine(
            binary=self.binary,
            admin_username=self.admin_username,
            admin_password=self.admin_password,
            extra_config=(
                "cluster-enabled yes",
                'cluster-config-file "nodes.conf"',
                f"cluster-port {cluster_port}",
                f"cluster-node-timeout {self.node_timeout_ms}",
                "cluster-replica-validity-factor 0",  # a replica may always take over (short-lived test data)
                "cluster-allow-replica-migration no",  # replicas stay in the shard they were formed in
                # replicas log in to their primary as the admin user: `default` is off on every node
                f"primaryuser {self.admin_username}",
                f"primaryauth {self.admin_password}",
            ),
        )
        return ClusterNode(engine=engine, shard=shard, cluster_port=cluster_port)

    def _form(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            with node.admin_client() as client:
                node.node_id = str(client.execute_command("CLUSTER MYID"))
        firsts = [self.shard_nodes(shard)[0] for shard in range(self.primaries)]
        for shard, primary in enumerate(firsts):
            low = shard * SLOTS // self.primaries
            high = (shard + 1) * SLOTS // self.primaries - 1
            with primary.admin_client() as client:
                client.execute_command("CLUSTER ADDSLOTSRANGE", low, high)
        seed = self.nodes[0]
        with seed.admin_client() as client:
            for node in self.nodes[1:]:
                client.execute_command("CLUSTER MEET", node.host, node.port, node.cluster_port)
        self._wait(lambda: all(_known_nodes(n) == len(self.nodes) for n in self.nodes), deadline, "nodes to meet")
        for shard, primary in enumerate(firsts):
            for replica in self.shard_nodes(shard)[1:]:
                with replica.admin_client() as client:
                    client.execute_command("CLUSTER REPLICATE", primary.node_id)
        self.wait_healthy(max(0.1, deadline - time.monotonic()))

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every running node says cluster_state:ok and every running replica's link to its primary is up."""
        self._wait(self._healthy, time.monotonic() + timeout, "cluster_state:ok with every replica attached")

    def _healthy(self) -> bool:
        for node in self.running_nodes():
            if node.cluster_info().get("cluster_state") != "ok":
                return False
            with node.admin_client() as client:
                replication = client.info("replication")
            if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                return False
        return True

    def _wait(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        while True:
            try:
                if ready():
                    return
            except redis.RedisError:
                pass  # a node between states (loading, restarting): ask again
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n.port}\n{n.engine.log_tail(5)}" for n in self.nodes)
                raise ClusterError(f"timed out waiting for {what}\n{logs}")
            time.sleep(0.05)

    def add_replica(self, shard: int, timeout: float = 30.0) -> ClusterNode:
        """A new node (no users of anyone's but the admin) joined as one more replica of `shard`: what scaling a
        cluster out looks like to the operator."""
        node = self._node(shard).start()
        self.nodes.append(node)
        try:
            with node.admin_client() as client:
                node.node_id = str(client.execute_command("CLUSTER MYID"))
            seed = next(n for n in self.running_nodes() if n is not node)
            with seed.admin_client() as client:
                client.execute_command("CLUSTER MEET", node.host, node.port, node.cluster_port)
            deadline = time.monotonic() + timeout
            self._wait(lambda: _known_nodes(node) == len(self.nodes), deadline, "the new node to meet the others")
            primary = self.primary_of(shard)
            with node.admin_client() as client:
                client.execute_command("CLUSTER REPLICATE", primary.node_id)
            self.wait_healthy(max(0.1, deadline - time.monotonic()))
        except BaseException:
            node.stop()
            raise
        return node

    # --- outages -------------------------------------------------------------------------------------------

    def kill_primary(self, shard: int, timeout: float = 30.0) -> tuple[ClusterNode, float]:
        """SIGKILL `shard`'s primary and wait for a replica's promotion and cluster_state:ok on the survivors.

        Returns the promoted node and the seconds from the kill to a healthy cluster.
        """
        old = self.primary_of(shard)
        started = time.monotonic()
        old.kill()
        deadline = started + timeout

        def promoted() -> bool:
            return any(n.running and n.role() == "primary" for n in self.shard_nodes(shard)) and self._healthy()

        self._wait(promoted, deadline, f"a replica of shard {shard} to be promoted")
        return self.primary_of(shard), time.monotonic() - started

    def failover(self, shard: int, timeout: float = 30.0) -> tuple[ClusterNode, float]:
        """A manual CLUSTER FAILOVER on one of `shard`'s replicas (the primary alive: it becomes a replica)."""
        old = self.primary_of(shard)
        replica = next(n for n in self.shard_nodes(shard) if n is not old and n.running)
        started = time.monotonic()
        with replica.admin_client() as client:
            client.execute_command("CLUSTER FAILOVER")
        deadline = started + timeout
        self._wait(lambda: replica.role() == "primary" and self._healthy(), deadline, "the manual failover")
        return replica, time.monotonic() - started

    def stop(self) -> None:
        """Stop every node by PID; the directories (nodes.conf) stay, so `start` on a node can rejoin it."""
        for node in self.nodes:
            node.stop()

    def close(self) -> None:
        """Stop every node by PID and remove their directories."""
        for node in self.nodes:
            node.engine.close()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _known_nodes(node: ClusterNode) -> int:
    return int(node.cluster_info().get("cluster_known_nodes", "0"))


def _pairs(flat: Any) -> dict[str, Any]:
    """A RESP2 flat key/value list (or a RESP3 map) as a dict."""
    if isinstance(flat, dict):
        return {str(k): v for k, v in flat.items()}
    return {str(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


def _shard(entry: Any) -> dict[str, Any]:
    shard = _pairs(entry)
    bounds = [int(n) for n in shard["slots"]]
    return {
        "slots": list(zip(bounds[::2], bounds[1::2], strict=True)),
        "nodes": [_pairs(node) for node in shard["nodes"]],
    }
