"""The agent library on a real Valkey Cluster (3 primaries x 1 replica on loopback): the tenant's node found from
any node of the Secret, MOVED followed, failover survived, and `MEMORY_WAIT_REPLICAS` (WAIT) making an
acknowledged append survive its primary's death. Tenant users are made with the operator's own ACL plan, on every
node (users are per node in a cluster)."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
import redis
from redis.crc import key_slot

from memory_client import AgentMemory, ConfigError, MemoryPermissionError, NotReplicatedError
from memory_operator.builders.acl import audit_key, plan_acl_users, tenant_prefix
from memory_operator.clients.redis_admin import RedisAdmin
from memory_sandbox.cluster import SLOTS, Cluster, ClusterNode
from tests.library.conftest import keyring_json

_ids = itertools.count()


@dataclass
class ClusterTenant:
    namespace: str
    name: str
    env: dict[str, str]
    password: str

    @property
    def prefix(self) -> str:
        return tenant_prefix(self.namespace, self.name, cluster=True)

    @property
    def audit(self) -> str:
        return audit_key(self.namespace, self.name, cluster=True)

    @property
    def slot(self) -> int:
        return key_slot(self.prefix.encode())


def shard_of(cluster: Cluster, slot: int) -> int:
    """The shard the cluster was formed with for `slot` (slots are split evenly, in order)."""
    return next(i for i in reversed(range(cluster.primaries)) if i * SLOTS // cluster.primaries <= slot)


def provision(cluster: Cluster, *, seed: ClusterNode | None = None, **env: str) -> ClusterTenant:
    """A minimal-isolation tenant with the cluster layout, its user on every node; REDIS_URL names `seed` (default:
    a node of a shard that does not serve the tenant's slot, so the library has to find its node)."""
    namespace, name = f"cl{next(_ids)}", "bot"
    user = plan_acl_users(namespace, name, "minimal", [], cluster=True)[0]
    password = secrets.token_urlsafe(24)
    for node in cluster.running_nodes():
        url = f"redis://{node.host}:{node.port}/0"
        with RedisAdmin(url, username=cluster.admin_username, password=cluster.admin_password) as admin:
            admin.set_user(user, password, admin.capabilities())
    prefix = tenant_prefix(namespace, name, cluster=True)
    owner = shard_of(cluster, key_slot(prefix.encode()))
    seed = seed or cluster.primary_of((owner + 1) % cluster.primaries)
    nodes = ",".join(f"{n.host}:{n.port}" for n in cluster.nodes)
    tenant_env = {
        "REDIS_URL": f"redis://{quote(user.name)}:{quote(password)}@{seed.host}:{seed.port}/0",
        "REDIS_USERNAME": user.name,
        "MEMORY_TENANT_ID": f"{namespace}/{name}",
        "MEMORY_KEY_PREFIX": prefix,
        "MEMORY_AUDIT_KEY": audit_key(namespace, name, cluster=True),
        "MEMORY_ISOLATION": "minimal",
        "MEMORY_ENCRYPTION": "required",
        "MEMORY_KEYRING": keyring_json(),
        "MEMORY_CLUSTER_NODES": nodes,
        **env,
    }
    return ClusterTenant(namespace, name, tenant_env, password)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster(primaries=3, replicas=1) as formed:
        yield formed


def test_the_layout_puts_every_key_of_a_tenant_in_one_slot() -> None:
    prefix, audit = tenant_prefix("team-a", "bot", cluster=True), audit_key("team-a", "bot", cluster=True)
    assert (prefix, audit) == ("mem:{team-a:bot}:", "audit:{team-a:bot}")
    keys = [f"{prefix}agent:x:conv:1", f"{prefix}shared:usage", f"{prefix}shared:subject:abc", audit]
    assert len({key_slot(k.encode()) for k in keys}) == 1
    assert key_slot(b"mem:{team-a:bot}:x") != key_slot(b"mem:{team-b:bot}:x")  # tenants spread over slots


def test_a_cluster_secret_without_one_hash_tag_is_refused_naming_the_variables(cluster: Cluster) -> None:
    env = provision(cluster).env
    untagged = {**env, "MEMORY_KEY_PREFIX": "mem:ns:bot:", "MEMORY_AUDIT_KEY": "audit:ns:bot"}
    with pytest.raises(ConfigError, match="MEMORY_KEY_PREFIX and MEMORY_AUDIT_KEY must carry the same hash tag"):
        AgentMemory.from_env(untagged)
    with pytest.raises(ConfigError, match="host:port"):
        AgentMemory.from_env({**env, "MEMORY_CLUSTER_NODES": "127.0.0.1"})


def test_the_library_finds_the_tenants_node_from_another_shards_node(cluster: Cluster) -> None:
    tenant = provision(cluster)
    with AgentMemory.from_env(tenant.env) as memory:
        chat = memory.conversation("c1", "subject-1", agent="a")
        for i in range(20):
            chat.append("human", f"message {i}")
        assert [m.content for m in chat.messages()] == [f"message {i}" for i in range(20)]
        assert memory.verify_audit().ok
    # everything is on the primary serving the tenant's slot, nothing elsewhere
    owner = cluster.primary_of(shard_of(cluster, tenant.slot))
    with owner.admin_client() as client:
        assert client.xlen(tenant.audit) >= 20
        assert client.exists(chat.key) == 1


def test_another_tenant_is_refused_on_the_node_that_serves_the_slot(cluster: Cluster) -> None:
    victim, attacker = provision(cluster), provision(cluster)
    with AgentMemory.from_env(victim.env) as memory:
        chat = memory.conversation("c1", "subject-1", agent="a")
        chat.append("human", "victim's secret")
    owner = cluster.primary_of(shard_of(cluster, victim.slot))
    name = attacker.env["REDIS_USERNAME"]
    with redis.Redis(host=owner.host, port=owner.port, username=name, password=attacker.password) as raw:
        for command in (("XRANGE", chat.key, "-", "+"), ("XRANGE", victim.audit, "-", "+"), ("DEL", chat.key)):
            with pytest.raises(redis.exceptions.NoPermissionError):
                raw.execute_command(*command)
    # and through the library, pointed at the victim's keys with the attacker's credentials
    forged = {**attacker.env, "MEMORY_KEY_PREFIX": victim.prefix, "MEMORY_AUDIT_KEY": victim.audit}
    with AgentMemory.from_env(forged) as memory, pytest.raises(MemoryPermissionError):
        memory.conversation("c1", "subject-1", agent="a").messages()


def test_a_manual_failover_is_followed_by_moved_without_losing_anything(cluster: Cluster) -> None:
    tenant = provision(cluster)
    shard = shard_of(cluster, tenant.slot)
    seed = cluster.primary_of(shard)
    tenant = provision(cluster, seed=seed)  # the Secret names the primary that is about to step down
    shard = shard_of(cluster, tenant.slot)
    with AgentMemory.from_env(tenant.env) as memory:
        chat = memory.conversation("c1", "subject-1", agent="a")
        for i in range(10):
            chat.append("human", f"before {i}")
        cluster.failover(shard)  # the old primary becomes a replica: it answers MOVED for the tenant's keys
        for i in range(10):
            chat.append("human", f"after {i}")
        contents = [m.content for m in chat.messages()]
        assert contents == [f"before {i}" for i in range(10)] + [f"after {i}" for i in range(10)]
        assert memory.verify_audit().ok


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster of its own for tests that kill nodes."""
    with Cluster(primaries=3, replicas=1) as formed:
        yield formed


def test_acknowledged_appends_survive_the_death_of_their_primary(own_cluster: Cluster) -> None:
    tenant = provision(own_cluster, MEMORY_WAIT_REPLICAS="1", MEMORY_WAIT_TIMEOUT_MS="2000")
    shard = shard_of(own_cluster, tenant.slot)
    with AgentMemory.from_env(tenant.env) as memory:
        chat = memory.conversation("c1", "subject-1", agent="a")
        acknowledged = []
        for i in range(30):
            chat.append("human", f"kept {i}")  # returns only once a replica has it
            acknowledged.append(f"kept {i}")
        promoted, _seconds = own_cluster.kill_primary(shard)  # SIGKILL: nothing flushed, nothing handed over
        # the next read waits out the failover and finds the promoted replica: every acknowledged append is there
        assert [m.content for m in chat.messages()] == acknowledged
        assert memory.verify_audit().ok
        # the shard has no replica left: the next append is applied, and said not to be durable
        with pytest.raises(NotReplicatedError):
            chat.append("human", "after the failover")
        assert [m.content for m in chat.messages()] == [*acknowledged, "after the failover"]
    with promoted.admin_client() as client:
        assert client.xlen(chat.key) == 31


def test_without_a_replica_to_confirm_an_append_is_not_acknowledged_as_durable(own_cluster: Cluster) -> None:
    tenant = provision(own_cluster, MEMORY_WAIT_REPLICAS="1", MEMORY_WAIT_TIMEOUT_MS="200")
    shard = shard_of(own_cluster, tenant.slot)
    primary = own_cluster.primary_of(shard)
    replica = next(n for n in own_cluster.shard_nodes(shard) if n is not primary)
    with AgentMemory.from_env(tenant.env) as memory:
        chat = memory.conversation("c1", "subject-1", agent="a")
        chat.append("human", "replicated")
        replica.stop()
        with pytest.raises(NotReplicatedError) as caught:
            chat.append("human", "on the primary only")
        assert (caught.value.wanted, caught.value.confirmed) == (1, 0)
        assert "0 of 1 replica(s) confirmed it within 200 ms" in str(caught.value)
        # the write was applied (the error says so): read back, nothing twice
        assert [m.content for m in chat.messages()] == ["replicated", "on the primary only"]
        assert memory.verify_audit().ok
