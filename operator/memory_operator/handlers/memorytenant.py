"""kopf handlers for MemoryTenant: one reconcile for create/update/resume/timer; a finalizer for deletion."""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from memory_operator.api.v1alpha1 import GROUP, VERSION, MemoryTenant, MemoryTenantStatus
from memory_operator.api.v1alpha1.common import ObjectMeta, lenient_status
from memory_operator.deps import Deps
from memory_operator.handlers.sync import RESYNC_SECONDS, Logger, reconcile_body, run_finalizer
from memory_operator.reconcilers import memorytenant as reconciler
from memory_operator.reconcilers.common import Outcome


@kopf.on.resume(GROUP, VERSION, MemoryTenant.plural)
@kopf.on.create(GROUP, VERSION, MemoryTenant.plural)
@kopf.on.update(GROUP, VERSION, MemoryTenant.plural, field="spec")
def tenant_changed(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, logger: Logger, **_: Any) -> None:
    _sync(body, patch, memo, retry, logger)


@kopf.timer(GROUP, VERSION, MemoryTenant.plural, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def tenant_resync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: Logger, **kwargs: Any) -> None:
    # drift repair (ACL edited, server restarted) and usage
    _sync(body, patch, memo, int(kwargs.get("retry", 0)), logger, periodic=True)


@kopf.on.delete(GROUP, VERSION, MemoryTenant.plural)
def tenant_deleted(body: kopf.Body, memo: kopf.Memo, retry: int, logger: Logger, **_: Any) -> None:
    # Access must really be revoked before the finalizer lets go: run_finalizer keeps retrying and says why.
    run_finalizer(body, memo.deps, lambda: reconciler.finalize(_for_deletion(body), memo.deps), retry, logger)


def _sync(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, logger: Logger, *, periodic: bool = False
) -> None:
    # kopf keeps a timer's body up to date while it runs: a deletion that begins meanwhile stops the reconcile.
    def deleting() -> bool:
        return bool(body.get("metadata", {}).get("deletionTimestamp"))

    def reconcile(tenant: MemoryTenant, deps: Deps) -> Outcome[MemoryTenantStatus]:
        return reconciler.reconcile(tenant, deps, cancelled=deleting)

    reconcile_body(MemoryTenant, reconcile, body, patch, memo, retry, logger, periodic=periodic)


def _for_deletion(body: kopf.Body) -> MemoryTenant:
    """The tenant as far as cleanup needs it, even when its spec is invalid (cleanup must never get stuck)."""
    try:
        return MemoryTenant.from_body(body)
    except ValidationError:
        policy = (body.get("spec") or {}).get("deletionPolicy")
        return MemoryTenant.model_validate(
            {
                "metadata": ObjectMeta.from_body(body["metadata"]),
                "spec": {"deletionPolicy": policy if policy in ("Retain", "Delete") else "Retain"},
                "status": lenient_status(MemoryTenantStatus, body.get("status")),
            }
        )
