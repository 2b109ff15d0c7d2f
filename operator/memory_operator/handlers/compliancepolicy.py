"""kopf handlers for CompliancePolicy, and the index of tenants by policy that makes a policy change reach
exactly its bound tenants (no scan of all tenants). The policy's handlers write the policy's status only; its
tenants are asked for a reconcile (handlers.requests) and their own handler writes theirs; a tenant that starts or
stops naming the policy asks it the same way, so status.boundTenants follows."""

from __future__ import annotations

from typing import Any

import kopf

from memory_operator.api.v1alpha1 import GROUP, VERSION, CompliancePolicy, MemoryTenant
from memory_operator.clients.kube import KubeError
from memory_operator.errors import KubernetesApiError
from memory_operator.handlers.requests import request_reconcile, spec_or_request_changed
from memory_operator.handlers.sync import RESYNC_SECONDS, Logger, reconcile_body, retry_delay, run_finalizer
from memory_operator.reconcilers import compliancepolicy as reconciler
from memory_operator.reconcilers.common import Event


@kopf.index(GROUP, VERSION, MemoryTenant.plural)
async def tenants_by_policy(spec: kopf.Spec, namespace: str | None, name: str, **_: Any) -> dict[str, str]:
    """policy name -> "namespace/name" of every tenant whose spec.policyRefs names it.

    Async although it awaits nothing: kopf runs a sync handler in its executor, and every event of every tenant is
    indexed before it is processed, so a sync index waited behind the running reconciles (BENCHMARKS.md)."""
    refs = spec.get("policyRefs") or []
    return {ref["name"]: f"{namespace}/{name}" for ref in refs if isinstance(ref, dict) and ref.get("name")}


def _bound(kwargs: dict[str, Any], name: str) -> list[str]:
    """The tenants bound to policy `name`, from the index kopf passes to handlers as `tenants_by_policy`."""
    index: kopf.Index[str, str] = kwargs["tenants_by_policy"]
    return sorted(set(index.get(name, [])))


@kopf.on.create(GROUP, VERSION, CompliancePolicy.plural)
@kopf.on.update(GROUP, VERSION, CompliancePolicy.plural, when=spec_or_request_changed)
def policy_changed(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, logger: Logger, **kwargs: Any
) -> None:
    _sync(body, patch, memo, retry, logger, _bound(kwargs, body["metadata"]["name"]))


@kopf.on.create(GROUP, VERSION, CompliancePolicy.plural)
@kopf.on.update(GROUP, VERSION, CompliancePolicy.plural, field="spec")
def policy_nudges_tenants(body: kopf.Body, memo: kopf.Memo, logger: Logger, **kwargs: Any) -> None:
    """Valid or not, each bound tenant must see the change now (a conflict shows on it too): ask each for a
    reconcile, which its own handler runs and writes its own status from. One that cannot be asked does not
    keep the others from being asked; this handler then retries."""
    meta = body["metadata"]
    cause = f"{CompliancePolicy.kind}/{meta['name']}@{meta.get('resourceVersion', '')}"
    bound, failed = _bound(kwargs, meta["name"]), []
    for key in bound:
        namespace, name = key.split("/", 1)
        try:
            request_reconcile(memo.deps, MemoryTenant.plural, namespace, name, cause)
        except KubeError as exc:
            failed.append(f"{key}: {exc}")
    if len(bound) > len(failed):
        logger.info("reconcile requested of %d bound MemoryTenant(s)", len(bound) - len(failed))
    if failed:
        delay = retry_delay(KubernetesApiError(""), int(kwargs.get("retry", 0)), memo.deps.retry_scale)
        raise kopf.TemporaryError(f"reconcile not requested of {len(failed)} tenant(s): {'; '.join(failed)}", delay)


@kopf.on.resume(GROUP, VERSION, CompliancePolicy.plural)
@kopf.timer(GROUP, VERSION, CompliancePolicy.plural, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def policy_resync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: Logger, **kwargs: Any) -> None:
    # On start and periodically, besides the tenants' requests: status.boundTenants follows the index.
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
