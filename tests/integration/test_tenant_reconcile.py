"""The MemoryTenant reconciler against the sandbox API over HTTP and a real valkey-server.

Each test calls `reconcile`/`finalize` directly (no kopf), so every outcome is observed synchronously:
what the reconciler wrote to the API, what it did on the server, and what it reports.
"""

from __future__ import annotations

import base64
import json

import pytest
import redis
from kubernetes import client as k8s

from memory_client.audit import verify_entries
from memory_operator.api.v1alpha1 import GROUP, VERSION, MemoryTenant
from memory_operator.builders import acl
from memory_operator.deps import Deps
from memory_operator.errors import (
    InvalidSpec,
    KeyringUnreadable,
    NameConflict,
    PolicyNotFound,
    ResidencyUnsatisfied,
    StoreNotFound,
    StoreUnavailable,
)
from memory_operator.reconcilers import memorytenant as reconciler
from memory_operator.reconcilers.common import condition, with_conditions
from memory_sandbox.engine import Engine
from tests.integration.objects import (
    core,
    custom,
    login,
    make_policy,
    make_store,
    make_tenant,
    ready,
    secret_data,
    settled,
    store_pass,
)

pytestmark = pytest.mark.integration


# Provisioning ---------------------------------------------------------------------------------------------------


def test_moderate_tenant_gets_users_secrets_and_a_keyring(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "helpdesk", storeRef={"name": store}, agents=["triage", "responder"])

    outcome = reconciler.reconcile(tenant, deps)

    assert ready(outcome) == ("True", "Provisioned")
    status = outcome.status
    assert status.store == store
    assert status.key_prefix == f"mem:{namespace}:helpdesk:"
    assert [u.secret_name for u in status.users] == [
        "helpdesk-memory-credentials",
        "helpdesk-responder-memory-credentials",
        "helpdesk-triage-memory-credentials",
    ]
    assert status.observed_generation == tenant.metadata.generation
    data = secret_data(api_client, namespace, "helpdesk-memory-credentials")
    assert data["REDIS_USERNAME"] == f"mt_{namespace}_helpdesk"
    assert data["MEMORY_TENANT_ID"] == f"{namespace}/helpdesk"
    keyring = secret_data(api_client, namespace, "helpdesk-memory-keys")["MEMORY_KEYRING"]
    assert '"active":"k1"' in keyring
    assert json.loads(keyring)["pseudonym"]  # the subject pseudonym's own random key, minted with the keyring
    assert {e.reason for e in outcome.events} == {"KeyringCreated"}


