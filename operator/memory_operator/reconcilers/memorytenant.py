"""MemoryTenant reconcile: store -> ACL user(s) -> credentials Secret(s) -> keyring Secret -> usage -> status.

One level-based function serves create, update, resume and the drift timer: it re-applies the whole desired
state every time (ACL SETUSER ... reset; server-side apply), reusing secret material that already exists.
Order matters for crash safety: a password is persisted in its Secret before the ACL user is set, so a crash
at any point leaves state the next run converges from without minting a second password.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from memory_client import contract
from memory_operator.api.conditions import find_condition
from memory_operator.api.v1alpha1 import (
    CompliancePolicy,
    CompliancePolicySpec,
    MemoryStore,
    MemoryTenant,
    MemoryTenantStatus,
    Requirements,
)
from memory_operator.api.v1alpha1.memorystore import CLUSTER
from memory_operator.api.v1alpha1.memorytenant import (
    CONFIRM_DELETION_ANNOTATION,
    MAX_TENANT_NAME,
    TENANT_NAME_TOO_LONG,
    AuditSeal,
    ComplianceSummary,
    JobRun,
    ProvisionedUser,
    Usage,
)
from memory_operator.builders import acl
from memory_operator.builders.cronjobs import (
    JOBS,
    ROLE_JOB_SERVICE_ACCOUNT,
    ROLE_REPORT,
    cronjob_name,
    job_role,
    job_service_account,
    report_configmap,
    report_configmap_name,
    report_cronjob,
    report_history,
    retention_cronjob,
)
from memory_operator.builders.keyring import KEY_BYTES, KEYRING_KEY, Keyring, KeyringError, KeyringKey
from memory_operator.builders.meta import (
    JOB_SERVICE_ACCOUNT,
    carries_our_marks,
    credentials_secret_name,
    job_credentials_secret_name,
    keys_secret_name,
)
from memory_operator.builders.secrets import (
    ROLE_CREDENTIALS,
    ROLE_JOB_CREDENTIALS,
    ROLE_KEYS,
    Credentials,
    Endpoint,
    credentials_secret,
    job_credentials_secret,
    keys_secret,
    secret_value,
)
from memory_operator.clients.kube import AlreadyExists
from memory_operator.clients.redis_admin import AclChange, RedisAdmin
from memory_operator.clients.redis_cluster import ClusterAdmin
from memory_operator.deps import Deps
from memory_operator.errors import (
    AmbiguousDefaultStore,
    DeletionInProgress,
    InvalidSpec,
    KeyringUnreadable,
    NameConflict,
    PolicyConflict,
    PolicyNotFound,
    ResidencyUnsatisfied,
    StoreNotFound,
    StoreUnavailable,
    describe_validation_error,
)
from memory_operator.policy import PolicyContradiction, effective_for_tenant, encryption_in_force
from memory_operator.reconcilers.audit import (
    SealPass,
    audit_status,
    compliant_condition,
    seal_trail,
    violations_message,
)
from memory_operator.reconcilers.common import Event, Outcome, condition, store_errors, with_conditions
from memory_operator.surveys import SurveyTarget

__all__ = ["effective_policy", "finalize", "reconcile", "resolve_store"]

PASSWORD_BYTES = 32
T = TypeVar("T")


# Store placement ------------------------------------------------------------------------------------------


def resolve_store(tenant: MemoryTenant, deps: Deps) -> MemoryStore:
    """The store to use: spec.storeRef, else the one already provisioned on, else by residency or default.

    A store being deleted keeps the tenants already on it (their finalizers need it) but takes no new ones.
    """
    pinned, spec = tenant.status.store, tenant.spec
    if spec.store_ref is not None:
        if pinned and pinned != spec.store_ref.name:
            raise InvalidSpec(
                f"spec.storeRef.name: cannot move from {pinned!r} to {spec.store_ref.name!r} once provisioned "
                "(data is not migrated); create a new MemoryTenant instead"
            )
        store = _get_store(spec.store_ref.name, deps, "spec.storeRef.name")
        if store.metadata.deletion_timestamp is not None and pinned != store.name:
            raise StoreNotFound(f"spec.storeRef.name: MemoryStore {store.name!r} is being deleted")
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
    """Among valid stores not being deleted: those in the residency region, else the default one.

    In a region, the default-annotated store wins, then the first by name (deterministic; pinned in
    status.store). Two stores annotated default are never a coin toss: AmbiguousDefaultStore.
    """
    stores = []
    for body in deps.kube.list_cluster_objects(MemoryStore.plural):
        try:
            store = MemoryStore.from_body(body)
        except ValidationError:
            continue  # an invalid store reports itself; it is never a placement candidate
        if store.metadata.deletion_timestamp is None:
            stores.append(store)
    stores.sort(key=lambda s: (not s.is_default, s.name))
    residency = tenant.spec.residency
    if residency:
        stores = [s for s in stores if s.spec.region == residency]
        if not stores:
            raise ResidencyUnsatisfied(f"spec.residency: no MemoryStore has spec.region {residency!r}")
    defaults = [s for s in stores if s.is_default]
    if len(defaults) > 1:
        names = ", ".join(s.name for s in defaults)
        raise AmbiguousDefaultStore(
            f"spec.storeRef: not set, and {len(defaults)} MemoryStores{' in ' + residency if residency else ''} "
            f'are annotated agentmemory.io/default-store: "true" ({names}); keep one default or set spec.storeRef'
        )
    if residency:
        return stores[0]
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
            policies.append((ref.name, CompliancePolicy.from_body(body).spec.model_dump_json()))
        except ValidationError as exc:
            raise PolicyConflict(f"{field}: CompliancePolicy {ref.name!r} is invalid: "
                                 f"{describe_validation_error(exc, 'spec')}") from None  # fmt: skip
    try:
        return _combined(tuple(policies), tenant.spec.retention_days)
    except PolicyContradiction as exc:
        raise PolicyConflict(str(exc)) from None


@functools.lru_cache(maxsize=1024)
def _combined(policies: tuple[tuple[str, str], ...], retention_days: int | None) -> Requirements:
    """effective_for_tenant of (name, spec as JSON) pairs, remembered: it checks every schedule with croniter, the
    dearest pure step of a pass, and most tenants share a combination (models are frozen: one result serves all)."""
    specs = [(name, CompliancePolicySpec.model_validate_json(spec)) for name, spec in policies]
    return effective_for_tenant(specs, retention_days)


# Secret material ------------------------------------------------------------------------------------------


def _conflict(kind: str, tenant: MemoryTenant, name: str) -> NameConflict:
    return NameConflict(
        f"{kind} {tenant.namespace}/{name} exists and was not written by agent-memory-operator for MemoryTenant "
        f"{tenant.name!r}; nothing was provisioned. Rename the tenant (or the agent) or remove that {kind}"
    )


def _claim(obj: dict[str, Any] | None, kind: str, tenant: MemoryTenant, role: str, agent: str | None = None) -> None:
    """An existing child at one of our names must carry our marks for this tenant, else it is someone else's."""
    if obj is not None and not carries_our_marks(obj, tenant.name, role, agent):
        raise _conflict(kind, tenant, obj["metadata"]["name"])


