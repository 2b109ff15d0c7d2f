"""e2e: kubectl applies YAML, the operator (a real kopf process) reconciles, kubectl and real clients check."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import redis

from memory_sandbox.demo import DEFAULT_SAMPLES, agents_converse, langgraph_resumes, prove_isolation, run_demo
from memory_sandbox.demo_cluster import run_cluster_demo
from memory_sandbox.sandbox import Sandbox, kubectl_binary
from tests.e2e.conftest import (
    apply,
    condition,
    get_json,
    login,
    running_sandbox,
    secret,
    tenant_manifest,
    wait_condition,
    wait_until,
)

pytestmark = pytest.mark.e2e

CONTRACT_KEYS = {"REDIS_URL", "REDIS_USERNAME", "REDIS_PASSWORD", "MEMORY_KEY_PREFIX", "MEMORY_TENANT_ID"}


def test_samples_become_ready_with_working_isolated_credentials(sandbox: Sandbox) -> None:
    sandbox.kubectl("apply", "-f", str(DEFAULT_SAMPLES))
    for namespace in ("team-support", "team-research"):  # other tests' tenants live elsewhere
        sandbox.kubectl("wait", "--for=condition=Ready", "memorytenants", "--all", "-n", namespace, "--timeout=30s")

    for namespace, name, agents in [
        ("team-support", "faq-bot", []),
        ("team-support", "helpdesk", ["triage", "responder"]),
        ("team-research", "clinical-notes", ["intake", "summarizer"]),
    ]:
        for agent in [None, *agents]:
            secret_name = f"{name}-{agent}-memory-credentials" if agent else f"{name}-memory-credentials"
            assert set(secret(sandbox, namespace, secret_name)) >= CONTRACT_KEYS, secret_name
        assert "MEMORY_KEYRING" in secret(sandbox, namespace, f"{name}-memory-keys")
    assert prove_isolation(sandbox, lambda _line: None)
    assert agents_converse(sandbox, lambda _line: None)  # the demo's two agents, through the library
    assert langgraph_resumes(sandbox, lambda _line: None)  # the demo's LangGraph agent, one process per turn


def test_the_demo_holds_and_every_command_it_prints_pastes_into_bash(tmp_path: Path) -> None:
    """`make demo`'s steps on a sandbox of its own, as `make demo` starts one (the shared one holds other tests'
    tenants that are not Ready on purpose, and the demo waits for all), and each `$ kubectl ...` line it prints
    run by bash exactly as printed: it exits 0 and, where the output cannot change (jsonpath), prints the same."""
    with running_sandbox(tmp_path) as sandbox:
        _demo_commands_paste(sandbox)


def _demo_commands_paste(sandbox: Sandbox) -> None:
    lines: list[str] = []
    assert run_demo(sandbox, DEFAULT_SAMPLES, lines.append)
    shown = "\n".join(lines).split("\n$ ")[1:]  # each: the command line, then its output
    commands = [[*block.split("\n", 1), ""][:2] for block in shown]
    assert len(commands) >= 10
    assert any("jsonpath={range" in command for command, _ in commands)  # the one that broke bash unquoted
    env = {
        **os.environ,
        "KUBECONFIG": str(sandbox.kubeconfig),  # what the demo tells the user to export
        "KUBECACHEDIR": str(sandbox.workdir / "kube-cache"),
        "PATH": f"{kubectl_binary().parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    for command, output in commands:
        done = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert done.returncode == 0, f"{command}: {done.stderr}"
        if "jsonpath=" in command and "effectivePolicy" not in command:
            assert output.startswith(done.stdout.strip()), command  # the demo's own notes may follow


def test_status_conditions_follow_api_conventions(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, tenant_manifest(namespace, "shape"))
    obj = wait_condition(sandbox, namespace, "shape", "True")

    for cond in obj["status"]["conditions"]:
        assert set(cond) == {"type", "status", "reason", "message", "observedGeneration", "lastTransitionTime"}
        assert cond["status"] in {"True", "False", "Unknown"}
        assert cond["reason"][0].isupper()
    assert "phase" not in obj["status"]
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 1


def test_spec_update_is_reconciled_and_observed_generation_follows(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, tenant_manifest(namespace, "growing", agents=["first"]))
    wait_condition(sandbox, namespace, "growing", "True")

    apply(sandbox, tenant_manifest(namespace, "growing", agents=["first", "second"]))

    def caught_up() -> bool:
        obj = get_json(sandbox, "memorytenant", "growing", "-n", namespace)
        return bool(obj["metadata"]["generation"] == 2 and obj["status"].get("observedGeneration") == 2)

    wait_until(caught_up, what="observedGeneration 2")
    assert login(sandbox, namespace, "growing-second-memory-credentials").ping()
    assert condition(get_json(sandbox, "memorytenant", "growing", "-n", namespace))["observedGeneration"] == 2


def test_schema_rejects_an_invalid_manifest_at_admission(sandbox: Sandbox, namespace: str) -> None:
    done = apply(sandbox, tenant_manifest(namespace, "typo", isolation="paranoid"), check=False)

    assert done.returncode != 0
    assert "spec.isolation" in done.stderr
    assert sandbox.kubectl("get", "memorytenant", "typo", "-n", namespace, check=False).returncode != 0


def test_invalid_spec_the_schema_cannot_catch_ends_as_invalid_spec_with_an_event(
    sandbox: Sandbox, namespace: str
) -> None:
    apply(sandbox, tenant_manifest(namespace, "empty-quota", quota={"memory": "0"}))

    obj = wait_condition(sandbox, namespace, "empty-quota", "False", "InvalidSpec")

    assert condition(obj)["message"].startswith("spec.quota.memory: ")
    events = get_json(sandbox, "events", "-n", namespace, "--field-selector", "involvedObject.name=empty-quota")
    assert [e["reason"] for e in events["items"]] == ["InvalidSpec"]
    assert get_json(sandbox, "secrets", "-n", namespace)["items"] == []  # nothing half-provisioned


def test_fixing_an_invalid_spec_recovers(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, tenant_manifest(namespace, "fixable", quota={"memory": "0"}))
    wait_condition(sandbox, namespace, "fixable", "False", "InvalidSpec")

    apply(sandbox, tenant_manifest(namespace, "fixable", quota={"memory": "1Mi"}))

    wait_condition(sandbox, namespace, "fixable", "True", "Provisioned")


def test_missing_store_is_reported_then_resolved_when_it_appears(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, tenant_manifest(namespace, "early", storeRef={"name": "late-store"}))
    obj = wait_condition(sandbox, namespace, "early", "False", "StoreNotFound")
    assert "spec.storeRef.name" in condition(obj)["message"]

    store = get_json(sandbox, "memorystore", "sandbox")
    late = {
        "apiVersion": "agentmemory.io/v1alpha1",
        "kind": "MemoryStore",
        "metadata": {"name": "late-store"},
        "spec": store["spec"],
    }
    apply(sandbox, late)

    wait_condition(sandbox, namespace, "early", "True", timeout=60)


def test_deleted_acl_user_is_restored_by_the_drift_timer(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, tenant_manifest(namespace, "drifty"))
    wait_condition(sandbox, namespace, "drifty", "True")
    client = login(sandbox, namespace, "drifty-memory-credentials")
    admin = sandbox.engine.admin_client()
    admin.execute_command("ACL", "DELUSER", f"mt_{namespace}_drifty")

    wait_until(lambda: admin.execute_command("ACL", "GETUSER", f"mt_{namespace}_drifty"), what="ACL user restored")

    client.connection_pool.disconnect()
    assert client.ping()  # the same Secret works again: the password was reused
    events = get_json(sandbox, "events", "-n", namespace, "--field-selector", "involvedObject.name=drifty")
    assert "DriftRepaired" in {e["reason"] for e in events["items"]}


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_kubectl_delete_revokes_access_and_follows_the_deletion_policy(
    sandbox: Sandbox, namespace: str, policy: str
) -> None:
    apply(sandbox, tenant_manifest(namespace, "leaving", deletionPolicy=policy))
    obj = wait_condition(sandbox, namespace, "leaving", "True")
    assert obj["metadata"]["finalizers"] == ["agentmemory.io/finalizer"]
    client = login(sandbox, namespace, "leaving-memory-credentials")
    key = f"{obj['status']['keyPrefix']}memory"
    client.set(key, "remember me")

    sandbox.kubectl("delete", "memorytenant", "leaving", "-n", namespace, "--timeout=30s")

    admin = sandbox.engine.admin_client()
    assert admin.execute_command("ACL", "GETUSER", f"mt_{namespace}_leaving") is None
    client.connection_pool.disconnect()
    with pytest.raises(redis.exceptions.AuthenticationError):
        client.ping()
    remaining = {s["metadata"]["name"] for s in get_json(sandbox, "secrets", "-n", namespace)["items"]}
    if policy == "Retain":
        assert admin.get(key) == b"remember me"
        assert remaining == {"leaving-memory-keys"}  # the keyring outlives the tenant with its data
    else:
        assert admin.get(key) is None
        assert remaining == set()


def test_a_prune_of_an_unconfirmed_delete_tenant_keeps_its_data(sandbox: Sandbox, namespace: str) -> None:
    """What a GitOps prune does: `kubectl delete` of a deletionPolicy Delete tenant whose manifest has no
    confirmation annotation. Access is revoked; the data and keyring are not destroyed, and a Warning says why."""
    manifest = tenant_manifest(namespace, "pruned", deletionPolicy="Delete")
    del manifest["metadata"]["annotations"]
    apply(sandbox, manifest)
    obj = wait_condition(sandbox, namespace, "pruned", "True")
    key = f"{obj['status']['keyPrefix']}memory"
    login(sandbox, namespace, "pruned-memory-credentials").set(key, "still needed")

    sandbox.kubectl("delete", "memorytenant", "pruned", "-n", namespace, "--timeout=30s")

    admin = sandbox.engine.admin_client()
    assert admin.execute_command("ACL", "GETUSER", f"mt_{namespace}_pruned") is None
    assert admin.get(key) == b"still needed"
    assert {s["metadata"]["name"] for s in get_json(sandbox, "secrets", "-n", namespace)["items"]} == {
        "pruned-memory-keys"
    }
    events = get_json(sandbox, "events", "-n", namespace, "--field-selector", "involvedObject.name=pruned")["items"]
    (warning,) = [e for e in events if e["reason"] == "DeletionNotConfirmed"]
    assert warning["type"] == "Warning" and "agentmemory.io/confirm-deletion" in warning["message"]


def test_the_cluster_demo_survives_the_loss_of_the_tenants_primary(sandbox: Sandbox) -> None:
    """`demo --cluster`: a mode: Cluster store (3 x 1 on loopback), a tenant on it Ready through the operator as a
    process, its agent's appends kept across a SIGKILL of the primary that serves it."""
    assert run_cluster_demo(sandbox, lambda _line: None)
