"""CompliancePolicy resolution and its binding to tenants, against the sandbox API and a real valkey-server."""

from __future__ import annotations

import itertools

import pytest
from kubernetes import client as k8s

from memory_client.audit import GENESIS, chain_hash
from memory_operator.api.v1alpha1 import GROUP, VERSION, CompliancePolicy
from memory_operator.deps import Deps
from memory_operator.errors import InvalidSpec, PolicyConflict, PolicyInUse, PolicyNotFound
from memory_operator.reconcilers import compliancepolicy as policy_reconciler
from memory_operator.reconcilers import memorytenant as reconciler
from memory_sandbox.engine import Engine
from tests.integration.objects import custom, make_policy, make_store, make_tenant, secret_data, settled

pytestmark = pytest.mark.integration
_names = itertools.count()


def policy_name() -> str:
    return f"policy-{next(_names)}"


def load_policy(api_client: k8s.ApiClient, name: str) -> CompliancePolicy:
    return CompliancePolicy.from_body(
        custom(api_client).get_cluster_custom_object(GROUP, VERSION, "compliancepolicies", name)
    )


def test_policy_status_shows_resolved_requirements_and_bound_count(api_client: k8s.ApiClient, deps: Deps) -> None:
    name = policy_name()
    make_policy(api_client, name, frameworks=["GDPR", "SOX"])

    outcome = policy_reconciler.reconcile(load_policy(api_client, name), deps, ["a/x", "b/y"])

    assert outcome.status.requirements is not None
    assert outcome.status.requirements.message_retention_days == 365
    assert outcome.status.requirements.audit_retention_days == 2555
    assert outcome.status.bound_tenants == 2
    assert [(c.type, c.status, c.reason) for c in outcome.status.conditions] == [("Ready", "True", "Resolved")]


def test_contradictory_policy_is_invalid_spec_naming_the_field(api_client: k8s.ApiClient, deps: Deps) -> None:
    name = policy_name()
    make_policy(api_client, name, frameworks=["PCI_DSS"], overrides={"messageMinRetentionDays": 400})
    with pytest.raises(InvalidSpec, match=r"spec\.overrides\.messageMinRetentionDays: minimum 400 days"):
        policy_reconciler.reconcile(load_policy(api_client, name), deps, [])


def test_policy_in_use_cannot_go() -> None:
    with pytest.raises(PolicyInUse, match="team/bot"):
        policy_reconciler.finalize("p", ["team/bot"])
    policy_reconciler.finalize("p", [])


def test_tenant_gets_the_strictest_combination_in_status_and_secret(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store, gdpr, hipaa = make_store(api_client, engine), policy_name(), policy_name()
    make_policy(api_client, gdpr, frameworks=["GDPR"], overrides={"masking": {"detectors": ["email"]}})
    make_policy(api_client, hipaa, frameworks=["HIPAA"])
    tenant = make_tenant(
        api_client,
        namespace,
        "clinic",
        storeRef={"name": store},
        retentionDays=90,
        encryption={"enabled": False},
        policyRefs=[{"name": gdpr}, {"name": hipaa}],
    )

    outcome = reconciler.reconcile(tenant, deps)

    effective = outcome.status.effective_policy
    assert effective is not None
    assert effective.message_retention_days == 90  # the tenant's own 90 beats GDPR's 365
    assert effective.audit_retention_days == 2555
    assert effective.encryption_required and outcome.status.encryption  # HIPAA forces it on
    assert outcome.status.policies == [gdpr, hipaa]
    env = secret_data(api_client, namespace, "clinic-memory-credentials")
    assert (env["MEMORY_RETENTION_DAYS"], env["MEMORY_AUDIT_RETENTION_DAYS"]) == ("90", "2555")
    assert (env["MEMORY_ENCRYPTION"], env["MEMORY_MASKING"], env["MEMORY_ACCESS_LOGGING"]) == (
        "required",
        "email",
        "true",
    )


def test_missing_policy_is_reported_and_nothing_is_provisioned(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "waiting", storeRef={"name": store}, policyRefs=[{"name": "nope"}])

    with pytest.raises(PolicyNotFound, match=r"spec\.policyRefs\[0\]\.name: CompliancePolicy 'nope' not found"):
        reconciler.reconcile(tenant, deps)
    assert k8s.CoreV1Api(api_client).list_namespaced_secret(namespace).items == []


def test_tenant_retention_below_a_policy_minimum_is_a_conflict(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store, records = make_store(api_client, engine), policy_name()
    make_policy(api_client, records, overrides={"messageMinRetentionDays": 180})
    tenant = make_tenant(
        api_client, namespace, "short", storeRef={"name": store}, retentionDays=30, policyRefs=[{"name": records}]
    )

    with pytest.raises(PolicyConflict, match=rf"minimum 180 days exceeds the maximum .* 30 .*{records}"):
        reconciler.reconcile(tenant, deps)


def test_audit_entries_are_trimmed_only_once_older_than_the_audit_minimum(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store, sox = make_store(api_client, engine), policy_name()
    make_policy(api_client, sox, frameworks=["SOX"])  # audit minimum 2,555 days
    tenant = make_tenant(api_client, namespace, "ledger", storeRef={"name": store}, policyRefs=[{"name": sox}])
    now = deps.clock()
    day_ms = 86_400_000
    key = f"audit:{namespace}:ledger"
    admin = engine.admin_client()
    prev = GENESIS
    for age_days in (3000, 2556, 2554, 10):  # two beyond the minimum, two within it
        fields = {"action": "save", "n": "1"}
        h = chain_hash(prev, fields)
        admin.xadd(key, {**fields, "prev": prev, "h": h}, id=f"{int(now.timestamp() * 1000) - age_days * day_ms}-0")
        prev = h

    outcome = reconciler.reconcile(tenant, deps)

    assert admin.xlen(key) == 2
    assert [e.message for e in outcome.events if e.reason == "AuditTrimmed"] == ["2 audit entries older than 2555 days"]
    # The operator's own trim is no breach: the seal records it, and the next pass agrees.
    assert outcome.status.audit is not None and outcome.status.audit.breach == ""
    assert outcome.status.audit.trimmed == 2
    again = reconciler.reconcile(settled(tenant, outcome), deps)
    assert again.status.audit is not None and again.status.audit.breach == ""
    assert "AuditTrailTampered" not in {e.reason for e in again.events}


def test_without_an_audit_minimum_nothing_is_trimmed(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "keeper", storeRef={"name": store})
    engine.admin_client().xadd(f"audit:{namespace}:keeper", {"event": "save"}, id="1-0")  # 1970

    reconciler.reconcile(tenant, deps)

    assert engine.admin_client().xlen(f"audit:{namespace}:keeper") == 1