def _claim_children(tenant: MemoryTenant, users: list[acl.AclUser], deps: Deps) -> _Children:
    """Read every child at our names and refuse (NameConflict) before anything is written if one is foreign:
    a pre-existing CronJob, ConfigMap or Secret, or another tenant's child whose name collides with ours
    (tenant `a` with agent `b-c` and tenant `a-b` with agent `c` both want `a-b-c-memory-credentials`)."""
    ns = tenant.namespace
    secrets_found: dict[str, dict[str, Any] | None] = {}
    for user in users:
        name = credentials_secret_name(tenant.name, user.agent)
        secrets_found[name] = found = deps.kube.get_secret(ns, name)
        _claim(found, "Secret", tenant, ROLE_CREDENTIALS, user.agent)
    keys_name = keys_secret_name(tenant.name)
    secrets_found[keys_name] = found = deps.kube.get_secret(ns, keys_name)
    _claim(found, "Secret", tenant, ROLE_KEYS)
    jobs_name = job_credentials_secret_name(tenant.name)
    secrets_found[jobs_name] = found = deps.kube.get_secret(ns, jobs_name)
    _claim(found, "Secret", tenant, ROLE_JOB_CREDENTIALS)
    cronjobs_found: dict[str, dict[str, Any] | None] = {}
    for job in JOBS:
        name = cronjob_name(tenant.name, job)
        cronjobs_found[name] = found = deps.kube.get_cronjob(ns, name)
        _claim(found, "CronJob", tenant, job_role(job))
    report = deps.kube.get_configmap(ns, report_configmap_name(tenant.name))
    _claim(report, "ConfigMap", tenant, ROLE_REPORT)
    account = deps.kube.get_service_account(ns, JOB_SERVICE_ACCOUNT)
    if account is not None and not carries_our_marks(account, None, ROLE_JOB_SERVICE_ACCOUNT):
        raise _conflict("ServiceAccount", tenant, JOB_SERVICE_ACCOUNT)
    return _Children(secrets_found, cronjobs_found, account_exists=account is not None, report=report)


