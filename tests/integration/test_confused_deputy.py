"""The operator as a deputy that cannot be confused: hostile MemoryStores and MemoryTenants against the reconcilers.

Each test performs what a user who may create our custom resources (or Secrets, CronJobs and ConfigMaps in a
tenant namespace) could try, against the sandbox API and a real valkey-server, and checks the outcome is a
clear refusal with nothing revealed, nothing half-provisioned and no access left alive after deletion.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kubernetes import client as k8s

from memory_operator.api.v1alpha1 import GROUP, VERSION, MemoryStore
from memory_operator.builders.meta import JOB_SERVICE_ACCOUNT
from memory_operator.clients.kube import KubeClient
from memory_operator.connections import StoreConnections
from memory_operator.deps import Deps
from memory_operator.errors import (
    AmbiguousDefaultStore,
    DeletionInProgress,
    InvalidSpec,
    NameConflict,
    SecretNotFound,
    StoreNotFound,
    StoreUnavailable,
)
from memory_operator.reconcilers import memorystore as store_reconciler
from memory_operator.reconcilers import memorytenant as reconciler
from memory_sandbox.engine import Engine
from tests.integration.objects import core, custom, login, make_store, make_tenant, secret_data, settled

pytestmark = pytest.mark.integration


@pytest.fixture
def confined(api_client: k8s.ApiClient) -> Iterator[Deps]:
    """Deps as the operator builds them: store Secrets are read from its own namespace ("default" here) only."""
    kube = KubeClient(api_client)
    built = Deps(
        kube=kube,
        stores=StoreConnections(kube, timeout=1.0, admin_namespaces=frozenset({"default"})),
        namespace="default",
    )
    yield built
    built.stores.close()


def _store(api_client: k8s.ApiClient, name: str, engine: Engine, ref: dict[str, Any], **meta: Any) -> MemoryStore:
    body = {"metadata": {"name": name, **meta}, "spec": {"url": engine.url, "adminSecretRef": ref}}
    return MemoryStore.from_body(custom(api_client).create_cluster_custom_object(GROUP, VERSION, "memorystores", body))


def _tenant_status(api_client: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    body = custom(api_client).get_namespaced_custom_object(GROUP, VERSION, namespace, "memorytenants", name)
    return dict(body.get("status") or {})


def _acl_users(engine: Engine) -> list[str]:
    return [u.decode() for u in engine.admin_client().execute_command("ACL", "USERS")]


def _secret_names(api_client: k8s.ApiClient, namespace: str) -> set[str]:
    return {s.metadata.name for s in core(api_client).list_namespaced_secret(namespace).items}


# A MemoryStore must never make the operator reveal a Secret it can read ------------------------------------------


def test_store_naming_a_tenant_secret_in_another_namespace_is_refused_before_it_is_read(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, confined: Deps, namespace: str
) -> None:
    victim = make_tenant(api_client, namespace, "victim", storeRef={"name": make_store(api_client, engine)})
    reconciler.reconcile(victim, deps)
    password = secret_data(api_client, namespace, "victim-memory-credentials")["REDIS_PASSWORD"]
    ref = {"name": "victim-memory-credentials", "namespace": namespace, "usernameKey": "REDIS_PASSWORD"}
    store = _store(api_client, "steal-password", engine, ref)

    with pytest.raises(InvalidSpec) as caught:
        store_reconciler.reconcile(store, confined)

    assert caught.value.message.startswith("spec.adminSecretRef.namespace:")
    assert password not in caught.value.message


def test_store_secret_values_are_never_quoted_not_even_the_username(
    api_client: k8s.ApiClient, engine: Engine, confined: Deps
) -> None:
    canary = "canary-" + base64.b16encode(b"tenant-keyring").decode()
    core(api_client).create_namespaced_secret(
        "default",
        {"metadata": {"name": "looks-like-admin"}, "stringData": {"username": canary, "password": canary + "-pw"}},
    )
    store = _store(api_client, "quoting", engine, {"name": "looks-like-admin", "namespace": "default"})

    with pytest.raises(StoreUnavailable) as caught:
        store_reconciler.reconcile(store, confined)

    assert canary not in caught.value.message
    assert "refused the admin credentials" in caught.value.message


def test_store_secret_without_the_named_key_names_the_field_not_the_value(
    api_client: k8s.ApiClient, engine: Engine, confined: Deps
) -> None:
    core(api_client).create_namespaced_secret(
        "default", {"metadata": {"name": "half-admin"}, "stringData": {"username": "someone-secret"}}
    )
    ref = {"name": "half-admin", "namespace": "default", "passwordKey": "pw"}
    store = _store(api_client, "half", engine, ref)

    with pytest.raises(SecretNotFound) as caught:
        store_reconciler.reconcile(store, confined)

    assert caught.value.message.startswith("spec.adminSecretRef.passwordKey:")
    assert "someone-secret" not in caught.value.message


def test_tenant_on_a_store_with_a_forbidden_secret_namespace_waits_as_store_unavailable(
    api_client: k8s.ApiClient, engine: Engine, confined: Deps, namespace: str
) -> None:
    store = _store(api_client, "elsewhere", engine, {"name": "x", "namespace": namespace})
    tenant = make_tenant(api_client, namespace, "waits", storeRef={"name": store.name})

    with pytest.raises(StoreUnavailable, match=r"cannot be used: spec\.adminSecretRef\.namespace"):
        reconciler.reconcile(tenant, confined)
    assert not any(n.startswith("waits-") for n in _secret_names(api_client, namespace))


# Revocation never depends on status ------------------------------------------------------------------------------


def test_deleting_a_tenant_whose_status_lost_its_users_still_revokes_every_user(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "forgetful", storeRef={"name": store}, agents=["a1"])
    reconciler.reconcile(tenant, deps)
    agent = login(api_client, namespace, "forgetful-a1-memory-credentials")
    stray = f"mt_{namespace}_forgetful_removed-long-ago"
    engine.admin_client().execute_command("ACL", "SETUSER", stray, "on", ">pw", "~x")
    pinned = tenant.model_copy(update={"status": tenant.status.model_copy(update={"store": store, "users": []})})

    events = reconciler.finalize(pinned, deps)

    left = [u for u in _acl_users(engine) if u.startswith(f"mt_{namespace}_forgetful")]
    assert left == []
    assert stray in events[0].message
    with pytest.raises(redis.exceptions.AuthenticationError):
        agent.ping()


def test_placement_is_recorded_before_the_first_user_or_secret_is_written(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "pinned", storeRef={"name": store})

    reconciler.reconcile(tenant, deps)  # its handler never wrote the outcome: only the early pin is there

    assert _tenant_status(api_client, namespace, "pinned")["store"] == store


def test_secret_names_colliding_between_two_tenants_are_refused_before_anything_is_written(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    first = make_tenant(api_client, namespace, "a", storeRef={"name": store}, agents=["b-c"])
    reconciler.reconcile(first, deps)
    second = make_tenant(api_client, namespace, "a-b", storeRef={"name": store}, agents=["c"])

    with pytest.raises(NameConflict, match=r"Secret .*/a-b-c-memory-credentials exists"):
        reconciler.reconcile(second, deps)

    assert not [u for u in _acl_users(engine) if u.startswith(f"mt_{namespace}_a-b")]
    assert "a-b-memory-credentials" not in _secret_names(api_client, namespace)
    assert "store" not in _tenant_status(api_client, namespace, "a-b")
    assert secret_data(api_client, namespace, "a-b-c-memory-credentials")["REDIS_USERNAME"] == f"mt_{namespace}_a_b-c"


def test_a_foreign_keys_secret_stops_the_tenant_before_any_credentials_exist(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    core(api_client).create_namespaced_secret(
        namespace, {"metadata": {"name": "late-memory-keys"}, "stringData": {"MEMORY_KEYRING": "someone's"}}
    )
    tenant = make_tenant(api_client, namespace, "late", storeRef={"name": store}, agents=["x"])

    with pytest.raises(NameConflict, match="late-memory-keys"):
        reconciler.reconcile(tenant, deps)

    assert _secret_names(api_client, namespace) == {"late-memory-keys"}
    assert not [u for u in _acl_users(engine) if u.startswith(f"mt_{namespace}_late")]
    events = reconciler.finalize(tenant, deps)  # never placed: nothing on any store, the foreign Secret stays
    assert events == []
    assert secret_data(api_client, namespace, "late-memory-keys") == {"MEMORY_KEYRING": "someone's"}


# Children of every kind are adopted only with our marks ----------------------------------------------------------


def _foreign_cronjob(namespace: str, name: str) -> dict[str, Any]:
    pod = {"restartPolicy": "Never", "containers": [{"name": "mine", "image": "busybox", "command": ["true"]}]}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace, "labels": {"team": "theirs"}},
        "spec": {"schedule": "0 1 * * *", "jobTemplate": {"spec": {"template": {"spec": pod}}}},
    }


def test_a_foreign_cronjob_at_our_name_is_never_taken_over(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    batch = k8s.BatchV1Api(api_client)
    batch.create_namespaced_cron_job(namespace, _foreign_cronjob(namespace, "cron-memory-retention"))
    tenant = make_tenant(api_client, namespace, "cron", storeRef={"name": store})

    with pytest.raises(NameConflict, match=r"CronJob .*/cron-memory-retention exists"):
        reconciler.reconcile(tenant, deps)

    kept = batch.read_namespaced_cron_job("cron-memory-retention", namespace)
    assert kept.metadata.owner_references is None
    assert kept.spec.job_template.spec.template.spec.containers[0].image == "busybox"
    assert _secret_names(api_client, namespace) == set()


def test_a_foreign_configmap_at_the_report_name_is_never_taken_over(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    core(api_client).create_namespaced_config_map(
        namespace, {"metadata": {"name": "cm-compliance-report"}, "data": {"theirs": "1"}}
    )
    tenant = make_tenant(api_client, namespace, "cm", storeRef={"name": store})

    with pytest.raises(NameConflict, match=r"ConfigMap .*/cm-compliance-report exists"):
        reconciler.reconcile(tenant, deps)
    assert core(api_client).read_namespaced_config_map("cm-compliance-report", namespace).data == {"theirs": "1"}


def test_a_foreign_job_service_account_is_never_used(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    core(api_client).create_namespaced_service_account(namespace, {"metadata": {"name": JOB_SERVICE_ACCOUNT}})
    tenant = make_tenant(api_client, namespace, "sa", storeRef={"name": store})

    with pytest.raises(NameConflict, match=rf"ServiceAccount .*/{JOB_SERVICE_ACCOUNT} exists"):
        reconciler.reconcile(tenant, deps)


def test_job_pods_run_as_a_token_less_service_account_of_our_own(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    reconciler.reconcile(make_tenant(api_client, namespace, "jobs", storeRef={"name": store}), deps)

    account = core(api_client).read_namespaced_service_account(JOB_SERVICE_ACCOUNT, namespace)
    assert account.automount_service_account_token is False
    cronjob = k8s.BatchV1Api(api_client).read_namespaced_cron_job("jobs-memory-report", namespace)
    pod = cronjob.spec.job_template.spec.template.spec
    assert (pod.service_account_name, pod.automount_service_account_token) == (JOB_SERVICE_ACCOUNT, False)


# Placement: no coin toss, no store on its way out ----------------------------------------------------------------


def test_two_default_stores_are_ambiguous_and_place_nothing(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    names = [make_store(api_client, engine, default=True) for _ in range(2)]
    try:
        tenant = make_tenant(api_client, namespace, "undecided")
        with pytest.raises(AmbiguousDefaultStore) as caught:
            reconciler.reconcile(tenant, deps)
        assert all(name in caught.value.message for name in names)
        assert "store" not in _tenant_status(api_client, namespace, "undecided")
    finally:
        for name in names:
            custom(api_client).delete_cluster_custom_object(GROUP, VERSION, "memorystores", name)


def test_a_store_being_deleted_takes_no_new_tenants(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    name = make_store(api_client, engine)
    custom(api_client).patch_cluster_custom_object(
        GROUP, VERSION, "memorystores", name, {"metadata": {"finalizers": ["test/hold"]}}
    )
    custom(api_client).delete_cluster_custom_object(GROUP, VERSION, "memorystores", name)
    try:
        with pytest.raises(StoreNotFound, match="is being deleted"):
            reconciler.reconcile(make_tenant(api_client, namespace, "newcomer", storeRef={"name": name}), deps)
    finally:
        custom(api_client).patch_cluster_custom_object(
            GROUP, VERSION, "memorystores", name, {"metadata": {"finalizers": None}}
        )


# Deletion happens once, and nothing is re-applied after it began -------------------------------------------------


def test_a_reconcile_after_deletion_began_writes_nothing(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "ending", storeRef={"name": store}, deletionPolicy="Delete")
    tenant = settled(tenant, reconciler.reconcile(tenant, deps))
    for owned in ("ending-memory-credentials", "ending-memory-job-credentials"):  # what GC does for owned Secrets
        core(api_client).delete_namespaced_secret(owned, namespace)

    first = reconciler.finalize(tenant, deps)
    with pytest.raises(DeletionInProgress):
        reconciler.reconcile(tenant, deps)  # a timer pass that started before the delete request

    assert [e.reason for e in first] == ["AccessRevoked", "DataDeleted"]
    assert reconciler.finalize(tenant, deps) == []  # a second delivery of the same deletion does nothing twice
    assert not [n for n in _secret_names(api_client, namespace) if n.startswith("ending-")]
    assert not [u for u in _acl_users(engine) if u.startswith(f"mt_{namespace}_ending")]


def test_a_reconcile_whose_live_body_shows_deletion_stops_before_writing(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "watched", storeRef={"name": store})

    with pytest.raises(DeletionInProgress):
        reconciler.reconcile(tenant, deps, cancelled=lambda: True)
    assert _secret_names(api_client, namespace) == set()
    assert "store" not in _tenant_status(api_client, namespace, "watched")


def test_an_agent_removed_from_the_spec_is_revoked_from_the_store_itself(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    store = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "crew", storeRef={"name": store}, agents=["x", "y"])
    outcome = reconciler.reconcile(tenant, deps)
    body = custom(api_client).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "memorytenants", "crew", {"spec": {"agents": ["x"]}}
    )
    # status lost its record of the users (restored from a backup without status): the store still says
    changed = (
        type(tenant).from_body(body).model_copy(update={"status": outcome.status.model_copy(update={"users": []})})
    )

    events = reconciler.reconcile(changed, deps).events

    assert [e.reason for e in events] == ["AgentRevoked"]
    assert f"mt_{namespace}_crew_y" not in _acl_users(engine)
    assert "crew-y-memory-credentials" not in _secret_names(api_client, namespace)
    assert "crew-x-memory-credentials" in _secret_names(api_client, namespace)
