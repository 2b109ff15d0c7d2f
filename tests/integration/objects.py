"""Objects the integration tests create in the sandbox API, and how they read results back."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import redis
from kubernetes import client as k8s

from memory_operator.api.v1alpha1 import GROUP, VERSION, MemoryStore, MemoryTenant
from memory_operator.deps import Deps
from memory_operator.reconcilers import memorystore
from memory_operator.reconcilers.common import Outcome
from memory_sandbox.engine import Engine

_stores = itertools.count()


def custom(api_client: k8s.ApiClient) -> k8s.CustomObjectsApi:
    return k8s.CustomObjectsApi(api_client)


def core(api_client: k8s.ApiClient) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(api_client)


def make_store(
    api_client: k8s.ApiClient,
    engine: Engine,
    *,
    default: bool = False,
    region: str | None = None,
    password: str | None = None,
) -> str:
    """A MemoryStore for `engine` with its admin Secret; returns the store's name."""
    name = f"store-{next(_stores)}"
    core(api_client).create_namespaced_secret(
        "default",
        {
            "metadata": {"name": f"{name}-admin"},
            "stringData": {"username": engine.admin_username, "password": password or engine.admin_password},
        },
    )
    spec: dict[str, Any] = {"url": engine.url, "adminSecretRef": {"name": f"{name}-admin", "namespace": "default"}}
    if region:
        spec["region"] = region
    annotations = {f"{GROUP}/default-store": "true"} if default else {}
    body = {"metadata": {"name": name, "annotations": annotations}, "spec": spec}
    custom(api_client).create_cluster_custom_object(GROUP, VERSION, "memorystores", body)
    return name


def store_pass(api_client: k8s.ApiClient, name: str, deps: Deps) -> Outcome[Any]:
    """One pass of the MemoryStore's own reconcile, as its timer runs it (the health check, the tenants' survey)."""
    body = custom(api_client).get_cluster_custom_object(GROUP, VERSION, "memorystores", name)
    return memorystore.reconcile(MemoryStore.from_body(body), deps)


def make_tenant(
    api_client: k8s.ApiClient, namespace: str, name: str, *, annotations: dict[str, str] | None = None, **spec: Any
) -> MemoryTenant:
    if spec.get("deletionPolicy") == "Delete" and annotations is None:  # as a user who means it would
        annotations = {"agentmemory.io/confirm-deletion": name}
    metadata = {"name": name, "annotations": annotations or {}}
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MemoryTenant", "metadata": metadata, "spec": spec}
    created = custom(api_client).create_namespaced_custom_object(GROUP, VERSION, namespace, "memorytenants", body)
    return MemoryTenant.from_body(created)


def settled(tenant: MemoryTenant, outcome: Outcome[Any]) -> MemoryTenant:
    """The tenant as the next reconcile sees it once the handler has written this outcome's status."""
    return tenant.model_copy(update={"status": outcome.status})


def secret_data(api_client: k8s.ApiClient, namespace: str, name: str) -> dict[str, str]:
    secret = core(api_client).read_namespaced_secret(name, namespace)
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


def login(api_client: k8s.ApiClient, namespace: str, secret: str) -> redis.Redis:
    return redis.Redis.from_url(secret_data(api_client, namespace, secret)["REDIS_URL"], decode_responses=True)


def ready(outcome: Outcome[Any]) -> tuple[str, str]:
    cond = next(c for c in outcome.status.conditions if c.type == "Ready")
    return cond.status, cond.reason


def make_policy(api_client: k8s.ApiClient, name: str, **spec: Any) -> None:
    body = {"metadata": {"name": name}, "spec": spec}
    custom(api_client).create_cluster_custom_object(GROUP, VERSION, "compliancepolicies", body)
