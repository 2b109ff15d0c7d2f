"""The MemoryStore reconciler against the sandbox API and real servers."""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from memory_operator.api.v1alpha1 import GROUP, VERSION, MemoryStore
from memory_operator.deps import Deps
from memory_operator.errors import SecretNotFound, StoreInUse, StoreUnavailable
from memory_operator.reconcilers import memorystore as reconciler
from memory_operator.reconcilers import memorytenant as tenant_reconciler
from memory_sandbox.engine import Engine
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
