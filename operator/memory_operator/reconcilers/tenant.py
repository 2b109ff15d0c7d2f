"""MemoryTenant reconcile: store -> ACL user(s) -> credentials Secret(s) -> keyring Secret -> usage -> status.

One level-based function serves create, update, resume and the drift timer: it re-applies the whole desired
state every time (ACL SETUSER ... reset; server-side apply), reusing secret material that already exists.
Order matters for crash safety: a password is persisted in its Secret before the ACL user is set, so a crash
at any point leaves state the next run converges from without minting a second password.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from memory_operator.api.v1alpha1 import CompliancePolicy, MemoryStore, MemoryTenant, MemoryTenantStatus, Requirements
from memory_operator.api.v1alpha1.memorytenant import ComplianceSummary, JobRun, ProvisionedUser, Usage
from memory_operator.builders import acl
from memory_operator.builders.cronjobs import report_configmap, report_cronjob, retention_cronjob
from memory_operator.builders.keyring import KEY_BYTES, KEYRING_KEY, Keyring, KeyringError, KeyringKey
from memory_operator.builders.meta import (
    AGENT_LABEL,
    MANAGED_BY,
    ROLE_LABEL,
    TENANT_LABEL,
    credentials_secret_name,
    keys_secret_name,
)
from memory_operator.builders.secrets import (
    ROLE_CREDENTIALS,
    Credentials,
    Endpoint,
    credentials_secret,
    keys_secret,
    secret_value,
)
from memory_operator.clients.kube import AlreadyExists
from memory_operator.clients.redis_admin import AclChange, RedisAdmin
from memory_operator.deps import Deps
from memory_operator.errors import (
    InvalidSpec,
    NameConflict,
    PolicyConflict,
    PolicyNotFound,
    ReconcileError,
    ResidencyUnsatisfied,
    StoreNotFound,
    StoreUnavailable,
    describe_validation_error,
)
from memory_operator.policy import PolicyContradiction, effective_for_tenant, encryption_in_force
from memory_operator.reconcilers.common import Event, Outcome, condition, store_errors, with_conditions

__all__ = ["KeyringUnreadable", "effective_policy", "finalize", "reconcile", "resolve_store"]

PASSWORD_BYTES = 32
T = TypeVar("T")


class KeyringUnreadable(ReconcileError):
    """The keys Secret exists but cannot be parsed: never overwrite it (that would lose the data's keys)."""

    reason = "KeyringUnreadable"
    retry_after = 300.0


# Store placement ------------------------------------------------------------------------------------------


def resolve_store(tenant: MemoryTenant, deps: Deps) -> MemoryStore:
    """The store to use: spec.storeRef, else the one already provisioned on, else by residency or default."""
    pinned, spec = tenant.status.store, tenant.spec
    if spec.store_ref is not None:
        if pinned and pinned != spec.store_ref.name:
            raise InvalidSpec(
                f"spec.storeRef.name: cannot move from {pinned!r} to {spec.store_ref.name!r} once provisioned "
                "(data is not migrated); create a new MemoryTenant instead"
            )
        store = _get_store(spec.store_ref.name, deps, "spec.storeRef.name")
    elif pinned:
        store = _get_store(pinned, deps, "status.store")
    else:
        store = _pick_store(tenant, deps)
    if spec.residency and store.spec.region != spec.residency:
        raise ResidencyUnsatisfied(
            f"spec.residency: MemoryStore {store.name!r} is in region {store.spec.region or '(none)'!r}, "
            f"not {spec.residency!r}"
        )
    return store


def _get_store(name: str, deps: Deps, field: str) -> MemoryStore:
    body = deps.kube.get_cluster_object(MemoryStore.plural, name)
    if body is None:
        raise StoreNotFound(f"{field}: MemoryStore {name!r} not found")
    return _parse_store(body)


def _parse_store(body: dict[str, Any]) -> MemoryStore:
    try:
        return MemoryStore.from_body(body)
    except ValidationError as exc:
        name = body["metadata"]["name"]
        raise StoreUnavailable(f"MemoryStore {name!r} has an invalid spec: {describe_validation_error(exc)}") from None


def _pick_store(tenant: MemoryTenant, deps: Deps) -> MemoryStore:
    """Among valid stores: those in the residency region (default-annotated first), else the default one.

    Several candidates are ordered by name so the choice is deterministic; it is pinned in status.store.
    """
    stores = []
    for body in deps.kube.list_cluster_objects(MemoryStore.plural):
        try:
            stores.append(MemoryStore.from_body(body))
        except ValidationError:
            continue  # an invalid store reports itself; it is never a placement candidate
    stores.sort(key=lambda s: (not s.is_default, s.name))
    residency = tenant.spec.residency
    if residency:
        in_region = [s for s in stores if s.spec.region == residency]
        if not in_region:
            raise ResidencyUnsatisfied(f"spec.residency: no MemoryStore has spec.region {residency!r}")
        return in_region[0]
    defaults = [s for s in stores if s.is_default]
    if not defaults:
        raise StoreNotFound(
            'spec.storeRef: not set, and no MemoryStore is annotated agentmemory.io/default-store: "true"'
        )
    return defaults[0]


# Policies --------------------------------------------------------------------------------------------------


def effective_policy(tenant: MemoryTenant, deps: Deps) -> Requirements:
    """The strictest combination of the tenant's CompliancePolicies and its own retentionDays."""
    policies = []
    for i, ref in enumerate(tenant.spec.policy_refs):
        field = f"spec.policyRefs[{i}].name"
        body = deps.kube.get_cluster_object(CompliancePolicy.plural, ref.name)
        if body is None:
            raise PolicyNotFound(f"{field}: CompliancePolicy {ref.name!r} not found")
        try:
            policies.append((ref.name, CompliancePolicy.from_body(body).spec))
        except ValidationError as exc:
            raise PolicyConflict(f"{field}: CompliancePolicy {ref.name!r} is invalid: "
                                 f"{describe_validation_error(exc, 'spec')}") from None  # fmt: skip
    try:
        return effective_for_tenant(policies, tenant.spec.retention_days)
    except PolicyContradiction as exc:
        raise PolicyConflict(str(exc)) from None


# Secret material ------------------------------------------------------------------------------------------


def _check_ours(secret: dict[str, Any], tenant: MemoryTenant) -> None:
    """A Secret at one of our names must be one we wrote for this tenant (a re-created tenant adopts it)."""
    labels = secret["metadata"].get("labels") or {}
    if labels.get("app.kubernetes.io/managed-by") != MANAGED_BY or labels.get(TENANT_LABEL) != tenant.name:
        name = secret["metadata"]["name"]
        raise NameConflict(
            f"Secret {tenant.namespace}/{name} exists and is not managed for MemoryTenant {tenant.name!r}; "
            "rename the tenant or remove that Secret"
        )


class SecretMaterial(Protocol[T]):
    """How one kind of child Secret is built from its material, and how fresh material is minted."""

    def build(self, material: T) -> dict[str, Any]: ...
    def new(self) -> T: ...
    def read(self, secret: dict[str, Any]) -> T | None: ...


def _ensure_secret(tenant: MemoryTenant, name: str, kind: SecretMaterial[T], deps: Deps) -> tuple[T, bool]:
    """Reuse the material in Secret `name` when readable, else write the Secret with new material.

    A missing Secret is created create-only: if a concurrent reconcile wins the race, its material is
    re-read and used, so a Secret and the server can never disagree. Returns (material, existed).
    """
    for _ in range(2):
        existing = deps.kube.get_secret(tenant.namespace, name)
        if existing is not None:
            _check_ours(existing, tenant)
            material = kind.read(existing)
            if material is not None:
                deps.kube.apply_secret(kind.build(material))
                return material, True
        material = kind.new()
        if existing is not None:
            deps.kube.apply_secret(kind.build(material))
            return material, False
        try:
            deps.kube.create_secret(kind.build(material))
        except AlreadyExists:
            continue
        return material, False
    raise NameConflict(f"Secret {tenant.namespace}/{name} keeps changing under the operator; will retry")


class _CredentialsSecret:
    """Builds one ACL user's credentials Secret; `new()` mints a random password."""

    def __init__(self, tenant: MemoryTenant, user: acl.AclUser, endpoint: Endpoint, policy: Requirements) -> None:
        self.tenant, self.user, self.endpoint, self.policy = tenant, user, endpoint, policy

    def build(self, password: str) -> dict[str, Any]:
        ns, name, agent = self.tenant.namespace, self.tenant.name, self.user.agent
        strict_agent = agent is not None and self.tenant.spec.isolation == "strict"
        creds = Credentials(
            username=self.user.name,
            password=password,
            agent=agent,
            key_prefix=acl.tenant_prefix(ns, name),
            audit_key=acl.audit_key(ns, name),
            agent_prefix=acl.agent_prefix(ns, name, agent) if strict_agent and agent else None,
            shared_prefix=acl.shared_prefix(ns, name) if strict_agent else None,
        )
        return credentials_secret(self.tenant, creds, self.endpoint, self.policy)

    def new(self) -> str:
        return secrets.token_urlsafe(PASSWORD_BYTES)

    def read(self, secret: dict[str, Any]) -> str | None:
        return secret_value(secret, "REDIS_PASSWORD") or None


class _KeysSecret:
    """Builds the keyring Secret; `new()` mints the first random 256-bit key."""

    def __init__(self, tenant: MemoryTenant, deps: Deps) -> None:
        self.tenant, self.deps = tenant, deps

    def build(self, keyring: Keyring) -> dict[str, Any]:
        return keys_secret(self.tenant, keyring)

    def new(self) -> Keyring:
        return Keyring.first(KeyringKey(id="k1", material=secrets.token_bytes(KEY_BYTES), created_at=self.deps.clock()))

    def read(self, secret: dict[str, Any]) -> Keyring:
        raw = secret_value(secret, KEYRING_KEY)
        if raw is None:
            raise KeyringUnreadable(f"Secret {secret['metadata']['name']} has no key {KEYRING_KEY}; not overwriting it")
        try:
            return Keyring.from_json(raw)
        except KeyringError as exc:
            raise KeyringUnreadable(f"Secret {secret['metadata']['name']}: {exc}; not overwriting it") from None


# The reconcile ---------------------------------------------------------------------------------------------


def reconcile(tenant: MemoryTenant, deps: Deps) -> Outcome[MemoryTenantStatus]:
    """Converge the tenant's users, Secrets and status; raises a ReconcileError subclass when it cannot."""
    now, generation = deps.clock(), tenant.metadata.generation
    policy = effective_policy(tenant, deps)  # before anything is written: a conflict provisions nothing
    store = resolve_store(tenant, deps)
    endpoint = Endpoint.parse(store.spec.url)
    with store_errors(store.name):
        admin = deps.stores.admin_for(store)
        admin.server_info()  # reachable now, before anything is written (the command list below may be cached)
        caps = deps.stores.capabilities(admin)
    events: list[Event] = []
    steady = tenant.status.observed_generation == generation  # spec unchanged since the last reconcile
    provisioned: list[ProvisionedUser] = []
    for user in acl.plan_acl_users(tenant.namespace, tenant.name, tenant.spec.isolation, tenant.spec.agents):
        secret_name = credentials_secret_name(tenant.name, user.agent)
        password, existed = _ensure_secret(
            tenant, secret_name, _CredentialsSecret(tenant, user, endpoint, policy), deps
        )
        with store_errors(store.name):
            change = admin.set_user(user, password, caps)
        if existed and steady and change is not AclChange.UNCHANGED:
            events.append(
                Event("DriftRepaired", f"ACL user {user.name} was {_drift_word(change)}; restored", "Warning")
            )
            with store_errors(store.name):  # evidence for the compliance report, in the tamper-evident trail
                admin.append_audit(acl.audit_key(tenant.namespace, tenant.name), _drift_event(user.name, change, now))
        provisioned.append(ProvisionedUser(name=user.name, agent=user.agent, secret_name=secret_name))
    events += _revoke_removed_agents(tenant, admin, {u.agent for u in provisioned if u.agent}, store.name, deps)
    _, keyring_existed = _ensure_secret(tenant, keys_secret_name(tenant.name), _KeysSecret(tenant, deps), deps)
    if not keyring_existed:
        events.append(Event("KeyringCreated", f"new 256-bit keyring in Secret {keys_secret_name(tenant.name)}"))
    deps.kube.apply_cronjob(retention_cronjob(tenant, deps.job_image))
    deps.kube.apply_cronjob(report_cronjob(tenant, policy, deps.job_image))
    prefix = acl.tenant_prefix(tenant.namespace, tenant.name)
    with store_errors(store.name):
        measured = admin.usage(prefix, sample=deps.usage_sample)
        trimmed = _trim_audit(tenant, policy, admin, now)
        records = {job: admin.read_hash(_job_key(tenant, job)) for job in JOBS}
    jobs = _job_runs(records)
    compliance = _publish_report(tenant, records["report"], deps)
    if trimmed:
        events.append(Event("AuditTrimmed", f"{trimmed} audit entries older than {policy.audit_retention_days} days"))
    usage = Usage(keys=measured.keys, memory_bytes=measured.bytes, sampled=measured.sampled, measured_at=now)
    status = tenant.status.model_copy(
        update={
            "store": store.name,
            "key_prefix": prefix,
            "users": provisioned,
            "credentials_secret": credentials_secret_name(tenant.name),
            "keys_secret": keys_secret_name(tenant.name),
            "encryption": encryption_in_force(tenant, policy),
            "policies": [ref.name for ref in tenant.spec.policy_refs],
            "jobs": jobs,
            "compliance": compliance,
            "effective_policy": policy,
            "usage": usage,
        }
    )
    users = ", ".join(u.name for u in provisioned)
    ready_provisioned = condition(
        "Provisioned",
        "True",
        "Provisioned",
        f"ACL users {users} on MemoryStore {store.name}",
        generation,
        now,
    )
    over = _quota_violations(tenant, usage)
    if over:
        ready = condition("Ready", "False", "QuotaExceeded", "; ".join(over), generation, now)
    else:
        ready = condition(
            "Ready",
            "True",
            "Provisioned",
            f"{len(provisioned)} ACL user(s), prefix {prefix}",
            generation,
            now,
        )
    return Outcome(with_conditions(status, generation, ready_provisioned, ready), events)


def _trim_audit(tenant: MemoryTenant, policy: Requirements, admin: RedisAdmin, now: datetime) -> int:
    """Audit entries go only once older than the audit minimum; with no minimum in force they are all kept."""
    if policy.audit_retention_days is None:
        return 0
    cutoff = now - timedelta(days=policy.audit_retention_days)
    return admin.trim_stream_before(acl.audit_key(tenant.namespace, tenant.name), int(cutoff.timestamp() * 1000))


JOBS = ("retention", "report")
_JOB_BOOKKEEPING = {"status", "startedAt", "finishedAt", "durationMs", "error", "cursor", "report", "markdown"}


def _job_key(tenant: MemoryTenant, job: str) -> str:
    """Where the tenant's jobs record their last run, under its shared area on the store."""
    return f"{acl.shared_prefix(tenant.namespace, tenant.name)}jobs:{job}"


def _job_runs(records: dict[str, dict[str, str]]) -> list[JobRun]:
    runs = []
    for job, record in records.items():
        if not record:
            continue
        counts = ", ".join(f"{k}={v}" for k, v in sorted(record.items()) if k not in _JOB_BOOKKEEPING)
        duration = record.get("durationMs", "")
        runs.append(
            JobRun(
                job=job,
                status=record.get("status", "unknown"),
                started_at=record.get("startedAt"),
                finished_at=record.get("finishedAt"),
                duration_ms=int(duration) if duration.isdigit() else None,
                summary=record.get("error") or counts,
            )
        )
    return runs


def _publish_report(tenant: MemoryTenant, record: dict[str, str], deps: Deps) -> ComplianceSummary | None:
    """The report job's last document as a ConfigMap, and its gist for status (None until one exists)."""
    if not record.get("report"):
        return tenant.status.compliance
    try:
        report = json.loads(record["report"])
        summary = ComplianceSummary(
            generated_at=report.get("generatedAt"),
            score=int(report["score"]),
            violations=len(report["violations"]),
            config_map=f"{tenant.name}-compliance-report",
        )
    except (ValueError, KeyError, TypeError):
        return tenant.status.compliance  # written by a tenant user: never trusted to be well-formed
    deps.kube.apply_configmap(report_configmap(tenant, record["report"], record.get("markdown", "")))
    return summary


def _drift_event(username: str, change: AclChange, now: datetime) -> dict[str, str]:
    """An audit event in the agent library's shape (who, what, when, counts)."""
    return {
        "v": "1",
        "ts": str(int(now.timestamp() * 1000)),
        "actor": "agent-memory-operator",
        "action": "acl.drift_repaired",
        "target": username,
        "n": "1",
        "detail": _drift_word(change),
    }


def _drift_word(change: AclChange) -> str:
    return "missing" if change is AclChange.CREATED else "edited"


def _quota_violations(tenant: MemoryTenant, usage: Usage) -> list[str]:
    quota = tenant.spec.quota
    if quota is None:
        return []
    over = []
    if quota.keys is not None and usage.keys > quota.keys:
        over.append(f"{usage.keys} keys exceed spec.quota.keys {quota.keys}")
    limit = quota.memory_bytes
    if limit is not None and usage.memory_bytes > limit:
        over.append(f"{usage.memory_bytes} bytes exceed spec.quota.memory {quota.memory} ({limit} bytes)")
    return over


def _revoke_removed_agents(
    tenant: MemoryTenant, admin: RedisAdmin, wanted: set[str | None], store_name: str, deps: Deps
) -> list[Event]:
    """Agents dropped from spec.agents (or a level without agent users) lose their ACL user and Secret."""
    events = []
    for secret in _agent_secrets(tenant, deps):
        agent = (secret["metadata"].get("labels") or {}).get(AGENT_LABEL)
        if agent in wanted:
            continue
        username = secret_value(secret, "REDIS_USERNAME") or ""
        with store_errors(store_name):
            admin.delete_users([u for u in [username] if _is_tenant_user(tenant, u)])
        deps.kube.delete_secret(tenant.namespace, secret["metadata"]["name"])
        events.append(Event("AgentRevoked", f"agent {agent}: ACL user {username} deleted, Secret removed"))
    return events


def _agent_secrets(tenant: MemoryTenant, deps: Deps) -> list[dict[str, Any]]:
    selector = f"{TENANT_LABEL}={tenant.name},{ROLE_LABEL}={ROLE_CREDENTIALS},{AGENT_LABEL}"
    found = deps.kube.list_secrets(tenant.namespace, selector)
    return [s for s in found if (s["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == MANAGED_BY]


def _is_tenant_user(tenant: MemoryTenant, username: str) -> bool:
    """Only names of this tenant's own users are ever deleted, whatever a (possibly edited) Secret says."""
    base = acl.tenant_username(tenant.namespace, tenant.name)
    return username == base or username.startswith(base + "_")


# Deletion ---------------------------------------------------------------------------------------------------


def finalize(tenant: MemoryTenant, deps: Deps) -> list[Event]:
    """Revoke access (delete every ACL user of the tenant); with deletionPolicy Delete also erase its keys
    and keyring, with Retain orphan the keyring Secret so the retained data stays decryptable.

    Raises StoreUnavailable while the store cannot be reached: access must really be revoked before the
    finalizer lets go. A store whose MemoryStore object is gone cannot be reached ever again: that is
    reported and deletion proceeds.
    """
    if tenant.status.store is None:
        return []  # never provisioned: nothing outside the cluster to clean up
    body = deps.kube.get_cluster_object(MemoryStore.plural, tenant.status.store)
    if body is None:
        return [
            Event(
                "StoreGone",
                f"MemoryStore {tenant.status.store!r} no longer exists; its ACL users could not be removed",
                "Warning",
            )
        ]
    store = _parse_store(body)
    usernames = {u.name for u in tenant.status.users}
    usernames |= {
        u.name for u in acl.plan_acl_users(tenant.namespace, tenant.name, tenant.spec.isolation, tenant.spec.agents)
    }
    usernames |= {secret_value(s, "REDIS_USERNAME") or "" for s in _agent_secrets(tenant, deps)}
    usernames = {u for u in usernames if _is_tenant_user(tenant, u)}
    prefix = acl.tenant_prefix(tenant.namespace, tenant.name)
    with store_errors(store.name):
        admin = deps.stores.admin_for(store)
        admin.delete_users(sorted(usernames))
        events = [Event("AccessRevoked", f"ACL users {', '.join(sorted(usernames))} deleted")]
        if tenant.spec.deletion_policy == "Delete":
            removed = admin.scan_delete(prefix)
    if tenant.spec.deletion_policy == "Delete":
        deps.kube.delete_secret(tenant.namespace, keys_secret_name(tenant.name))
        events.append(Event("DataDeleted", f"{removed} keys under {prefix} and the keyring deleted"))
    else:
        deps.kube.orphan_secret(tenant.namespace, keys_secret_name(tenant.name))
        events.append(Event("DataRetained", f"keys under {prefix} and Secret {keys_secret_name(tenant.name)} kept"))
    return events