class _Children:
    """What `_claim_children` read: the child Secrets and CronJobs by name (None: absent) and whether the jobs'
    account exists."""

    def __init__(
        self,
        secrets_found: dict[str, dict[str, Any] | None],
        cronjobs_found: dict[str, dict[str, Any] | None],
        account_exists: bool,
        report: dict[str, Any] | None = None,
    ) -> None:
        self.secrets, self.cronjobs = secrets_found, cronjobs_found
        self.account_exists = account_exists
        self.report = report  # the report ConfigMap as read (its history.json carries on)


class _Guard:
    """Checked before every write: once the tenant's deletion has begun, a reconcile writes nothing more."""

    def __init__(self, tenant: MemoryTenant, deps: Deps, cancelled: Callable[[], bool]) -> None:
        self.uid, self.deps, self.cancelled = tenant.metadata.uid, deps, cancelled

    def __call__(self) -> None:
        if self.deps.deletions.deleting(self.uid) or self.cancelled():
            raise DeletionInProgress("deletion began while reconciling; nothing more is written")


def _never() -> bool:
    return False


class SecretMaterial(Protocol[T]):
    """How one kind of child Secret is built from its material, and how fresh material is minted."""

    role: str
    agent: str | None

    def build(self, material: T) -> dict[str, Any]: ...
    def new(self) -> T: ...
    def read(self, secret: dict[str, Any]) -> T | None: ...


