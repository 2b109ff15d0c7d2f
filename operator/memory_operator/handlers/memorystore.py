"""kopf handlers for MemoryStore: create/update/resume and a periodic health check share one reconcile."""

from __future__ import annotations

from typing import Any

import kopf

from memory_operator.api.v1alpha1 import GROUP, VERSION, MemoryStore
from memory_operator.handlers.sync import RESYNC_SECONDS, Logger, reconcile_body, run_finalizer
from memory_operator.reconcilers import memorystore as reconciler
from memory_operator.reconcilers.common import Event


@kopf.on.resume(GROUP, VERSION, MemoryStore.plural)
@kopf.on.create(GROUP, VERSION, MemoryStore.plural)
@kopf.on.update(GROUP, VERSION, MemoryStore.plural, field="spec")
def store_changed(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, logger: Logger, **_: Any) -> None:
    _sync(body, patch, memo, retry, logger)


@kopf.timer(GROUP, VERSION, MemoryStore.plural, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def store_resync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: Logger, **kwargs: Any) -> None:
    # the server may have gone away, or come back
    _sync(body, patch, memo, int(kwargs.get("retry", 0)), logger, periodic=True)


@kopf.on.delete(GROUP, VERSION, MemoryStore.plural)
def store_deleted(body: kopf.Body, memo: kopf.Memo, retry: int, logger: Logger, **_: Any) -> None:
    # Store protection: tenants' finalizers need the store to revoke their ACL users.
    def finalize() -> list[Event]:
        reconciler.finalize(str(body["metadata"]["name"]), memo.deps)
        return []

    run_finalizer(body, memo.deps, finalize, retry, logger)


def _sync(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, logger: Logger, *, periodic: bool = False
) -> None:
    reconcile_body(MemoryStore, reconciler.reconcile, body, patch, memo, retry, logger, periodic=periodic)