def test_agent_credentials_work_inside_the_prefix_and_nowhere_else(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "notes", storeRef={"name": store}, agents=["intake"])
    reconciler.reconcile(tenant, deps)
    agent = login(api_client, namespace, "notes-intake-memory-credentials")
    prefix = acl.tenant_prefix(namespace, "notes")

    agent.set(f"{prefix}conversation:1", "hello")
    assert agent.get(f"{prefix}conversation:1") == "hello"
    with pytest.raises(redis.exceptions.NoPermissionError):
        agent.get("mem:other-namespace:notes:conversation:1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        agent.flushall()


def test_reconcile_again_changes_nothing_and_reuses_secret_material(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "steady", storeRef={"name": store})
    first = reconciler.reconcile(tenant, deps)
    before = secret_data(api_client, namespace, "steady-memory-credentials")
    keys_before = secret_data(api_client, namespace, "steady-memory-keys")

    second = reconciler.reconcile(settled(tenant, first), deps)

    assert second.events == []
    assert secret_data(api_client, namespace, "steady-memory-credentials") == before
    assert secret_data(api_client, namespace, "steady-memory-keys") == keys_before
    first_ready = next(c for c in first.status.conditions if c.type == "Ready")
    second_ready = next(c for c in second.status.conditions if c.type == "Ready")
    assert second_ready.last_transition_time == first_ready.last_transition_time


def test_the_client_knows_each_child_as_its_own_write_until_someone_else_changes_it(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    # What lets the child watch tell the echo of the operator's own write from an edit (handlers.memorytenant).
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "echoes", storeRef={"name": store})
    reconciler.reconcile(tenant, deps)
    children = [
        ("Secret", core(api_client).read_namespaced_secret, "echoes-memory-credentials"),
        ("Secret", core(api_client).read_namespaced_secret, "echoes-memory-keys"),
        ("CronJob", k8s.BatchV1Api(api_client).read_namespaced_cron_job, "echoes-memory-retention"),
        ("CronJob", k8s.BatchV1Api(api_client).read_namespaced_cron_job, "echoes-memory-report"),
    ]
    for kind, read, name in children:
        assert deps.kube.wrote(kind, namespace, name, read(name, namespace).metadata.resource_version), name

    someone = {"metadata": {"labels": {"edited-by": "someone"}}}
    core(api_client).patch_namespaced_secret("echoes-memory-credentials", namespace, someone)
    edited = core(api_client).read_namespaced_secret("echoes-memory-credentials", namespace)
    assert not deps.kube.wrote("Secret", namespace, "echoes-memory-credentials", edited.metadata.resource_version)


def test_colliding_names_across_namespaces_never_share_users_or_keys(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps
) -> None:
    store = make_store(api_client, engine)
    for ns in ("acme-eu", "acme"):
        core(api_client).create_namespace({"metadata": {"name": ns}})
    left = reconciler.reconcile(make_tenant(api_client, "acme-eu", "bot", storeRef={"name": store}), deps)
    right = reconciler.reconcile(make_tenant(api_client, "acme", "eu-bot", storeRef={"name": store}), deps)

    assert left.status.key_prefix != right.status.key_prefix
    assert {u.name for u in left.status.users}.isdisjoint({u.name for u in right.status.users})
    left_client = login(api_client, "acme-eu", "bot-memory-credentials")
    left_client.set(f"{left.status.key_prefix}x", "1")
    right_client = login(api_client, "acme", "eu-bot-memory-credentials")
    with pytest.raises(redis.exceptions.NoPermissionError):
        right_client.get(f"{left.status.key_prefix}x")


# Drift repair -------------------------------------------------------------------------------------------------


def test_deleted_acl_user_is_restored_with_the_password_already_in_the_secret(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "drift", storeRef={"name": store})
    tenant = settled(tenant, reconciler.reconcile(tenant, deps))
    username = tenant.status.users[0].name
    engine.admin_client().execute_command("ACL", "DELUSER", username)

    outcome = reconciler.reconcile(tenant, deps)

    assert [e.reason for e in outcome.events] == ["DriftRepaired"]
    assert "missing" in outcome.events[0].message
    assert login(api_client, namespace, "drift-memory-credentials").ping()
    # The repair is evidence in the tenant's audit trail, chained as the agent library chains its events.
    raw = engine.admin_client(decode_responses=True).xrange(f"audit:{namespace}:drift")
    assert [(fields["action"], fields["target"]) for _, fields in raw] == [("acl.drift_repaired", username)]
    assert verify_entries([(entry_id, fields) for entry_id, fields in raw]).ok


def test_edited_acl_rules_are_reset(api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "edited", storeRef={"name": store})
    tenant = settled(tenant, reconciler.reconcile(tenant, deps))
    username = tenant.status.users[0].name
    engine.admin_client().execute_command("ACL", "SETUSER", username, "+flushall", "~*")

    outcome = reconciler.reconcile(tenant, deps)

    assert [e.reason for e in outcome.events] == ["DriftRepaired"]
    client = login(api_client, namespace, "edited-memory-credentials")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.flushall()
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.get("somebody-elses-key")


def test_agent_removed_from_spec_loses_its_user_and_secret(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "team", storeRef={"name": store}, agents=["a", "b"])
    tenant = settled(tenant, reconciler.reconcile(tenant, deps))
    old_b = login(api_client, namespace, "team-b-memory-credentials")
    narrowed = tenant.model_copy(update={"spec": tenant.spec.model_copy(update={"agents": ["a"]})})

    outcome = reconciler.reconcile(narrowed, deps)

    assert [e.reason for e in outcome.events] == ["AgentRevoked"]
    assert [u.agent for u in outcome.status.users] == [None, "a"]
    assert engine.admin_client().execute_command("ACL", "GETUSER", f"mt_{namespace}_team_b") is None
    with pytest.raises(k8s.ApiException) as gone:
        core(api_client).read_namespaced_secret("team-b-memory-credentials", namespace)
    assert gone.value.status == 404
    with pytest.raises(redis.exceptions.AuthenticationError):
        old_b.connection_pool.disconnect()
        old_b.ping()


# Placement -----------------------------------------------------------------------------------------------------


def test_missing_store_is_reported_naming_the_field(api_client: k8s.ApiClient, deps: Deps, namespace: str) -> None:
    tenant = make_tenant(api_client, namespace, "lost", storeRef={"name": "no-such-store"})
    with pytest.raises(StoreNotFound, match=r"spec\.storeRef\.name: MemoryStore 'no-such-store' not found"):
        reconciler.reconcile(tenant, deps)


def test_residency_picks_a_store_in_the_region(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    make_store(api_client, engine, region="us-east-1")
    eu = make_store(api_client, engine, region="eu-west-1")
    tenant = make_tenant(api_client, namespace, "gdpr", residency="eu-west-1")

    assert reconciler.reconcile(tenant, deps).status.store == eu


def test_residency_nobody_satisfies_is_reported(api_client: k8s.ApiClient, deps: Deps, namespace: str) -> None:
    tenant = make_tenant(api_client, namespace, "moon", residency="moon-base-1")
    with pytest.raises(ResidencyUnsatisfied, match=r"spec\.residency: no MemoryStore has spec\.region 'moon-base-1'"):
        reconciler.reconcile(tenant, deps)


def test_store_cannot_change_once_provisioned(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    first, second = make_store(api_client, engine), make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "pinned", storeRef={"name": first})
    tenant = settled(tenant, reconciler.reconcile(tenant, deps))
    moved = tenant.model_copy(
        update={
            "spec": tenant.spec.model_copy(
                update={"store_ref": tenant.spec.store_ref.model_copy(update={"name": second})}
            )
        }  # type: ignore[union-attr]
    )
    with pytest.raises(InvalidSpec, match=r"spec\.storeRef\.name: cannot move"):
        reconciler.reconcile(moved, deps)


# Faults --------------------------------------------------------------------------------------------------------


def test_unreachable_store_writes_nothing_and_names_the_endpoint(
    api_client: k8s.ApiClient, fresh_engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, fresh_engine)
    fresh_engine.stop()
    tenant = make_tenant(api_client, namespace, "offline", storeRef={"name": store})

    with pytest.raises(StoreUnavailable) as caught:
        reconciler.reconcile(tenant, deps)

    assert f"127.0.0.1:{fresh_engine.port}" in caught.value.message
    assert fresh_engine.admin_password not in caught.value.message
    assert core(api_client).list_namespaced_secret(namespace).items == []


def test_store_back_after_outage_converges(
    api_client: k8s.ApiClient, fresh_engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, fresh_engine)
    tenant = make_tenant(api_client, namespace, "flaky", storeRef={"name": store})
    tenant = settled(tenant, reconciler.reconcile(tenant, deps))
    fresh_engine.stop()
    with pytest.raises(StoreUnavailable):
        reconciler.reconcile(tenant, deps)
    fresh_engine.start()  # no persistence: the server comes back without any ACL user

    outcome = reconciler.reconcile(tenant, deps)

    assert ready(outcome) == ("True", "Provisioned")
    assert "DriftRepaired" in {e.reason for e in outcome.events}
    assert login(api_client, namespace, "flaky-memory-credentials").ping()


def test_wrong_admin_password_is_unavailable_without_leaking_it(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine, password="not-the-admin-password")
    tenant = make_tenant(api_client, namespace, "denied", storeRef={"name": store})
    with pytest.raises(StoreUnavailable) as caught:
        reconciler.reconcile(tenant, deps)
    assert "not-the-admin-password" not in caught.value.message
    assert engine.admin_password not in caught.value.message


def test_foreign_secret_at_our_name_is_a_conflict_and_left_alone(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    core(api_client).create_namespaced_secret(
        namespace, {"metadata": {"name": "taken-memory-credentials"}, "stringData": {"mine": "yes"}}
    )
    tenant = make_tenant(api_client, namespace, "taken", storeRef={"name": store})

    with pytest.raises(NameConflict, match="not written by agent-memory-operator for MemoryTenant 'taken'"):
        reconciler.reconcile(tenant, deps)
    assert secret_data(api_client, namespace, "taken-memory-credentials") == {"mine": "yes"}


def test_unreadable_keyring_is_never_overwritten(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "keys", storeRef={"name": store})
    reconciler.reconcile(tenant, deps)
    core(api_client).patch_namespaced_secret(
        "keys-memory-keys", namespace, {"data": {"MEMORY_KEYRING": base64.b64encode(b"{broken").decode()}}
    )
    with pytest.raises(KeyringUnreadable):
        reconciler.reconcile(tenant, deps)
    assert secret_data(api_client, namespace, "keys-memory-keys")["MEMORY_KEYRING"] == "{broken"


def test_quota_exceeded_keeps_access_but_is_not_ready(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "full", storeRef={"name": store}, quota={"keys": 2})
    reconciler.reconcile(tenant, deps)
    client = login(api_client, namespace, "full-memory-credentials")
    for i in range(5):
        client.set(f"mem:{namespace}:full:k{i}", i)
        client.hset(f"mem:{namespace}:full:shared:sizes", f"mem:{namespace}:full:k{i}", 1)  # as the library indexes

    outcome = reconciler.reconcile(tenant, deps)

    assert ready(outcome) == ("False", "QuotaExceeded")
    assert "5 keys exceed spec.quota.keys 2" in next(c.message for c in outcome.status.conditions if c.type == "Ready")
    assert next(c.status for c in outcome.status.conditions if c.type == "Provisioned") == "True"
    assert outcome.status.usage is not None and outcome.status.usage.keys == 5


def test_keys_written_around_the_librarys_index_count_toward_the_quota(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    """An attacker with the tenant's credentials writes keys the library does not index: the operator's survey
    (admin SCAN) counts them, so the quota holds against them too."""
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "evader", storeRef={"name": store}, quota={"keys": 2})
    reconciler.reconcile(tenant, deps)
    client = login(api_client, namespace, "evader-memory-credentials")
    for i in range(5):
        client.set(f"mem:{namespace}:evader:hidden{i}", i)  # no size-index entry
    store_pass(api_client, store, deps)  # the store's pass surveys every tenant due, this new one included

    outcome = reconciler.reconcile(tenant, deps)

    assert ready(outcome) == ("False", "QuotaExceeded")
    assert outcome.status.usage is not None and outcome.status.usage.keys == 5


# Deletion ------------------------------------------------------------------------------------------------------


def test_retain_revokes_access_keeps_data_and_a_recreated_tenant_adopts_it(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "kept", storeRef={"name": store}, deletionPolicy="Retain")
    tenant = settled(tenant, reconciler.reconcile(tenant, deps))
    keyring = secret_data(api_client, namespace, "kept-memory-keys")
    login(api_client, namespace, "kept-memory-credentials").set(f"{tenant.status.key_prefix}fact", "42")

    events = reconciler.finalize(tenant, deps)

    assert [e.reason for e in events] == ["AccessRevoked", "DataRetained"]
    assert engine.admin_client().execute_command("ACL", "GETUSER", f"mt_{namespace}_kept") is None
    assert engine.admin_client().get(f"{tenant.status.key_prefix}fact") == b"42"
    assert not core(api_client).read_namespaced_secret("kept-memory-keys", namespace).metadata.owner_references
    custom(api_client).delete_namespaced_custom_object(GROUP, VERSION, namespace, "memorytenants", "kept")

    again = make_tenant(api_client, namespace, "kept", storeRef={"name": store})
    reconciler.reconcile(again, deps)

    assert secret_data(api_client, namespace, "kept-memory-keys") == keyring
    assert login(api_client, namespace, "kept-memory-credentials").get(f"{tenant.status.key_prefix}fact") == "42"


def test_delete_policy_erases_keys_and_keyring(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "gone", storeRef={"name": store}, deletionPolicy="Delete")
    tenant = settled(tenant, reconciler.reconcile(tenant, deps))
    client = login(api_client, namespace, "gone-memory-credentials")
    for i in range(1200):  # more than one SCAN batch
        client.set(f"{tenant.status.key_prefix}m{i}", i)
    engine.admin_client().set("mem:unrelated:tenant:k", "stays")

    events = reconciler.finalize(tenant, deps)

    assert [e.reason for e in events] == ["AccessRevoked", "DataDeleted"]
    assert "1200 keys" in events[1].message
    assert engine.admin_client().get("mem:unrelated:tenant:k") == b"stays"
    with pytest.raises(k8s.ApiException):
        core(api_client).read_namespaced_secret("gone-memory-keys", namespace)


@pytest.mark.parametrize("annotation", [None, "another-tenant"], ids=["absent", "naming-another-tenant"])
def test_delete_without_the_confirmation_naming_the_tenant_keeps_the_data(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str, annotation: str | None
) -> None:
    """A GitOps prune (or a CRD reinstall) deleting a tenant with deletionPolicy Delete must not destroy data that
    nobody confirmed: access goes, the data and keyring stay, and a Warning says why."""
    annotations = {} if annotation is None else {"agentmemory.io/confirm-deletion": annotation}
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "kept", storeRef={"name": store}, deletionPolicy="Delete",
                         annotations=annotations)  # fmt: skip
    tenant = settled(tenant, reconciler.reconcile(tenant, deps))
    login(api_client, namespace, "kept-memory-credentials").set(f"{tenant.status.key_prefix}fact", "42")

    events = reconciler.finalize(tenant, deps)

    assert [e.reason for e in events] == ["AccessRevoked", "DeletionNotConfirmed", "DataRetained"]
    assert events[1].type == "Warning" and "agentmemory.io/confirm-deletion" in events[1].message
    assert engine.admin_client().get(f"{tenant.status.key_prefix}fact") == b"42"
    keys = core(api_client).read_namespaced_secret("kept-memory-keys", namespace)
    assert not keys.metadata.owner_references  # orphaned, as with Retain: a tenant of the same name adopts it


def test_never_provisioned_tenant_finalizes_without_a_store(
    api_client: k8s.ApiClient, deps: Deps, namespace: str
) -> None:
    tenant = make_tenant(api_client, namespace, "never", storeRef={"name": "absent"})
    assert reconciler.finalize(tenant, deps) == []


def test_new_tenant_on_a_store_that_went_down_writes_nothing(
    api_client: k8s.ApiClient, fresh_engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, fresh_engine)
    reconciler.reconcile(make_tenant(api_client, namespace, "earlier", storeRef={"name": store}), deps)
    fresh_engine.stop()  # the operator has talked to this store before and remembers its command list

    with pytest.raises(StoreUnavailable):
        reconciler.reconcile(make_tenant(api_client, namespace, "later", storeRef={"name": store}), deps)

    names = {s.metadata.name for s in core(api_client).list_namespaced_secret(namespace).items}
    assert not any(name.startswith("later-") for name in names)


def test_a_failed_pass_does_not_make_the_next_success_report_drift(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    """A spec change whose first pass fails (PolicyNotFound) is no drift once it succeeds: the handler marks the
    generation observed on failure too, and "steady" must come from the Provisioned condition instead."""
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "late", storeRef={"name": store}, agents=["a"])
    tenant = settled(tenant, reconciler.reconcile(tenant, deps))
    body = custom(api_client).patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "memorytenants",
        "late",
        {"spec": {"isolation": "strict", "policyRefs": [{"name": "late-policy"}]}},
    )
    changed = MemoryTenant.from_body(body).model_copy(update={"status": tenant.status})
    generation = changed.metadata.generation
    with pytest.raises(PolicyNotFound) as failure:
        reconciler.reconcile(changed, deps)
    # What handlers.sync._fail writes: Ready False, and the generation observed.
    failed = condition("Ready", "False", failure.value.reason, failure.value.message, generation, deps.clock())
    changed = changed.model_copy(update={"status": with_conditions(changed.status, generation, failed)})
    make_policy(api_client, "late-policy", frameworks=["GDPR"])

    outcome = reconciler.reconcile(changed, deps)

    assert ready(outcome) == ("True", "Provisioned")
    assert "DriftRepaired" not in {e.reason for e in outcome.events}
    trail = engine.admin_client(decode_responses=True).xrange(f"audit:{namespace}:late")
    assert "acl.drift_repaired" not in {fields["action"] for _, fields in trail}
    # And a real drift on the now steady generation is still reported.
    engine.admin_client().execute_command("ACL", "DELUSER", f"mt_{namespace}_late_a")
    again = reconciler.reconcile(settled(changed, outcome), deps)
    assert [e.reason for e in again.events] == ["DriftRepaired"]