def _differs(existing: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Whether applying `desired` would change what matters in `existing` (data, labels, owner)."""
    meta, want = existing.get("metadata") or {}, desired["metadata"]
    labels = meta.get("labels") or {}
    owners = {o.get("uid") for o in meta.get("ownerReferences") or []}
    return (
        (existing.get("data") or {}) != desired.get("data", {})
        or any(labels.get(k) != v for k, v in want["labels"].items())
        or owners != {o["uid"] for o in want.get("ownerReferences", [])}
    )


def _ensure_secret(
    tenant: MemoryTenant,
    name: str,
    kind: SecretMaterial[T],
    deps: Deps,
    existing: dict[str, Any] | None,
    guard: _Guard,
) -> tuple[T, bool]:
    """Reuse the material in Secret `name` (`existing`, as just read) when readable, else write the Secret with
    new material; an unchanged Secret is not written at all.

    A missing Secret is created create-only: if a concurrent reconcile wins the race, its material is
    re-read and used, so a Secret and the server can never disagree. Returns (material, existed).
    """
    for attempt in range(2):
        if attempt:
            existing = deps.kube.get_secret(tenant.namespace, name)
            _claim(existing, "Secret", tenant, kind.role, kind.agent)
        if existing is not None:
            material = kind.read(existing)
            if material is not None:
                desired = kind.build(material)
                if _differs(existing, desired):
                    guard()
                    deps.kube.apply_secret(desired)
                return material, True
        material = kind.new()
        guard()
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

    role = ROLE_CREDENTIALS

    def __init__(self, tenant: MemoryTenant, user: acl.AclUser, placed: _Placement, policy: Requirements) -> None:
        self.tenant, self.user, self.endpoint, self.policy = tenant, user, placed.endpoint, policy
        self.layout, self.nodes = placed.layout, placed.nodes
        self.agent = user.agent

    def credentials(self, password: str) -> Credentials:
        layout, agent = self.layout, self.user.agent
        strict_agent = agent is not None and self.tenant.spec.isolation == "strict"
        return Credentials(
            username=self.user.name,
            password=password,
            agent=agent,
            key_prefix=layout.prefix,
            audit_key=layout.audit,
            agent_prefix=layout.agent(agent) if strict_agent and agent else None,
            shared_prefix=layout.shared if strict_agent else None,
            cluster_nodes=self.nodes,
        )

    def build(self, password: str) -> dict[str, Any]:
        return credentials_secret(self.tenant, self.credentials(password), self.endpoint, self.policy)

    def new(self) -> str:
        return secrets.token_urlsafe(PASSWORD_BYTES)

    def read(self, secret: dict[str, Any]) -> str | None:
        return secret_value(secret, contract.Env.REDIS_PASSWORD) or None


class _JobCredentialsSecret(_CredentialsSecret):
    """The jobs' user's Secret: the policy the jobs enforce, where the seal is and where results go."""

    role = ROLE_JOB_CREDENTIALS

    def __init__(self, tenant: MemoryTenant, user: acl.AclUser, placed: _Placement, policy: Requirements) -> None:
        super().__init__(tenant, user, placed, policy)
        self.endpoint = placed.jobs_endpoint or placed.endpoint

    def build(self, password: str) -> dict[str, Any]:
        creds = replace(
            self.credentials(password),
            shared_prefix=self.layout.shared,
            seal_key=self.layout.seal,
            results_prefix=self.layout.results,
        )
        return job_credentials_secret(self.tenant, creds, self.endpoint, self.policy)


class _KeysSecret:
    """Builds the keyring Secret; `new()` mints the first random 256-bit key."""

    role = ROLE_KEYS
    agent: str | None = None

    def __init__(self, tenant: MemoryTenant, deps: Deps) -> None:
        self.tenant, self.deps = tenant, deps

    def build(self, keyring: Keyring) -> dict[str, Any]:
        return keys_secret(self.tenant, keyring)

    def new(self) -> Keyring:
        first = KeyringKey(id="k1", material=secrets.token_bytes(KEY_BYTES), created_at=self.deps.clock())
        return Keyring.first(first, pseudonym=secrets.token_bytes(KEY_BYTES))  # the subject pseudonym's own key

    def read(self, secret: dict[str, Any]) -> Keyring:
        raw = secret_value(secret, KEYRING_KEY)
        if raw is None:
            raise KeyringUnreadable(f"Secret {secret['metadata']['name']} has no key {KEYRING_KEY}; not overwriting it")
        try:
            return Keyring.from_json(raw)
        except KeyringError as exc:
            raise KeyringUnreadable(f"Secret {secret['metadata']['name']}: {exc}; not overwriting it") from None


# The reconcile ---------------------------------------------------------------------------------------------


def reconcile(tenant: MemoryTenant, deps: Deps, cancelled: Callable[[], bool] = _never) -> Outcome[MemoryTenantStatus]:
    """Converge the tenant's users, Secrets and status; raises a ReconcileError subclass when it cannot.

    `cancelled` says whether the tenant's deletion has begun (a handler passes its live body's view): from then
    on nothing more is written. The reconcile never runs alongside the tenant's finalizer in this process.
    """
    with deps.deletions.exclusive(tenant.metadata.uid, timeout=0):
        return _reconcile(tenant, deps, _Guard(tenant, deps, cancelled))


def _reconcile(tenant: MemoryTenant, deps: Deps, guard: _Guard) -> Outcome[MemoryTenantStatus]:
    now = deps.clock()
    guard()
    if len(tenant.name) > MAX_TENANT_NAME:  # the CRD refuses it at admission; an object stored before may not be
        raise InvalidSpec(TENANT_NAME_TOO_LONG)
    policy = effective_policy(tenant, deps)  # before anything is written: a conflict provisions nothing
    store = resolve_store(tenant, deps)
    with deps.stores.slot(store.name):  # StoreBusy, before anything is written, when the store has enough going on
        placed = _placement(tenant, store, deps, guard)
        users, events = _users(tenant, placed, policy, deps, guard, now)
        events += _keyring(tenant, placed, deps, guard)
        _jobs(tenant, placed, policy, deps, guard)
        evidence = _evidence(tenant, placed, policy, deps, guard, now)
    return _status(tenant, placed, policy, users, evidence, events, now)


@dataclass(frozen=True)
class _Placement:
    """Where the tenant lives and what is already there: the store and its admin connection, the children read."""

    store: MemoryStore
    endpoint: Endpoint
    admin: RedisAdmin
    caps: acl.ServerCapabilities
    plan: list[acl.AclUser]
    job_user: acl.AclUser
    children: _Children
    #: this generation was provisioned before: what differs now is drift (evidence for the report)
    steady: bool
    #: where the tenant's keys are (the cluster layout on a `mode: Cluster` store)
    layout: acl.Layout
    #: a cluster store's nodes (host:port) for the Secrets; () on a standalone store
    nodes: tuple[str, ...] = ()
    #: where the jobs connect: on a cluster, the primary serving the tenant's slot (the jobs' plain client follows
    #: no MOVED; a failover moves it and the next pass rewrites the jobs' Secret); else the store's endpoint
    jobs_endpoint: Endpoint | None = None


def _placement(tenant: MemoryTenant, store: MemoryStore, deps: Deps, guard: _Guard) -> _Placement:
    """Check the store answers, refuse foreign children, then pin the placement: nothing written before."""
    endpoint = Endpoint.parse(store.spec.url)
    with store_errors(store.name), _store_misconfigured(store.name):
        admin = deps.stores.admin_for(store)
        admin.server_info()  # reachable now, before anything is written (the command list below may be cached)
        caps = deps.stores.capabilities(admin)
        layout = layout_of(tenant, store)
        nodes: tuple[str, ...] = ()
        jobs_endpoint = endpoint
        if isinstance(admin, ClusterAdmin):
            nodes = tuple(n.address for n in admin.nodes())
            owner = admin.primary_for(layout.prefix).address
            jobs_endpoint = Endpoint.parse(f"{'rediss' if endpoint.tls else 'redis'}://{owner}")
    plan = layout.users(tenant.spec.isolation, tenant.spec.agents)
    job_user = layout.job_user()
    children = _claim_children(tenant, plan, deps)  # a foreign or colliding child: refused, nothing written
    guard()
    _pin_store(tenant, store, deps)  # placement is on record before the first user or Secret exists
    steady = _steady(tenant, tenant.metadata.generation)
    return _Placement(store, endpoint, admin, caps, plan, job_user, children, steady, layout, nodes, jobs_endpoint)


def _users(
    tenant: MemoryTenant, placed: _Placement, policy: Requirements, deps: Deps, guard: _Guard, now: datetime
) -> tuple[list[ProvisionedUser], list[Event]]:
    """Each login's material, then its ACL user (a password is in its Secret before the server knows it); drift
    repaired on a steady pass goes to the audit trail; agents no longer in the spec lose user and Secret."""
    store, admin, job_user = placed.store, placed.admin, placed.job_user
    events: list[Event] = []
    provisioned: list[ProvisionedUser] = []
    logins = [(u, credentials_secret_name(tenant.name, u.agent), _CredentialsSecret) for u in placed.plan]
    logins.append((job_user, job_credentials_secret_name(tenant.name), _JobCredentialsSecret))
    for user, secret_name, kind in logins:
        material = kind(tenant, user, placed, policy)
        password, existed = _ensure_secret(
            tenant, secret_name, material, deps, placed.children.secrets[secret_name], guard
        )
        guard()
        with store_errors(store.name):
            change = admin.set_user(user, password, placed.caps)
        if existed and placed.steady and change is not AclChange.UNCHANGED:
            events.append(
                Event("DriftRepaired", f"ACL user {user.name} was {_drift_word(change)}; restored", "Warning")
            )
            guard()
            with store_errors(store.name):  # evidence for the compliance report, in the tamper-evident trail
                admin.append_audit(placed.layout.audit, _drift_event(user.name, change, now))
        if user is not job_user:
            provisioned.append(ProvisionedUser(name=user.name, agent=user.agent, secret_name=secret_name))
    wanted = {u.name for u in provisioned} | {job_user.name}
    events += _revoke_removed_agents(tenant, admin, wanted, placed.steady, store.name, deps, guard)
    return provisioned, events


def _keyring(tenant: MemoryTenant, placed: _Placement, deps: Deps, guard: _Guard) -> list[Event]:
    """The data keys' Secret: read and kept when it exists, minted once when it does not."""
    keys_name = keys_secret_name(tenant.name)
    _, existed = _ensure_secret(
        tenant, keys_name, _KeysSecret(tenant, deps), deps, placed.children.secrets[keys_name], guard
    )
    return [] if existed else [Event("KeyringCreated", f"new 256-bit keyring in Secret {keys_name}")]


