"""`ClusterAdmin` on a real Valkey Cluster (3 primaries x 1 replica on loopback): a tenant's users on every node,
a node restarted empty repaired by the next pass, a tenant's keys on its slot's primary, a failover followed."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator

import pytest
import redis
from redis.crc import key_slot

from memory_client import AgentMemory
from memory_operator.builders.acl import AclUser, Layout, audit_key, plan_acl_users, tenant_prefix
from memory_operator.clients.redis_admin import AclChange, RedisAdmin, SurveyScope
from memory_operator.clients.redis_cluster import ClusterAdmin
from memory_sandbox.cluster import Cluster, ClusterNode
from tests.integration.test_acl_isolation import FORBIDDEN
from tests.library.conftest import keyring_json

_ids = itertools.count()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster(primaries=3, replicas=1) as formed:
        yield formed


@pytest.fixture
def admin(cluster: Cluster) -> Iterator[ClusterAdmin]:
    seed = cluster.nodes[0]
    with ClusterAdmin(
        f"redis://{seed.host}:{seed.port}", username=cluster.admin_username, password=cluster.admin_password
    ) as connected:
        yield connected


def _tenant(agents: tuple[str, ...] = ("a",)) -> tuple[str, str, list[AclUser]]:
    namespace, name = f"ca{next(_ids)}", "bot"
    return namespace, name, plan_acl_users(namespace, name, "moderate", agents, cluster=True)


def _logs_in(node: ClusterNode, user: str, password: str) -> bool:
    try:
        with redis.Redis(host=node.host, port=node.port, username=user, password=password) as client:
            return bool(client.ping())
    except redis.AuthenticationError:
        return False


def _node_of(cluster: Cluster, address: str) -> ClusterNode:
    return next(n for n in cluster.nodes if f"{n.host}:{n.port}" == address)


def test_the_topology_lists_every_node_with_its_role(admin: ClusterAdmin, cluster: Cluster) -> None:
    nodes = admin.nodes(fresh=True)
    assert {n.address for n in nodes} == {f"{n.host}:{n.port}" for n in cluster.nodes}
    assert sum(n.primary for n in nodes) == 3 and {n.health for n in nodes} <= {"online", "loading"}
    assert admin.cluster_enabled() and admin.capabilities().knows("xadd")


def test_a_tenants_users_are_on_every_node_and_log_in_everywhere(admin: ClusterAdmin, cluster: Cluster) -> None:
    _, _, users = _tenant()
    caps = admin.capabilities()
    password = secrets.token_urlsafe(24)
    for user in users:
        assert admin.set_user(user, password, caps) is AclChange.CREATED
        assert admin.set_user(user, password, caps) is AclChange.UNCHANGED
    for node in cluster.nodes:
        for user in users:
            assert _logs_in(node, user.name, password), (node.port, user.name)
    base = users[0].name
    assert admin.users_under(base) == sorted(u.name for u in users)
    assert admin.delete_users(u.name for u in users) == len(users)
    assert not any(_logs_in(node, users[0].name, password) for node in cluster.nodes)


def test_a_node_restarted_empty_gets_the_users_back_on_the_next_pass(admin: ClusterAdmin, cluster: Cluster) -> None:
    """ACL users are not persisted by a node without an ACL file: a restart loses them, on that node only."""
    _, _, users = _tenant(agents=())
    caps, password = admin.capabilities(), secrets.token_urlsafe(24)
    admin.set_user(users[0], password, caps)
    replica = next(n for n in cluster.nodes if n.role() == "replica")
    replica.stop()
    replica.start()
    cluster.wait_healthy()
    assert not _logs_in(replica, users[0].name, password)
    admin.nodes(fresh=True)
    assert admin.set_user(users[0], password, caps) is AclChange.CREATED  # missing somewhere: drift, repaired
    assert _logs_in(replica, users[0].name, password)


def test_a_tenants_keys_live_on_its_slots_primary(admin: ClusterAdmin, cluster: Cluster) -> None:
    namespace, name, users = _tenant(agents=())
    prefix, trail = tenant_prefix(namespace, name, cluster=True), audit_key(namespace, name, cluster=True)
    password = secrets.token_urlsafe(24)
    admin.set_user(users[0], password, admin.capabilities())
    env = {
        "REDIS_URL": f"redis://{users[0].name}:{password}@{cluster.nodes[0].host}:{cluster.nodes[0].port}/0",
        "MEMORY_TENANT_ID": f"{namespace}/{name}",
        "MEMORY_KEY_PREFIX": prefix,
        "MEMORY_AUDIT_KEY": trail,
        "MEMORY_ISOLATION": "moderate",
        "MEMORY_ENCRYPTION": "required",
        "MEMORY_KEYRING": keyring_json(),
        "MEMORY_CLUSTER_NODES": ",".join(f"{n.host}:{n.port}" for n in cluster.nodes),
        "MEMORY_AGENT_ID": "a",
    }
    with AgentMemory.from_env(env) as memory:
        chat = memory.conversation("c1", "subject-1")
        for i in range(5):
            chat.append("human", f"message {i}")
    owner = admin.primary_for(prefix)
    assert any(a <= key_slot(prefix.encode()) <= b for a, b in owner.slots)
    with _node_of(cluster, owner.address).admin_client() as direct:
        assert direct.exists(chat.key) == 1
    usage = admin.usage(prefix)
    assert usage.keys == 1 and usage.bytes > 0
    info = admin.trail_info(trail)
    assert info is not None and info.length >= 5
    # one survey for tenants on different shards: each primary walks its own keys
    other = tenant_prefix(f"ca{next(_ids)}", "bot", cluster=True)
    while admin.primary_for(other).address == owner.address:
        other = tenant_prefix(f"ca{next(_ids)}", "bot", cluster=True)
    admin.write_hash(f"{other}shared:probe", {"d": "plain"})
    scopes = {p: SurveyScope(f"{p}shared:", cutoff_ms=0, encrypted=True) for p in (prefix, other)}
    found = admin.survey(scopes)
    assert found[prefix]["plaintext_values"] == 0 and found[other]["plaintext_values"] == 1
    assert admin.scan_delete(other) == 1


def test_a_failover_is_followed_and_the_promoted_replica_has_the_users(admin: ClusterAdmin, cluster: Cluster) -> None:
    namespace, name, users = _tenant(agents=())
    prefix = tenant_prefix(namespace, name, cluster=True)
    password = secrets.token_urlsafe(24)
    admin.set_user(users[0], password, admin.capabilities())
    admin.write_hash(f"{prefix}shared:state", {"v": "1"})
    before = admin.primary_for(prefix, fresh=True)
    cluster.failover(_node_of(cluster, before.address).shard)
    assert admin.read_hash(f"{prefix}shared:state") == {"v": "1"}  # the moved slot is followed in one call
    deadline = time.monotonic() + 10  # the seed learns of the promotion by gossip
    while (after := admin.primary_for(prefix, fresh=True)).address == before.address and time.monotonic() < deadline:
        time.sleep(0.1)
    assert after.address != before.address
    assert _logs_in(_node_of(cluster, after.address), users[0].name, password)
    assert admin.set_user(users[0], password, admin.capabilities()) is AclChange.UNCHANGED


def test_every_operation_of_a_store_admin_is_one_the_cluster_admin_routes() -> None:
    """A RedisAdmin method ClusterAdmin did not override would run on the seed node alone: a user on one node, or
    a tenant's keys looked for where they are not."""
    public = {n for n, v in vars(RedisAdmin).items() if callable(v) and not n.startswith("_")}
    inherited = {n for n in public if getattr(ClusterAdmin, n) is getattr(RedisAdmin, n)}
    assert inherited == {"cluster_shards"}  # asked of one node on purpose: any node describes the whole cluster


