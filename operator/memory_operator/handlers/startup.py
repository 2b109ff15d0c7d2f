"""Operator start-up and shutdown: kopf settings decided once, dependencies and metrics built once into `memo`."""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf

from memory_operator.api.crdgen import KINDS
from memory_operator.api.v1alpha1 import GROUP, VERSION
from memory_operator.builders.meta import MANAGED_BY, MANAGED_BY_LABEL
from memory_operator.clients.kube import KubeClient
from memory_operator.connections import DEFAULT_PER_STORE, PER_STORE_ENV, StoreConnections
from memory_operator.deps import ADMIN_NAMESPACES_ENV, Deps, operator_namespace
from memory_operator.handlers.memorytenant import OWNED, OWNED_KINDS, OWNED_SELECTOR
from memory_operator.metrics import Metrics


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # kopf's bookkeeping lives under our API group, in annotations: nothing in status for GitOps to fight over.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Events are posted deliberately (kopf.event on transitions), never from log lines.
    settings.posting.level = logging.CRITICAL
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 30
    settings.execution.max_workers = 8
    # The tenants' children are watched through the API server's label selector: the operator is sent the Secrets
    # and CronJobs it wrote, never the rest of the cluster's.
    for owned in OWNED:
        settings.watching.label_selectors[owned] = OWNED_SELECTOR
    kube = KubeClient.from_environment(watched=OWNED_KINDS, labels={MANAGED_BY_LABEL: MANAGED_BY})
    try:
        per_store = int(os.environ.get(PER_STORE_ENV) or DEFAULT_PER_STORE)
        stores = StoreConnections(kube, admin_namespaces=admin_secret_namespaces(), per_store=per_store)
    except ValueError as exc:
        raise kopf.PermanentError(f"${PER_STORE_ENV}: {exc}") from None
    memo.deps = Deps(kube=kube, stores=stores)
    if memo.get("metrics") is None:  # `__main__` passes one when it serves them; record anyway otherwise
        memo.metrics = Metrics(process=False)


def admin_secret_namespaces() -> frozenset[str]:
    """Where MemoryStore Secrets may be read from: the operator's own namespace and any allowed explicitly."""
    extra = os.environ.get(ADMIN_NAMESPACES_ENV, "")
    return frozenset({operator_namespace(), *(ns.strip() for ns in extra.split(",") if ns.strip())})


# Metrics bookkeeping: an object that is really gone (its finalizer done) drops its series. Watch events only;
# these handlers add no finalizer and never write anything.
def forget_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    metrics: Metrics | None = memo.get("metrics")
    if metrics is not None:
        meta = body.get("metadata", {})
        metrics.forget(str(body.get("kind") or ""), meta.get("namespace"), str(meta.get("name") or ""))


@kopf.on.cleanup()
def close(memo: kopf.Memo, **_: Any) -> None:
    deps: Deps | None = memo.get("deps")
    if deps is not None:
        deps.stores.close()


def _deleted(type: str | None, **_: Any) -> bool:
    return type == "DELETED"  # filtering here, not in the handler, keeps kopf from logging every watch event


for _kind in KINDS:
    kopf.on.event(GROUP, VERSION, _kind.plural, when=_deleted)(forget_deleted)
