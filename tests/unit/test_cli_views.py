"""The kubectl plugin's pure parts: the status document and tree, and the --redis-url redirect."""

from __future__ import annotations

from typing import Any

from memory_cli.__main__ import _redirect
from memory_cli.views import healthy, render_table, render_tree, tenant_document


def tenant(**status: Any) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True", "reason": "Provisioned", "message": "ok"}]
    return {
        "metadata": {"name": "t", "namespace": "ns"},
        "spec": {"isolation": "strict"},
        "status": {
            "store": "s",
            "encryption": True,
            "users": [{"name": "mt_ns_t"}, {"name": "mt_ns_t_a", "agent": "a"}],
            "conditions": conditions,
            **status,
        },
    }


STORE = {
    "spec": {"mode": "Cluster"},
    "status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "Connected"}],
        "server": {"engine": "valkey", "version": "9.1.2"},
        "nodes": [
            {"address": "10.0.0.1:6379", "role": "primary", "shard": 0, "health": "online", "converged": True},
            {"address": "10.0.0.2:6379", "role": "replica", "shard": 0, "health": "online", "converged": False,
             "missingUsers": 3},
        ],
    },
}  # fmt: skip
SECRETS = {"t-memory-credentials", "t-a-memory-credentials", "t-memory-job-credentials", "t-memory-keys"}


def test_a_complete_tenant_is_healthy_and_its_tree_shows_the_cluster_nodes() -> None:
    doc = tenant_document(tenant(), STORE, SECRETS, {})
    assert healthy(doc)
    tree = render_tree(doc)
    assert tree.splitlines()[0] == "MemoryTenant ns/t (strict): Ready True (Provisioned): ok"
    assert "MemoryStore s (Cluster, valkey 9.1.2): Ready True (Connected)" in tree
    assert "10.0.0.2:6379 replica shard 0 online, missing 3 user(s)" in tree
    assert "retention: CronJob t-memory-retention MISSING" in tree
    assert "On deletion: revokes access, keeps the data and keyring (Retain)" in tree


def test_the_tree_says_whether_a_delete_policy_is_confirmed() -> None:
    body = tenant()
    body["spec"]["deletionPolicy"] = "Delete"
    assert "KEEPS the data: Delete is not confirmed" in render_tree(tenant_document(body, STORE, SECRETS, {}))
    body["metadata"]["annotations"] = {"agentmemory.io/confirm-deletion": "t"}
    doc = tenant_document(body, STORE, SECRETS, {})
    assert doc["deletion"] == {"policy": "Delete", "confirmed": True}
    assert "deletes the data and keyring (confirmed)" in render_tree(doc)


def test_a_missing_secret_or_a_false_compliant_is_not_healthy() -> None:
    assert not healthy(tenant_document(tenant(), STORE, SECRETS - {"t-memory-keys"}, {}))
    noncompliant = {"type": "Compliant", "status": "False", "reason": "Violations"}
    ready = tenant()["status"]["conditions"]
    assert not healthy(tenant_document(tenant(conditions=[*ready, noncompliant]), STORE, SECRETS, {}))


def test_the_table_has_a_row_per_tenant_under_its_header() -> None:
    lines = render_table([tenant(usage={"keys": 7, "memoryBytes": 2048})]).splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "READY", "REASON", "COMPLIANT", "SCORE", "KEYS", "MEMORY", "STORE"]
    assert lines[1].split() == ["ns", "t", "True", "Provisioned", "Unknown", "-", "7", "2.0", "KiB", "s"]


def test_redis_url_redirect_keeps_the_credentials_and_the_database() -> None:
    url = "redis://mt_ns_t__jobs:s3cret@redis.memory.svc:6379/0"
    assert _redirect(url, "redis://127.0.0.1:16379") == "redis://mt_ns_t__jobs:s3cret@127.0.0.1:16379/0"
    assert _redirect("rediss://u:p@a:1", "127.0.0.1:2") == "rediss://u:p@127.0.0.1:2"  # host:port alone