def test_the_attack_battery_finds_nothing_open_on_any_node(admin: ClusterAdmin, cluster: Cluster) -> None:
    """Every forbidden command of the isolation suite, and the other tenant's keys, asked of every node of the
    cluster with ACL DRYRUN for both tenants' users (moderate: the tenant user and two agents): 0 allowed. Every
    isolation level in the cluster layout is covered on one node by tests/integration/test_acl_isolation.py."""
    caps, breaches, asked = admin.capabilities(), [], 0
    tenants = [_tenant(agents=("a", "b")) for _ in range(2)]
    users = [(ns, name, u) for ns, name, planned in tenants for u in planned]
    for _, _, user in users:
        admin.set_user(user, secrets.token_urlsafe(24), caps)
    for node in cluster.running_nodes():
        with node.admin_client() as direct:
            for ns, name, user in users:
                other_ns, other_name, _ = next(t for t in tenants if t[0] != ns)
                theirs = Layout(other_ns, other_name, cluster=True)
                probes = [list(f.args) for f in FORBIDDEN if caps.knows(f.command)]
                probes += [["GET", f"{theirs.prefix}k"], ["SET", f"{theirs.shared}k", "x"]]
                probes += [["XADD", theirs.audit, "*", "f", "v"]]
                probes += [["DEL", Layout(ns, name, cluster=True).audit], ["GET", f"mem:{ns}:{name}:k"]]
                own = f"{Layout(ns, name, cluster=True).prefix}own"
                allowed = direct.execute_command("ACL", "DRYRUN", user.name, "SET", f"{own}-control", "x")
                assert allowed == "OK", (node.port, user.name, allowed)  # the probe can say yes
                for probe in probes:
                    args = [a.replace("{own}", own) for a in probe]
                    asked += 1
                    if direct.execute_command("ACL", "DRYRUN", user.name, *args) == "OK":
                        breaches.append((node.port, user.name, args))
    admin.delete_users(u.name for _, _, u in users)
    assert asked > 1000 and breaches == []


def test_a_node_added_later_gets_the_users_on_the_next_pass(admin: ClusterAdmin, cluster: Cluster) -> None:
    _, _, users = _tenant(agents=())
    caps, password = admin.capabilities(), secrets.token_urlsafe(24)
    admin.set_user(users[0], password, caps)
    added = cluster.add_replica(0)
    assert not _logs_in(added, users[0].name, password)
    deadline = time.monotonic() + 10  # the seed learns of the new node by gossip
    while f"{added.host}:{added.port}" not in {n.address for n in admin.nodes(fresh=True)}:
        assert time.monotonic() < deadline, "the new node never appeared in CLUSTER SHARDS"
        time.sleep(0.1)
    assert admin.set_user(users[0], password, caps) is AclChange.CREATED
    assert _logs_in(added, users[0].name, password)
