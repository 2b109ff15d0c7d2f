"""A converged tenant reconcile against the sandbox API over HTTP: with its children's kinds watched, the client
serves them from what it knows, re-applies nothing, and a change the watch reports is read and repaired."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from memory_operator.clients.kube import KubeClient
from memory_operator.connections import StoreConnections
from memory_operator.deps import Deps
from memory_operator.reconcilers import memorytenant as reconciler
from memory_sandbox.engine import Engine
from tests.integration.objects import core, make_store, make_tenant, secret_data, settled

pytestmark = pytest.mark.integration


class Counted(k8s.ApiClient):  # type: ignore[misc]
    """Counts each request by method and resource (the path's last segment that is not a name)."""

    def __init__(self, configuration: k8s.Configuration) -> None:
        super().__init__(configuration)
        self.seen: Counter[str] = Counter()

    def call_api(self, resource_path: str, method: str, *args: Any, **kwargs: Any) -> Any:
        resource = resource_path.split("/{name}", maxsplit=1)[0].rsplit("/", 1)[-1]
        self.seen[f"{method} {resource}"] += 1
        return super().call_api(resource_path, method, *args, **kwargs)


@pytest.fixture
def watched(api_client: k8s.ApiClient) -> Iterator[tuple[Deps, Counted]]:
    counted = Counted(api_client.configuration)
    kube = KubeClient(counted, watched=frozenset({"Secret", "CronJob"}))
    built = Deps(kube=kube, stores=StoreConnections(kube, timeout=1.0), namespace="default")
    yield built, counted
    built.stores.close()
    counted.close()


def test_a_converged_reconcile_reads_no_watched_child_and_writes_nothing(
    api_client: k8s.ApiClient, engine: Engine, watched: tuple[Deps, Counted], namespace: str
) -> None:
    deps, counted = watched
    tenant = make_tenant(api_client, namespace, "calm", storeRef={"name": make_store(api_client, engine)})
    first = reconciler.reconcile(tenant, deps)
    counted.seen.clear()

    reconciler.reconcile(settled(tenant, first), deps)

    assert {k for k in counted.seen if k.startswith(("POST", "PUT", "PATCH", "DELETE"))} == set()
    assert not {k for k in counted.seen if k.endswith((" secrets", " cronjobs"))}, counted.seen


def test_a_change_the_watch_reports_is_read_and_repaired_by_the_next_reconcile(
    api_client: k8s.ApiClient, engine: Engine, watched: tuple[Deps, Counted], namespace: str
) -> None:
    deps, _ = watched
    tenant = make_tenant(api_client, namespace, "edited", storeRef={"name": make_store(api_client, engine)})
    first = reconciler.reconcile(tenant, deps)
    prefix = secret_data(api_client, namespace, "edited-memory-credentials")["MEMORY_KEY_PREFIX"]
    evil = {"data": {"MEMORY_KEY_PREFIX": base64.b64encode(b"someone-else:").decode()}}
    edited = core(api_client).patch_namespaced_secret("edited-memory-credentials", namespace, evil)
    batch = k8s.BatchV1Api(api_client)
    batch.delete_namespaced_cron_job("edited-memory-report", namespace)

    deps.kube.observe("Secret", "MODIFIED", api_client.sanitize_for_serialization(edited))
    deps.kube.observe("CronJob", "DELETED", {"metadata": {"namespace": namespace, "name": "edited-memory-report"}})
    reconciler.reconcile(settled(tenant, first), deps)

    assert secret_data(api_client, namespace, "edited-memory-credentials")["MEMORY_KEY_PREFIX"] == prefix
    assert batch.read_namespaced_cron_job("edited-memory-report", namespace).metadata.name == "edited-memory-report"