def _jobs(tenant: MemoryTenant, placed: _Placement, policy: Requirements, deps: Deps, guard: _Guard) -> None:
    """The jobs' ServiceAccount (once per namespace) and the tenant's retention and report CronJobs, each applied
    only when it differs from what the operator last applied and the cluster still holds."""
    _ensure_job_account(tenant, placed.children, deps, guard)
    for desired in (retention_cronjob(tenant, deps.job_image), report_cronjob(tenant, policy, deps.job_image)):
        if not deps.kube.applied("CronJob", placed.children.cronjobs[desired["metadata"]["name"]], desired):
            guard()
            deps.kube.apply_cronjob(desired)


@dataclass(frozen=True)
class _Evidence:
    """What the store says about the tenant this pass: usage, the sealed trail, the jobs' last runs, the report."""

    usage: Usage
    sealed: SealPass
    jobs: list[JobRun]
    compliance: ComplianceSummary | None
    failed: list[str]


def _evidence(
    tenant: MemoryTenant, placed: _Placement, policy: Requirements, deps: Deps, guard: _Guard, now: datetime
) -> _Evidence:
    """Measure usage, seal the audit trail, read the jobs' records and the last survey's facts, publish the report."""
    store, admin, layout = placed.store, placed.admin, placed.layout
    with store_errors(store.name):
        measured = admin.usage(layout.prefix, sample=deps.usage_sample)
        guard()
        sealed = seal_trail(tenant, layout, policy, admin, deps, tenant.status.audit)
        records = {job: admin.read_hash(_job_key(layout, job)) for job in JOBS}
        guard()
        surveyed = _survey(tenant, store, policy, admin, deps)
    jobs = _job_runs(records)
    guard()
    compliance, failed = _publish_report(tenant, records[contract.JOB_REPORT], placed.children.report, deps)
    # Keys written around the library (with the tenant's credentials, outside its index) count too, from the
    # store's hourly survey: the quota cannot be evaded by not indexing, for longer than one survey interval.
    keys = max(measured.keys, int(surveyed.get("data_keys", "0") or 0))
    usage = Usage(keys=keys, memory_bytes=measured.bytes, sampled=measured.sampled, measured_at=now)
    return _Evidence(usage, sealed, jobs, compliance, failed)


