"""kopf handlers for MemoryTenant: one reconcile for create/update/resume/timer and for reconcile requests (a
policy it names changed, or someone changed a Secret or CronJob it owns); a finalizer for deletion; and requests
to the policies it starts or stops naming (they count their bound tenants)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import kopf
from pydantic import ValidationError

from memory_operator.api.v1alpha1 import GROUP, VERSION, CompliancePolicy, MemoryTenant, MemoryTenantStatus
from memory_operator.api.v1alpha1.common import ObjectMeta, lenient_status
from memory_operator.builders.meta import MANAGED_BY, MANAGED_BY_LABEL
from memory_operator.clients.kube import KubeError
from memory_operator.deps import WATCH_SECRETS_ENV, Deps
from memory_operator.errors import KubernetesApiError
from memory_operator.handlers.requests import request_reconcile, spec_or_request_changed
from memory_operator.handlers.sync import RESYNC_SECONDS, Logger, reconcile_body, retry_delay, run_finalizer
from memory_operator.reconcilers import memorytenant as reconciler
from memory_operator.reconcilers.common import Outcome

__all__ = ["OWNED", "OWNED_KINDS", "OWNED_SELECTOR", "first_pass_delay", "owner_tenant", "policy_names"]

#: the kinds of child a tenant owns that are watched (kubebuilder's Owns()), and the label selector the watches
#: send to the API server (startup.configure), so the operator is only ever sent the children it wrote. Secrets
#: only unless `--no-watch-secrets` (WATCH_SECRETS_ENV=false): then the operator needs no list/watch on
#: Secrets, and the periodic pass repairs an edited one.
SECRETS, CRONJOBS = ("v1", "secrets"), ("batch", "v1", "cronjobs")
_WATCH_SECRETS = os.environ.get(WATCH_SECRETS_ENV, "true").lower() != "false"
OWNED = (SECRETS, CRONJOBS) if _WATCH_SECRETS else (CRONJOBS,)
#: the kinds of OWNED: the watch tells the Kubernetes client of every change to them, so it may serve them from
#: memory (clients.kube.Known); under --no-watch-secrets each pass reads the Secrets, or an edit would go unseen
OWNED_KINDS = frozenset({"Secret", "CronJob"} if _WATCH_SECRETS else {"CronJob"})
OWNED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
#: how long a child's change waits for the operator's own write of that child, if one is in flight, to answer
ECHO_WAIT = 10.0


@kopf.on.resume(GROUP, VERSION, MemoryTenant.plural)
@kopf.on.create(GROUP, VERSION, MemoryTenant.plural)
@kopf.on.update(GROUP, VERSION, MemoryTenant.plural, when=spec_or_request_changed)
def tenant_changed(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, logger: Logger, **_: Any) -> None:
    _sync(body, patch, memo, retry, logger)


def first_pass_delay(body: kopf.Body, **_: Any) -> float:
    """One interval, plus a phase within the next from a stable hash of the tenant's uid: tenants created or resumed
    together (an operator restart resumes them all at once) spread their periodic passes over the interval."""
    uid = str(body.get("metadata", {}).get("uid") or "")
    phase = int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8], "big") / 2**64
    return RESYNC_SECONDS * (1.0 + phase)


@kopf.timer(GROUP, VERSION, MemoryTenant.plural, interval=RESYNC_SECONDS, initial_delay=first_pass_delay)
def tenant_resync(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: Logger, **kwargs: Any) -> None:
    # drift the API cannot tell about: an ACL edited or lost with a server restart; and usage
    _sync(body, patch, memo, int(kwargs.get("retry", 0)), logger, periodic=True)


def _changed_by_someone_else(
    type: str | None, body: kopf.Body, resource: kopf.Resource, memo: kopf.Memo, **_: Any
) -> bool:
    """A child's change worth its owner's reconcile: not the initial listing (every tenant resumes by itself), not
    the echo of the operator's own write, and only a child a MemoryTenant owns. Every event, these too, first
    updates what the Kubernetes client knows of the child (here, as kopf runs no handler on most of them)."""
    memo.deps.kube.observe(resource.kind, type, dict(body))
    if type is None or owner_tenant(body) is None:
        return False
    meta = body.get("metadata", {})
    namespace, name, version = str(meta.get("namespace")), str(meta.get("name")), str(meta.get("resourceVersion"))
    return type == "DELETED" or not memo.deps.kube.wrote(resource.kind, namespace, name, version)


def _for_each_owned_kind(handler: Any) -> Any:
    for kind in OWNED:
        handler = kopf.on.event(*kind, labels={MANAGED_BY_LABEL: MANAGED_BY}, when=_changed_by_someone_else)(handler)
    return handler


@_for_each_owned_kind
def tenant_child_changed(
    type: str, body: kopf.Body, resource: kopf.Resource, memo: kopf.Memo, logger: Logger, **_: Any
) -> None:
    # Only a request: the tenant's own handler repairs the child and writes the tenant's status.
    meta = body["metadata"]
    namespace, owner, version = meta["namespace"], owner_tenant(body), str(meta.get("resourceVersion"))
    if type != "DELETED" and memo.deps.kube.wrote(resource.kind, namespace, meta["name"], version, wait=ECHO_WAIT):
        return  # the echo of a write of ours whose response was still on its way when the filter looked
    cause = f"{resource.kind}/{meta['name']}@{version}"
    if owner is not None and request_reconcile(memo.deps, MemoryTenant.plural, namespace, owner, cause):
        logger.info("%s %s %s: reconcile of MemoryTenant %s requested", resource.kind, meta["name"], type, owner)


# A policy's status counts the tenants that name it (status.boundTenants): the policies a tenant starts or stops
# naming, and those it named when it is gone (out of the index by then), are asked to count again.
@kopf.on.create(GROUP, VERSION, MemoryTenant.plural)
async def tenant_binds_policies(body: kopf.Body, spec: kopf.Spec, memo: kopf.Memo, **kwargs: Any) -> None:
    # Async, so a tenant naming no policy does not wait for a free executor thread to do nothing.
    names = policy_names(spec)
    if names:
        await asyncio.to_thread(_ask_policies, body, memo, names, int(kwargs.get("retry", 0)))


@kopf.on.update(GROUP, VERSION, MemoryTenant.plural, field="spec.policyRefs")
def tenant_rebinds_policies(body: kopf.Body, old: Any, new: Any, memo: kopf.Memo, **kwargs: Any) -> None:
    changed = policy_names({"policyRefs": old}) ^ policy_names({"policyRefs": new})
    _ask_policies(body, memo, changed, int(kwargs.get("retry", 0)))


def _gone(type: str | None, **_: Any) -> bool:
    return type == "DELETED"


@kopf.on.event(GROUP, VERSION, MemoryTenant.plural, when=_gone)
def tenant_left_policies(body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    try:
        _ask_policies(body, memo, policy_names(body.get("spec") or {}), 0)
    except kopf.TemporaryError as exc:  # a watch event is not retried: the policies' timer counts again
        logger.warning("%s", exc)


def _ask_policies(body: kopf.Body, memo: kopf.Memo, names: set[str], retry: int) -> None:
    meta = body["metadata"]
    cause = f"{MemoryTenant.kind}/{meta['namespace']}/{meta['name']}@{meta.get('resourceVersion', '')}"
    failed = []
    for name in sorted(names):
        try:
            request_reconcile(memo.deps, CompliancePolicy.plural, None, name, cause)
        except KubeError as exc:
            failed.append(f"{name}: {exc}")
    if failed:
        delay = retry_delay(KubernetesApiError(""), retry, memo.deps.retry_scale)
        raise kopf.TemporaryError(f"reconcile not requested of CompliancePolicy {'; '.join(failed)}", delay)


def policy_names(spec: Any) -> set[str]:
    """The CompliancePolicies a tenant spec names (spec.policyRefs[].name), tolerating any shape."""
    refs = (spec or {}).get("policyRefs") or []
    return {str(ref["name"]) for ref in refs if isinstance(ref, dict) and ref.get("name")}


def owner_tenant(body: kopf.Body) -> str | None:
    """The name of the MemoryTenant (same namespace) that controls this child, from its ownerReferences."""
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == MemoryTenant.kind and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/"):
            return str(ref["name"])
    return None


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
