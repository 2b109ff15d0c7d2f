"""kopf handlers for CompliancePolicy, and the index of tenants by policy that makes a policy change reach
exactly its bound tenants (no scan of all tenants)."""

from __future__ import annotations

import contextlib
from typing import Any

import kopf

from memory_operator.api.v1alpha1 import GROUP, VERSION, CompliancePolicy, MemoryTenant
from memory_operator.handlers.sync import RESYNC_SECONDS, Logger, reconcile_body, run_finalizer
from memory_operator.reconcilers import compliancepolicy as reconciler
from memory_operator.reconcilers import memorytenant as tenant_reconciler
from memory_operator.reconcilers.common import Event


@kopf.index(GROUP, VERSION, MemoryTenant.plural)
def tenants_by_policy(spec: kopf.Spec, namespace: str | None, name: str, **_: Any) -> dict[str, str]:
    """policy name -> "namespace/name" of every tenant whose spec.policyRefs names it."""
    refs = spec.get("policyRefs") or []
    return {ref["name"]: f"{namespace}/{name}" for ref in refs if isinstance(ref, dict) and ref.get("name")}


def _bound(kwargs: dict[str, Any], name: str) -> list[str]:
    """The tenants bound to policy `name`, from the index kopf passes to handlers as `tenants_by_policy`."""
    index: kopf.Index[str, str] = kwargs["tenants_by_policy"]
    return sorted(set(index.get(name, [])))


@kopf.on.create(GROUP, VERSION, CompliancePolicy.plural)
def policy_created(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, logger: Logger, **kwargs: Any
) -> None:
    # Only tenants that were waiting for it; the others are being handled on their own.
    _sync_and_resync(body, patch, memo, retry, logger, kwargs, only_reason="PolicyNotFound")


@kopf.on.update(GROUP, VERSION, CompliancePolicy.plural, field="spec")
def policy_changed(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, logger: Logger, **kwargs: Any
) -> None:
    # Valid or not, the bound tenants must see the change now (a conflict shows on them too).
    _sync_and_resync(body, patch, memo, retry, logger, kwargs, only_reason=None)


def _sync_and_resync(
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    logger: Logger,
    kwargs: dict[str, Any],
    only_reason: str | None,
) -> None:
    bound = _bound(kwargs, body["metadata"]["name"])
    try:
        _sync(body, patch, memo, retry, logger, bound)
    finally:
        for key in bound:
            _resync_tenant(key, memo, logger, only_reason=only_reason)


@kopf.on.resume(GROUP, VERSION, CompliancePolicy.plural)
@kopf.timer(GROUP, VERSION, CompliancePolicy.plural, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def policy_resync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: Logger, **kwargs: Any) -> None:
    # On start and periodically: status.boundTenants follows tenants binding and unbinding.
    bound = _bound(kwargs, body["metadata"]["name"])
    _sync(body, patch, memo, int(kwargs.get("retry", 0)), logger, bound)


@kopf.on.delete(GROUP, VERSION, CompliancePolicy.plural)
def policy_deleted(body: kopf.Body, memo: kopf.Memo, retry: int, logger: Logger, **kwargs: Any) -> None:
    name = body["metadata"]["name"]

    def finalize() -> list[Event]:
        reconciler.finalize(name, _bound(kwargs, name))
        return []

    run_finalizer(body, memo.deps, finalize, retry, logger)


def _sync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, logger: Logger, bound: list[str]) -> None:
    reconcile_body(
        CompliancePolicy, lambda policy, deps: reconciler.reconcile(policy, deps, bound), body, patch, memo, retry,
        logger,
    )  # fmt: skip


def _resync_tenant(key: str, memo: kopf.Memo, logger: Logger, only_reason: str | None = None) -> None:
    """Run a tenant's reconcile now, through the same path as its own handlers, and write its status.

    With `only_reason`, only a tenant whose Ready condition currently has that reason is touched.
    """
    namespace, name = key.split("/", 1)
    deps = memo.deps
    body = deps.kube.get_namespaced_object(MemoryTenant.plural, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    if only_reason is not None:
        conditions = (body.get("status") or {}).get("conditions") or []
        if not any(c.get("type") == "Ready" and c.get("reason") == only_reason for c in conditions):
            return
    patch = kopf.Patch()
    # A failure is in the status written below; the tenant's own timer retries.
    with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):
        reconcile_body(MemoryTenant, tenant_reconciler.reconcile, kopf.Body(body), patch, memo, 0, logger)
    if patch.get("status"):
        status, version = dict(patch["status"]), body["metadata"]["resourceVersion"]
        if not deps.kube.patch_namespaced_status(MemoryTenant.plural, namespace, name, status, version):
            logger.info("tenant %s changed meanwhile; its own handler reconciles it", key)