def _status(
    tenant: MemoryTenant,
    placed: _Placement,
    policy: Requirements,
    provisioned: list[ProvisionedUser],
    evidence: _Evidence,
    events: list[Event],
    now: datetime,
) -> Outcome[MemoryTenantStatus]:
    """The whole new status with its conditions: Provisioned, Ready (False only over quota), Compliant."""
    generation, store, sealed = tenant.metadata.generation, placed.store, evidence.sealed
    events = [*events, *sealed.events]
    if sealed.trimmed:
        days = policy.audit_retention_days
        events.append(Event("AuditTrimmed", f"{sealed.trimmed} audit entries older than {days} days"))
    prefix = placed.layout.prefix
    status = tenant.status.model_copy(
        update={
            "store": store.name,
            "key_prefix": prefix,
            "users": provisioned,
            "credentials_secret": credentials_secret_name(tenant.name),
            "keys_secret": keys_secret_name(tenant.name),
            "encryption": encryption_in_force(tenant, policy),
            "policies": [ref.name for ref in tenant.spec.policy_refs],
            "jobs": evidence.jobs,
            "compliance": evidence.compliance,
            "audit": _audit_shown(tenant.status.audit, audit_status(sealed.seal)),
            "effective_policy": policy,
            "usage": _usage_shown(tenant.status.usage, evidence.usage),
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
    over = _quota_violations(tenant, evidence.usage)
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
    compliant = compliant_condition(sealed.seal, evidence.compliance, evidence.failed, generation, now)
    report, previous = evidence.compliance, tenant.status.compliance
    if report is not None and report.violations and (previous is None or previous.generated_at != report.generated_at):
        # once per report that found something, not every pass while it stands
        events.append(Event("ComplianceViolations", violations_message(report, evidence.failed), "Warning"))
    return Outcome(with_conditions(status, generation, ready_provisioned, ready, compliant), events)


#: how long status.usage.measuredAt stays put while the figures stay the same: a timestamp that moved every pass
#: would patch the status every pass, so it says when these same figures were first measured, within this bound
USAGE_REFRESH = timedelta(hours=1)


def _usage_shown(old: Usage | None, new: Usage) -> Usage:
    same = old is not None and (old.keys, old.memory_bytes, old.sampled) == (new.keys, new.memory_bytes, new.sampled)
    if old is not None and same and timedelta(0) <= new.measured_at - old.measured_at < USAGE_REFRESH:
        return old
    return new


def _audit_shown(old: AuditSeal | None, new: AuditSeal) -> AuditSeal:
    """sealedAt says when the seal last moved: a pass that only re-stamps it (and leaves the store's seal as it
    was, reconcilers.audit) shows the old time."""
    if old is not None and old.sealed_at and new.model_copy(update={"sealed_at": old.sealed_at}) == old:
        return old
    return new


def _steady(tenant: MemoryTenant, generation: int) -> bool:
    """This generation was provisioned by an earlier pass, so what differs from it now is drift.

    Judged by the Provisioned condition, which only a successful pass sets: status.observedGeneration also moves
    when a pass fails (PolicyNotFound, StoreUnavailable...), and the next success would then report the first
    provisioning of the new spec as drift repaired, in the audit trail the compliance report counts.
    """
    provisioned = find_condition(tenant.status.conditions, "Provisioned")
    return provisioned is not None and provisioned.status == "True" and provisioned.observed_generation == generation


def layout_of(tenant: MemoryTenant, store: MemoryStore) -> acl.Layout:
    """The tenant's key layout on `store`: under one hash tag when the store is a cluster."""
    return acl.Layout(tenant.namespace, tenant.name, cluster=store.spec.mode == CLUSTER)


@contextmanager
def _store_misconfigured(store_name: str) -> Iterator[None]:
    """A store whose own spec is refused (its Secret namespace) is, for its tenants, a store that is unavailable:
    it recovers by itself once the store is fixed, so the tenant is retried, not stalled."""
    try:
        yield
    except InvalidSpec as exc:
        raise StoreUnavailable(f"MemoryStore {store_name} cannot be used: {exc.message}") from None


def _pin_store(tenant: MemoryTenant, store: MemoryStore, deps: Deps) -> None:
    """Record the placement in status.store now, before any user or Secret exists on it: a tenant is never
    re-placed once anything was written, and its finalizer always knows where to revoke access."""
    if tenant.status.store == store.name:
        return
    if not deps.kube.patch_namespaced_status(
        MemoryTenant.plural, tenant.namespace, tenant.name, {"store": store.name}, None
    ):
        raise DeletionInProgress(f"MemoryTenant {tenant.namespace}/{tenant.name} is gone")


def _ensure_job_account(tenant: MemoryTenant, children: _Children, deps: Deps, guard: _Guard) -> None:
    """The namespace's ServiceAccount for job Pods (no token, no permissions), created once, never re-written."""
    if children.account_exists:
        return
    guard()
    try:
        deps.kube.create_service_account(job_service_account(tenant.namespace))
    except AlreadyExists:  # another tenant of the namespace created it meanwhile: check it is ours
        account = deps.kube.get_service_account(tenant.namespace, JOB_SERVICE_ACCOUNT)
        if account is not None and not carries_our_marks(account, None, ROLE_JOB_SERVICE_ACCOUNT):
            raise _conflict("ServiceAccount", tenant, JOB_SERVICE_ACCOUNT) from None


_JOB_BOOKKEEPING = {"status", "startedAt", "finishedAt", "durationMs", "error", "cursor", "report", "markdown"}


def _job_key(layout: acl.Layout, job: str) -> str:
    """Where the tenant's jobs record their last run: outside the tenant prefix, written by the jobs' user only."""
    return f"{layout.results}{job}"


def _survey(
    tenant: MemoryTenant, store: MemoryStore, policy: Requirements, admin: RedisAdmin, deps: Deps
) -> dict[str, str]:
    """The last survey's facts about every key of the tenant, whoever wrote it, from `jobs:<ns>:<tenant>:facts`
    (empty until the store's first survey of it), and what the next survey must look for, noted for the store's
    own pass, which walks its keyspace once for all of its tenants (memory_operator.surveys)."""
    layout = layout_of(tenant, store)
    key = _job_key(layout, contract.JOB_FACTS)
    last = admin.read_hash(key)
    at = last.get("at", "")
    target = SurveyTarget(
        prefix=layout.prefix,
        shared=layout.shared,
        facts_key=key,
        retention_days=policy.message_retention_days,
        encrypted=encryption_in_force(tenant, policy),
    )
    deps.surveys.note(store.name, target, int(at) if at.isdigit() else None)
    return last


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


def _publish_report(
    tenant: MemoryTenant, record: dict[str, str], published: dict[str, Any] | None, deps: Deps
) -> tuple[ComplianceSummary | None, list[str]]:
    """The report job's last document as a ConfigMap (with the history of the last reports carried on from the
    `published` one), and its gist for status (None until one exists), with the names of the checks that failed."""
    if not record.get("report"):
        return tenant.status.compliance, []
    try:
        report = json.loads(record["report"])
        failed = [str(v["check"]) for v in report["violations"]]
        summary = ComplianceSummary(
            generated_at=report.get("generatedAt"),
            score=int(report["score"]),
            violations=len(failed),
            config_map=report_configmap_name(tenant.name),
        )
    except (ValueError, KeyError, TypeError):
        return tenant.status.compliance, []  # the jobs' own output, still checked for shape before it is shown
    history = report_history(((published or {}).get("data") or {}).get("history.json"), report)
    deps.kube.apply_configmap(report_configmap(tenant, record["report"], record.get("markdown", ""), history))
    return summary, failed


def _drift_event(username: str, change: AclChange, now: datetime) -> dict[str, str]:
    """An audit event in the agent library's shape (who, what, when, counts)."""
    return {
        "v": "1",
        "ts": str(int(now.timestamp() * 1000)),
        "actor": contract.AUDIT_ACTOR,
        "action": contract.DRIFT_ACTION,
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
    tenant: MemoryTenant,
    admin: RedisAdmin,
    wanted: set[str],
    steady: bool,
    store_name: str,
    deps: Deps,
    guard: _Guard,
) -> list[Event]:
    """Agents dropped from spec.agents (or a level without agent users) lose their ACL user and Secret.

    Which users exist comes from status.users on a steady pass (nothing in the spec changed) and from the store
    itself (ACL USERS, the tenant's names only) when the spec changed or status is empty: never from a list of
    Secrets. Secrets are deleted by name, and only when they carry our marks.
    """
    base = acl.tenant_username(tenant.namespace, tenant.name)
    if steady and tenant.status.users:
        known = {u.name for u in tenant.status.users}
    else:
        with store_errors(store_name):
            known = set(admin.users_under(base))
    events = []
    for username in sorted(u for u in known - wanted if u.startswith(base + "_")):
        agent = username.removeprefix(base + "_")
        guard()
        with store_errors(store_name):
            admin.delete_users([username])
        name = credentials_secret_name(tenant.name, agent)
        secret = deps.kube.get_secret(tenant.namespace, name)
        if secret is not None and carries_our_marks(secret, tenant.name, ROLE_CREDENTIALS, agent):
            deps.kube.delete_secret(tenant.namespace, name)
        events.append(Event("AgentRevoked", f"agent {agent}: ACL user {username} deleted, Secret {name} removed"))
    return events


# Deletion ---------------------------------------------------------------------------------------------------


def finalize(tenant: MemoryTenant, deps: Deps) -> list[Event]:
    """Revoke access (delete every ACL user of the tenant); with deletionPolicy Delete also erase its keys
    and keyring, with Retain orphan the keyring Secret so the retained data stays decryptable.

    Revocation does not trust status.users: every user named `mt_<ns>_<tenant>` or `mt_<ns>_<tenant>_*` on the
    store the tenant was placed on goes (placement is recorded before anything is written there). The work
    happens once per deletion in this process, never alongside a reconcile of the same tenant; a reconcile
    still running (e.g. blocked on a hung store) is told to stop and waited for at most one store timeout.

    Raises StoreUnavailable while the store cannot be reached: access must really be revoked before the
    finalizer lets go. A store whose MemoryStore object is gone cannot be reached ever again: that is
    reported and deletion proceeds.
    """
    uid = tenant.metadata.uid
    if deps.deletions.finished(uid):
        return []
    deps.deletions.begin(uid)
    with deps.deletions.exclusive(uid, timeout=deps.stores.timeout) as held:
        if not held:
            raise StoreUnavailable(
                f"a reconcile of this tenant is still waiting for MemoryStore {tenant.status.store or '(none)'} "
                "(it may be hung); it stops before writing anything more, and deletion retries"
            )
        events = _finalize(tenant, deps)
    deps.deletions.finish(uid)
    return events


def _finalize(tenant: MemoryTenant, deps: Deps) -> list[Event]:
    if tenant.status.store is None:
        return []  # never placed: nothing was written outside the cluster
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
    layout = layout_of(tenant, store)
    prefix = layout.prefix
    deps.surveys.forget(prefix)
    with store_errors(store.name), _store_misconfigured(store.name):
        admin = deps.stores.admin_for(store)
        usernames = admin.users_under(acl.tenant_username(tenant.namespace, tenant.name))
        admin.delete_users(usernames)
        if usernames:
            events = [Event("AccessRevoked", f"ACL users {', '.join(usernames)} deleted")]
        else:
            events = [Event("AccessRevoked", f"no ACL user of this tenant was left on MemoryStore {store.name}")]
        if tenant.deletes_data:  # the audit trail and its seal stay: evidence outlives data
            removed = admin.scan_delete(prefix)
            admin.scan_delete(layout.results)
    keys_name = keys_secret_name(tenant.name)
    keys = deps.kube.get_secret(tenant.namespace, keys_name)
    ours = keys is not None and carries_our_marks(keys, tenant.name, ROLE_KEYS)  # a foreign Secret is never touched
    if tenant.deletes_data:
        if ours:
            deps.kube.delete_secret(tenant.namespace, keys_name)
        events.append(Event("DataDeleted", f"{removed} keys under {prefix} and the keyring deleted"))
        return events
    if ours:
        deps.kube.orphan_secret(tenant.namespace, keys_name)
    if tenant.spec.deletion_policy == "Delete":
        events.append(
            Event(
                "DeletionNotConfirmed",
                f"deletionPolicy Delete, but annotation {CONFIRM_DELETION_ANNOTATION} does not name "
                f"{tenant.name!r}: the data was not deleted",
                "Warning",
            )
        )
    events.append(Event("DataRetained", f"keys under {prefix} and Secret {keys_name} kept"))
    return events
