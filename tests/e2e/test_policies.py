"""e2e: CompliancePolicies bound to tenants, with the operator as a real process and kubectl."""

from __future__ import annotations

from typing import Any

import pytest

from memory_sandbox.sandbox import Sandbox
from tests.e2e.conftest import apply, condition, get_json, secret, tenant_manifest, wait_condition, wait_until

pytestmark = pytest.mark.e2e


def policy(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "agentmemory.io/v1alpha1", "kind": "CompliancePolicy", "metadata": {"name": name},
            "spec": spec}  # fmt: skip


def event_reasons(sandbox: Sandbox, name: str) -> set[str]:
    events = get_json(sandbox, "events", "-A", "--field-selector", f"involvedObject.name={name}")["items"]
    return {e["reason"] for e in events}


def test_policy_shows_requirements_and_reaches_bound_tenants(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, policy("e2e-gdpr", frameworks=["GDPR"]))
    apply(sandbox, tenant_manifest(namespace, "bound", policyRefs=[{"name": "e2e-gdpr"}]))
    obj = wait_condition(sandbox, namespace, "bound", "True")
    assert obj["status"]["effectivePolicy"]["messageRetentionDays"] == 365
    wait_until(lambda: get_json(sandbox, "compliancepolicy", "e2e-gdpr")["status"].get("boundTenants") == 1,
               what="boundTenants 1")  # fmt: skip

    apply(sandbox, policy("e2e-gdpr", frameworks=["GDPR"], overrides={"messageRetentionDays": 30}))

    wait_until(
        lambda: secret(sandbox, namespace, "bound-memory-credentials").get("MEMORY_RETENTION_DAYS") == "30",
        what="the tenant's Secret to follow the policy",
    )
    # The Secret is written before the status (secrets first), so the status follows a moment later.
    wait_until(
        lambda: (
            get_json(sandbox, "memorytenant", "bound", "-n", namespace)["status"]["effectivePolicy"][
                "messageRetentionDays"
            ]
            == 30
        ),
        what="the tenant's status to follow the policy",
    )


def test_policies_that_contradict_each_other_leave_their_tenant_in_policy_conflict(
    sandbox: Sandbox, namespace: str
) -> None:
    # each is valid on its own (a single policy with minimum > maximum is refused at kubectl apply: test_hostile)
    apply(sandbox, policy("e2e-short", overrides={"messageRetentionDays": 30}))
    apply(sandbox, policy("e2e-long", overrides={"messageMinRetentionDays": 90}))
    refs = [{"name": "e2e-short"}, {"name": "e2e-long"}]
    apply(sandbox, tenant_manifest(namespace, "conflicted", policyRefs=refs))

    obj = wait_condition(sandbox, namespace, "conflicted", "False", "PolicyConflict")
    assert "messageMinRetentionDays" in condition(obj)["message"]
    assert condition(obj, "Stalled")["status"] == "True"
    assert "users" not in obj["status"] or obj["status"]["users"] == []  # nothing provisioned


def test_policy_named_by_a_tenant_is_kept_until_the_tenant_lets_go(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, policy("e2e-kept", frameworks=["SOX"]))
    apply(sandbox, tenant_manifest(namespace, "holder", policyRefs=[{"name": "e2e-kept"}]))
    wait_condition(sandbox, namespace, "holder", "True")

    sandbox.kubectl("delete", "compliancepolicy", "e2e-kept", "--wait=false")

    wait_until(lambda: get_json(sandbox, "compliancepolicy", "e2e-kept")["metadata"].get("deletionTimestamp"))
    wait_until(lambda: "PolicyInUse" in event_reasons(sandbox, "e2e-kept"), what="a PolicyInUse event")
    sandbox.kubectl("delete", "memorytenant", "holder", "-n", namespace)
    wait_until(  # retries at a tenth of their delays (conftest.RETRY_SCALE): PolicyInUse's 30 s is 3 s here
        lambda: sandbox.kubectl("get", "compliancepolicy", "e2e-kept", check=False).returncode != 0,
        timeout=30,
        what="the policy to go once unbound",
    )
