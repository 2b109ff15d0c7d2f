"""A converged tenant reconcile against the sandbox API over HTTP: with its children's kinds watched, the client
serves them from what it knows, re-applies nothing, and a change the watch reports is read and repaired."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client as k8s

from memory_operator.builders.meta import MANAGED_BY, MANAGED_BY_LABEL
from memory_operator.clients.kube import KubeClient
from memory_operator.connections import StoreConnections
from memory_operator.deps import Deps
from memory_operator.reconcilers import memorytenant as reconciler
from memory_sandbox.engine import Engine
from tests.integration.objects import core, make_store, make_tenant, secret_data, settled

pytestmark = pytest.mark.integration


class Counted(k8s.ApiClient):  # type: ignore[misc]
    """Counts each request by method, resource and namespace (this client's call_api gets the whole URL)."""

    def __init__(self, configuration: k8s.Configuration) -> None:
        super().__init__(configuration)
        self.seen: Counter[str] = Counter()

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url).path.strip("/").split("/")
        rest = parts[2:] if parts[0] == "api" else parts[3:]
        namespace = rest[1] if len(rest) >= 3 and rest[0] == "namespaces" else ""
        resource = rest[2] if namespace else "/".join(rest[:1])
        self.seen[f"{method} {resource} {namespace}"] += 1
        return super().call_api(method, url, *args, **kwargs)


@pytest.fixture
def watched(api_client: k8s.ApiClient) -> Iterator[tuple[Deps, Counted]]:
    counted = Counted(api_client.configuration)
    kube = KubeClient(counted, watched=frozenset({"Secret", "CronJob"}), labels={MANAGED_BY_LABEL: MANAGED_BY})
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
    assert not {k for k in counted.seen if k.endswith((f" secrets {namespace}", f" cronjobs {namespace}"))}
    assert counted.seen["GET secrets default"] == 1  # the store's admin Secret: not labelled, never watched


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
