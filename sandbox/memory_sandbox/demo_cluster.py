"""`agent-memory-sandbox demo --cluster`: a 3 x 1 Valkey Cluster on loopback as a `mode: Cluster` MemoryStore, a
tenant on it, and its agent appending through the loss of the primary that serves it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import yaml
from redis.crc import key_slot

from memory_sandbox.cluster import Cluster, ClusterNode
from memory_sandbox.sandbox import STORE_NAMESPACE, Sandbox

__all__ = ["CLUSTER_STORE", "run_cluster_demo"]

Say = Callable[[str], None]

CLUSTER_STORE = "sandbox-cluster"
NAMESPACE = "team-scale"
TENANT = "bulk-agents"


def _manifests(cluster: Cluster) -> str:
    seed = cluster.nodes[0]
    secret = f"{CLUSTER_STORE}-admin"
    docs = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, "namespace": STORE_NAMESPACE},
            "stringData": {"username": cluster.admin_username, "password": cluster.admin_password},
        },
        {
            "apiVersion": "agentmemory.io/v1alpha1",
            "kind": "MemoryStore",
            "metadata": {"name": CLUSTER_STORE},
            "spec": {
                "url": f"redis://{seed.host}:{seed.port}",
                "mode": "Cluster",
                "adminSecretRef": {"name": secret, "namespace": STORE_NAMESPACE},
            },
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "agentmemory.io/v1alpha1",
            "kind": "MemoryTenant",
            "metadata": {"name": TENANT, "namespace": NAMESPACE},
            "spec": {"storeRef": {"name": CLUSTER_STORE}, "isolation": "moderate", "agents": ["worker"]},
        },
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


def _secret(sandbox: Sandbox, name: str) -> dict[str, str]:
    raw = json.loads(sandbox.kubectl("get", "secret", name, "-n", NAMESPACE, "-o", "json").stdout)
    return {k: base64.b64decode(v).decode() for k, v in raw["data"].items()}


def run_cluster_demo(sandbox: Sandbox, say: Say = print, *, timeout: float = 60.0) -> bool:
    """Start the cluster (the sandbox stops it), declare it and a tenant, and show the tenant surviving a
    failover. True when the agent's appends before and after the primary's death are all there, audited."""
    from memory_client import AgentMemory  # noqa: PLC0415 - the demo's only library user

    say("\n# A Valkey Cluster: 3 primaries with one replica each on loopback, as a MemoryStore in mode Cluster")
    cluster = sandbox.adopt(Cluster(primaries=3, replicas=1).start())
    sandbox.kubectl("apply", "-f", "-", input=_manifests(cluster))
    for what in (f"memorystore/{CLUSTER_STORE}", f"memorytenant/{TENANT}"):
        where = [] if what.startswith("memorystore") else ["-n", NAMESPACE]
        sandbox.kubectl("wait", "--for=condition=Ready", what, *where, f"--timeout={int(timeout)}s")
    nodes = json.loads(
        sandbox.kubectl("get", "memorystore", CLUSTER_STORE, "-o", "jsonpath={.status.nodes}").stdout or "[]"
    )
    for node in nodes:
        say(f"  {node['address']:>17}  shard {node['shard']}  {node['role']:<8} {node['health']}")
    env = {**_secret(sandbox, f"{TENANT}-worker-memory-credentials"), **_secret(sandbox, f"{TENANT}-memory-keys")}
    prefix = env["MEMORY_KEY_PREFIX"]
    say(f"  tenant {NAMESPACE}/{TENANT}: keys under {prefix} (one hash tag: slot {key_slot(prefix.encode())}),")
    say(f"  its users on all {len(env['MEMORY_CLUSTER_NODES'].split(','))} nodes (ACL users are per node)")
    with AgentMemory.from_env(env) as memory:
        chat = memory.conversation("batch-7", "customer-42")
        for i in range(5):
            chat.append("human", f"before the failover {i}")
        shard = next(n.shard for n in cluster.nodes if n.running and n.role() == "primary" and _serves(n, prefix))
        _, seconds = cluster.kill_primary(shard)
        say(f"  SIGKILL of the primary serving the tenant: its replica took over in {seconds:.1f}s")
        for i in range(5):
            chat.append("human", f"after the failover {i}")
        kept = len(chat.messages())
        verified = memory.verify_audit()
    say(f"  the agent appended 10 messages with the same Secret; {kept} stored; audit chain verified: {verified.ok}")
    return kept == 10 and verified.ok


def _serves(node: ClusterNode, prefix: str) -> bool:
    """Whether `node` is the primary serving `prefix`'s slot (CLUSTER SLOTS: start, end, primary, replicas)."""
    slot = key_slot(prefix.encode())
    with node.admin_client() as client:
        ranges = client.execute_command("CLUSTER", "SLOTS")
    return any(int(a) <= slot <= int(b) and int(primary[1]) == node.port for a, b, primary, *_ in ranges)
