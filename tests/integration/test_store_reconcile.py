"""The MemoryStore reconciler against the sandbox API and real servers."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from memory_operator.api.v1alpha1 import GROUP, VERSION, MemoryStore
from memory_operator.clients import redis_admin
from memory_operator.deps import Deps
from memory_operator.errors import SecretNotFound, StoreInUse, StoreUnavailable
from memory_operator.reconcilers import memorystore as reconciler
from memory_operator.reconcilers import memorytenant as tenant_reconciler
from memory_sandbox.engine import Engine, calls_between
from tests.integration.objects import make_store, make_tenant

pytestmark = pytest.mark.integration


def load(api_client: k8s.ApiClient, name: str) -> MemoryStore:
    body = k8s.CustomObjectsApi(api_client).get_cluster_custom_object(GROUP, VERSION, "memorystores", name)
    return MemoryStore.from_body(body)


def test_store_reports_engine_and_version(api_client: k8s.ApiClient, any_engine: Engine, deps: Deps) -> None:
    store = load(api_client, make_store(api_client, any_engine))

    outcome = reconciler.reconcile(store, deps)

    ready = outcome.status.conditions[0]
    assert (ready.type, ready.status, ready.reason) == ("Ready", "True", "Connected")
    assert outcome.status.server is not None
    info = any_engine.admin_client().info("server")
    assert outcome.status.server.version == info.get("valkey_version", info["redis_version"])
    assert outcome.status.observed_generation == store.metadata.generation


def test_unreachable_store_is_unavailable(api_client: k8s.ApiClient, fresh_engine: Engine, deps: Deps) -> None:
    store = load(api_client, make_store(api_client, fresh_engine))
    fresh_engine.stop()
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{fresh_engine.port}"):
        reconciler.reconcile(store, deps)


def test_missing_admin_secret_names_the_field(api_client: k8s.ApiClient, engine: Engine, deps: Deps) -> None:
    name = make_store(api_client, engine)
    k8s.CoreV1Api(api_client).delete_namespaced_secret(f"{name}-admin", "default")
    with pytest.raises(SecretNotFound, match=r"spec\.adminSecretRef: Secret default/.*-admin of MemoryStore"):
        reconciler.reconcile(load(api_client, name), deps)


def test_store_hosting_tenants_is_protected_until_they_are_gone(
    api_client: k8s.ApiClient, engine: Engine, deps: Deps, namespace: str
) -> None:
    name = make_store(api_client, engine)
    tenant = make_tenant(api_client, namespace, "resident", storeRef={"name": name})
    outcome = tenant_reconciler.reconcile(tenant, deps)
    k8s.CustomObjectsApi(api_client).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "memorytenants", "resident", {"status": outcome.status.to_wire()}
    )

    with pytest.raises(StoreInUse, match=f"{namespace}/resident"):
        reconciler.finalize(name, deps)

    k8s.CustomObjectsApi(api_client).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, "memorytenants", "resident"
    )
    reconciler.finalize(name, deps)


# The tenants' survey: one walk per store pass, not one per tenant ------------------------------------------


def test_a_store_pass_surveys_all_its_due_tenants_in_one_walk(
    api_client: k8s.ApiClient, fresh_engine: Engine, deps: Deps, namespace: str
) -> None:
    name = make_store(api_client, fresh_engine)
    tenants = [make_tenant(api_client, namespace, f"t{i}", storeRef={"name": name}) for i in range(5)]
    for tenant in tenants:
        tenant_reconciler.reconcile(tenant, deps)  # each notes its survey: never surveyed, so due
    with fresh_engine.admin_client() as client:
        client.set(f"mem:{namespace}:t3:hidden", "x")  # written around the library's index
        client.set(f"mem:{namespace}:gone:left", "x")  # under no tenant's prefix the store's pass knows of

    before = fresh_engine.command_calls()
    outcome = reconciler.reconcile(load(api_client, name), deps)
    spent = calls_between(before, fresh_engine.command_calls())

    assert outcome.events == [] and outcome.status.conditions[0].status == "True"
    assert spent.get("scan") == 1  # one step: the whole (small) keyspace, for the five tenants at once
    with fresh_engine.admin_client(decode_responses=True) as client:
        facts = [client.hgetall(f"jobs:{namespace}:t{i}:facts") for i in range(5)]
    assert [f["data_keys"] for f in facts] == ["0", "0", "0", "1", "0"]
    assert len({f["at"] for f in facts}) == 1

    before = fresh_engine.command_calls()
    reconciler.reconcile(load(api_client, name), deps)
    assert "scan" not in calls_between(before, fresh_engine.command_calls())  # nobody is due any more


def test_a_survey_that_fails_leaves_the_store_ready_and_its_tenants_due(
    api_client: k8s.ApiClient, fresh_engine: Engine, deps: Deps, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = make_store(api_client, fresh_engine)
    tenant_reconciler.reconcile(make_tenant(api_client, namespace, "late", storeRef={"name": name}), deps)
    store = load(api_client, name)

    def hangs(*_: object, **__: object) -> None:
        raise redis_admin.StoreUnavailable("timed out surveying keys", f"127.0.0.1:{fresh_engine.port}")

    monkeypatch.setattr(deps.stores.admin_for(store), "survey", hangs)
    outcome = reconciler.reconcile(store, deps)

    assert outcome.status.conditions[0].status == "True"
    assert [(e.reason, e.type) for e in outcome.events] == [("SurveyFailed", "Warning")]
    assert "timed out surveying keys" in outcome.events[0].message
    assert [t.prefix for t in deps.surveys.due(name, 2**62)] == [f"mem:{namespace}:late:"]
    monkeypatch.undo()
    reconciler.reconcile(store, deps)
    with fresh_engine.admin_client(decode_responses=True) as client:
        assert client.hget(f"jobs:{namespace}:late:facts", "keys") == "0"
