"""The MemoryStore and MemoryTenant reconcilers on a real Valkey Cluster (3 primaries x 1 replica on loopback),
against the sandbox API over HTTP: a `mode: Cluster` store, a tenant's users on every node, its Secrets pointing
at the cluster, its agents working through a failover, drift on a restarted node repaired, deletion."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis
from kubernetes import client as k8s
from redis.crc import key_slot

from memory_client import AgentMemory
from memory_operator.api.v1alpha1 import GROUP, VERSION
from memory_operator.builders import acl
from memory_operator.deps import Deps
from memory_operator.errors import InvalidSpec
from memory_operator.reconcilers import memorytenant as reconciler
from memory_sandbox.cluster import Cluster, ClusterNode
from memory_sandbox.engine import Engine
from tests.integration.objects import core, custom, make_tenant, ready, secret_data, settled, store_pass

pytestmark = pytest.mark.integration

_stores = itertools.count()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster(primaries=3, replicas=1) as formed:
        yield formed


def make_store(api_client: k8s.ApiClient, url: str, username: str, password: str, mode: str) -> str:
    name = f"cstore-{next(_stores)}"
    core(api_client).create_namespaced_secret(
        "default", {"metadata": {"name": f"{name}-admin"}, "stringData": {"username": username, "password": password}}
    )
    spec = {"url": url, "mode": mode, "adminSecretRef": {"name": f"{name}-admin", "namespace": "default"}}
    custom(api_client).create_cluster_custom_object(
        GROUP, VERSION, "memorystores", {"metadata": {"name": name}, "spec": spec}
    )
    return name


def cluster_store(api_client: k8s.ApiClient, cluster: Cluster) -> str:
    seed = cluster.nodes[0]
    return make_store(
        api_client, f"redis://{seed.host}:{seed.port}", cluster.admin_username, cluster.admin_password, "Cluster"
    )


def _logs_in(node: ClusterNode, env: dict[str, str]) -> bool:
    deadline = time.monotonic() + 10
    while True:
        try:
            with redis.Redis(
                host=node.host, port=node.port, username=env["REDIS_USERNAME"], password=env["REDIS_PASSWORD"]
            ) as client:
                return bool(client.ping())
        except redis.AuthenticationError:
            return False
        except redis.BusyLoadingError:  # a node just restarted is loading its data: ask again
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _agent_env(api_client: k8s.ApiClient, namespace: str, tenant: str, agent: str) -> dict[str, str]:
    return {
        **secret_data(api_client, namespace, f"{tenant}-{agent}-memory-credentials"),
        **secret_data(api_client, namespace, f"{tenant}-memory-keys"),
    }


def test_a_cluster_store_is_ready_and_lists_its_nodes(api_client: k8s.ApiClient, cluster: Cluster, deps: Deps) -> None:
    outcome = store_pass(api_client, cluster_store(api_client, cluster), deps)
    assert ready(outcome)[0] == "True"
    nodes = outcome.status.nodes
    assert {n.address for n in nodes} == {f"{n.host}:{n.port}" for n in cluster.nodes}
    assert sorted(n.role for n in nodes) == ["primary"] * 3 + ["replica"] * 3


def test_the_mode_must_say_what_the_server_is(
    api_client: k8s.ApiClient, cluster: Cluster, engine: Engine, deps: Deps
) -> None:
    standalone = make_store(api_client, engine.url, engine.admin_username, engine.admin_password, "Cluster")
    with pytest.raises(InvalidSpec, match=r"spec.mode: 'Cluster', but the server .* is not a cluster"):
        store_pass(api_client, standalone, deps)
    seed = cluster.nodes[0]
    url = f"redis://{seed.host}:{seed.port}"
    declared = make_store(api_client, url, cluster.admin_username, cluster.admin_password, "Standalone")
    with pytest.raises(InvalidSpec, match=r"spec.mode: 'Standalone', but the server .* runs in cluster mode"):
        store_pass(api_client, declared, deps)


def test_a_tenant_on_a_cluster_gets_users_on_every_node_and_its_agents_work(
    api_client: k8s.ApiClient, cluster: Cluster, deps: Deps, namespace: str
) -> None:
    store = cluster_store(api_client, cluster)
    tenant = make_tenant(api_client, namespace, "helpdesk", storeRef={"name": store}, agents=["triage"])
    outcome = reconciler.reconcile(tenant, deps)
    assert ready(outcome) == ("True", "Provisioned")
    layout = acl.Layout(namespace, "helpdesk", cluster=True)
    assert outcome.status.key_prefix == f"mem:{{{namespace}:helpdesk}}:"
    env = _agent_env(api_client, namespace, "helpdesk", "triage")
    assert set(env["MEMORY_CLUSTER_NODES"].split(",")) == {f"{n.host}:{n.port}" for n in cluster.nodes}
    assert env["MEMORY_KEY_PREFIX"] == layout.prefix and env["MEMORY_AUDIT_KEY"] == layout.audit
    for node in cluster.nodes:  # users are per node: the operator put them on every one, replicas included
        assert _logs_in(node, env), node.port
    jobs = secret_data(api_client, namespace, "helpdesk-memory-job-credentials")
    assert jobs["MEMORY_SEAL_KEY"] == layout.seal and key_slot(layout.seal.encode()) == key_slot(layout.prefix.encode())
    with AgentMemory.from_env(env) as memory:
        chat = memory.conversation("ticket-1", "customer-7")
        for i in range(10):
            chat.append("human", f"message {i}")
        assert memory.verify_audit().ok
    # the retention job, as its CronJob runs it, from its own Secret: on the node serving the tenant's slot
    jobs_env = {**os.environ, **secret_data(api_client, namespace, "helpdesk-memory-job-credentials")}
    command = [sys.executable, "-m", "memory_jobs", "retention"]
    done = subprocess.run(command, env=jobs_env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    again = reconciler.reconcile(settled(tenant, outcome), deps)
    assert {j.job: j.status for j in again.status.jobs or []}.get("retention") == "succeeded"
    assert again.status.usage is not None and again.status.usage.keys == 1  # measured on the slot's primary
    assert again.status.audit is not None and again.status.audit.entries_added >= 10 and not again.status.audit.breach


def test_a_restarted_node_and_a_failover_keep_the_tenant_working(
    api_client: k8s.ApiClient, cluster: Cluster, deps: Deps, namespace: str
) -> None:
    store = cluster_store(api_client, cluster)
    tenant = make_tenant(api_client, namespace, "notes", storeRef={"name": store}, agents=["intake"])
    outcome = reconciler.reconcile(tenant, deps)
    tenant = settled(tenant, outcome)
    env = _agent_env(api_client, namespace, "notes", "intake")
    prefix = acl.Layout(namespace, "notes", cluster=True).prefix
    replica = next(n for n in cluster.nodes if n.role() == "replica")
    replica.stop()
    replica.start()  # no ACL file: it comes back without the tenant's users
    cluster.wait_healthy()
    assert not _logs_in(replica, env)
    lagging = store_pass(api_client, store, deps).status.nodes  # the store shows where users are missing
    [shown] = [n for n in lagging if n.address == f"{replica.host}:{replica.port}"]
    assert shown.converged is False and shown.missing_users >= 2  # the tenant user, the agent (and the jobs')
    repaired = reconciler.reconcile(tenant, deps)
    assert "DriftRepaired" in {e.reason for e in repaired.events}
    assert _logs_in(replica, env)
    # this tenant's three users (tenant, agent, jobs) are back; other tenants' come back with their own passes
    [now] = [n for n in store_pass(api_client, store, deps).status.nodes if n.address == shown.address]
    assert now.missing_users == shown.missing_users - 3
    tenant = settled(tenant, repaired)
    # the primary serving the tenant's slot dies; its replica (which has the users) takes over
    with AgentMemory.from_env(env) as memory:
        chat = memory.conversation("case-1", "patient-9")
        chat.append("human", "before the failover")
        cluster.kill_primary(_shard_serving(cluster, key_slot(prefix.encode())))
        chat.append("human", "after the failover")
        assert [m.content for m in chat.messages()] == ["before the failover", "after the failover"]
        assert memory.verify_audit().ok
    after = reconciler.reconcile(tenant, deps)  # the dead node is skipped; the tenant stays Ready
    assert ready(after) == ("True", "Provisioned")
    next(n for n in cluster.nodes if not n.running).start()  # back as a replica, for the tests after this one
    cluster.wait_healthy()
    deadline = time.monotonic() + 30  # and done loading, as CLUSTER SHARDS tells (docs/cluster.md)
    while any(n["health"] != "online" for s in cluster.shards() for n in s["nodes"]) and time.monotonic() < deadline:
        time.sleep(0.2)


def _shard_serving(cluster: Cluster, slot: int) -> int:
    """The sandbox's shard index of the primary serving `slot` now (CLUSTER SLOTS: start, end, primary, ...)."""
    with cluster.running_nodes()[0].admin_client() as client:
        ranges = client.execute_command("CLUSTER", "SLOTS")
    port = next(int(primary[1]) for start, end, primary, *_ in ranges if int(start) <= slot <= int(end))
    return next(n.shard for n in cluster.nodes if n.port == port)


def test_deleting_a_tenant_revokes_it_on_every_node_and_deletes_its_keys(
    api_client: k8s.ApiClient, cluster: Cluster, deps: Deps, namespace: str
) -> None:
    store = cluster_store(api_client, cluster)
    tenant = make_tenant(api_client, namespace, "gone", storeRef={"name": store}, deletionPolicy="Delete")
    outcome = reconciler.reconcile(tenant, deps)
    env = secret_data(api_client, namespace, "gone-memory-credentials") | secret_data(
        api_client, namespace, "gone-memory-keys"
    )
    with AgentMemory.from_env(env) as memory:
        memory.conversation("c", "s", agent="a").append("human", "to be deleted")
    events = reconciler.finalize(settled(tenant, outcome), deps)
    assert "DataDeleted" in {e.reason for e in events}
    assert not any(_logs_in(node, env) for node in cluster.running_nodes())
    prefix = acl.Layout(namespace, "gone", cluster=True).prefix
    with cluster.cluster_client() as client:
        assert list(client.scan_iter(match=f"{prefix}*", target_nodes=client.ALL_NODES)) == []
