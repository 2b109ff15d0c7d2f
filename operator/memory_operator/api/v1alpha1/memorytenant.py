"""MemoryTenant: one tenant's isolated memory namespace on a MemoryStore (namespaced)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from memory_operator.api.base import WireModel
from memory_operator.api.quantity import QUANTITY_PATTERN, parse_bytes
from memory_operator.api.v1alpha1.common import (
    AGE_COLUMN,
    GROUP,
    READY_COLUMNS,
    CustomObject,
    DnsLabel,
    DnsSubdomain,
    Region,
    StatusBase,
    cel_rules,
    unique_items,
)
from memory_operator.api.v1alpha1.compliancepolicy import Requirements

Isolation = Literal["strict", "moderate", "minimal"]
DeletionPolicy = Literal["Retain", "Delete"]
MAX_AGENTS = 64
#: the longest suffix a tenant's name gets in a child name limited to 52 characters (a CronJob's)
LONGEST_CRONJOB_SUFFIX = "-memory-retention"
CRONJOB_NAME_LIMIT = 52  # Kubernetes: a CronJob's Jobs append 11 characters to its name, within 63
#: a MemoryTenant's name is at most this long, so every child name and label fits its kind's limit
MAX_TENANT_NAME = CRONJOB_NAME_LIMIT - len(LONGEST_CRONJOB_SUFFIX)
#: why a longer name is refused: the CRD's rule and the operator's own check say the same
TENANT_NAME_TOO_LONG = (
    f"metadata.name: must be no more than {MAX_TENANT_NAME} characters: child names such as "
    f"<name>{LONGEST_CRONJOB_SUFFIX} (a CronJob) must fit in {CRONJOB_NAME_LIMIT}"
)
_MINIMAL_WITHOUT_AGENTS = (
    "must be empty with isolation minimal (one ACL user for the whole tenant); use moderate or strict for "
    "per-agent users"
)


class StoreRef(WireModel):
    """A MemoryStore by name."""

    name: DnsSubdomain = Field(description="Name of the MemoryStore.")


class PolicyRef(WireModel):
    """A CompliancePolicy by name."""

    name: DnsSubdomain = Field(description="Name of the CompliancePolicy.")


class Quota(WireModel):
    """Limits on what the tenant stores; measured periodically, reported as the QuotaExceeded condition."""

    memory: Annotated[int | str, Field(json_schema_extra={"x-kubernetes-int-or-string": True})] | None = Field(
        default=None,
        description="Maximum memory the tenant's keys may use, as a quantity (e.g. 256Mi, 1G).",
        json_schema_extra={"pattern": QUANTITY_PATTERN},
    )
    keys: int | None = Field(default=None, ge=1, description="Maximum number of keys.")

    @property
    def memory_bytes(self) -> int | None:
        return None if self.memory is None else parse_bytes(self.memory)

    @field_validator("memory")
    @classmethod
    def _memory_is_a_quantity(cls, value: int | str | None) -> int | str | None:
        if value is not None and parse_bytes(value) == 0:
            raise ValueError("must be greater than zero")
        return value


class Encryption(WireModel):
    """Client-side AES-256-GCM with the tenant's keyring (the <tenant>-memory-keys Secret)."""

    enabled: bool = Field(default=True, description="Encrypt values at rest. Always on with isolation strict.")


class MemoryTenantSpec(WireModel):
    """Desired state of a MemoryTenant."""

    model_config = WireModel.model_config | {
        "json_schema_extra": cel_rules(
            {
                "rule": "!has(self.isolation) || self.isolation != 'minimal' || !has(self.agents) "
                "|| size(self.agents) == 0",
                "message": _MINIMAL_WITHOUT_AGENTS,
                "fieldPath": ".agents",
            },
            {
                "rule": "!has(oldSelf.storeRef) || (has(self.storeRef) && self.storeRef.name == oldSelf.storeRef.name)",
                "message": "cannot change once set (data is not migrated); create a new MemoryTenant instead",
                "fieldPath": ".storeRef",
            },
        )
    }

    store_ref: StoreRef | None = Field(
        default=None,
        alias="storeRef",
        description="The MemoryStore to use. If empty: a store whose region matches spec.residency, else the "
        "default store. Cannot change once provisioned.",
    )
    residency: Region | None = Field(
        default=None, description="Required region of the data; only stores with this spec.region are used."
    )
    isolation: Isolation = Field(
        default="moderate",
        description="minimal: one ACL user for the tenant. moderate: plus one user per agent, all sharing the "
        "tenant's keys. strict: per-agent users confined to their own keys and the shared area; "
        "encryption forced on.",
    )
    agents: list[DnsLabel] = Field(
        default_factory=list,
        max_length=MAX_AGENTS,
        description="Agents allowed to use the tenant's memory; with moderate/strict each gets its own ACL user "
        "and Secret <tenant>-<agent>-memory-credentials.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    policy_refs: list[PolicyRef] = Field(
        default_factory=list,
        alias="policyRefs",
        max_length=16,
        description="CompliancePolicies that apply; the effective policy is their strictest combination (with "
        "retentionDays as one more maximum). A policy requiring encryption forces it on.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    quota: Quota | None = Field(default=None, description="Limits on memory and keys.")
    retention_days: int | None = Field(
        default=None,
        alias="retentionDays",
        ge=1,
        le=36500,
        description="Days conversation memory is kept (a maximum). Empty: no limit set by the tenant.",
    )
    encryption: Encryption = Field(default_factory=Encryption, description="Encryption at rest.")
    deletion_policy: DeletionPolicy = Field(
        default="Retain",
        alias="deletionPolicy",
        description="On deletion access is always revoked. Retain keeps the data and the keyring Secret "
        "(a tenant of the same name adopts them again); Delete removes both, but only when the tenant carries "
        "the annotation agentmemory.io/confirm-deletion: <its name>; without it the data and keyring are kept "
        "and a DeletionNotConfirmed Event says so (a GitOps prune or a CRD reinstall must not destroy data).",
    )

    @field_validator("agents")
    @classmethod
    def _agents_unique(cls, agents: list[str], info: ValidationInfo) -> list[str]:
        if agents and info.data.get("isolation") == "minimal":
            raise ValueError(_MINIMAL_WITHOUT_AGENTS)
        return unique_items(agents)

    @field_validator("policy_refs")
    @classmethod
    def _policies_unique(cls, refs: list[PolicyRef]) -> list[PolicyRef]:
        unique_items([r.name for r in refs])
        return refs

    @property
    def encryption_enabled(self) -> bool:
        return self.encryption.enabled or self.isolation == "strict"


class ProvisionedUser(WireModel):
    """An ACL user the operator created, and the Secret holding its credentials."""

    name: str = Field(description="ACL username.")
    agent: str | None = Field(default=None, description="The agent it belongs to; empty for the tenant user.")
    secret_name: str = Field(alias="secretName", description="Secret with REDIS_URL and friends.")


class Usage(WireModel):
    """Measured by the operator's periodic check: the library's size index, checked on a sample with MEMORY USAGE,
    and the hourly survey of the prefix."""

    keys: int = Field(
        ge=0,
        description="Data keys under the tenant prefix, as spec.quota.keys counts them (the library's bookkeeping "
        "left out): the size index, or the hourly survey's count when larger.",
    )
    memory_bytes: int = Field(ge=0, alias="memoryBytes", description="Estimated bytes used by those keys.")
    sampled: bool = Field(default=False, description="True when memoryBytes was extrapolated from a sample.")
    measured_at: datetime = Field(alias="measuredAt", description="When it was measured.")


class JobRun(WireModel):
    """The last run of one of the tenant's jobs, as the job recorded it on the store."""

    job: str = Field(description="retention or report.")
    status: str = Field(description="running, succeeded or failed.")
    started_at: str | None = Field(default=None, alias="startedAt", description="When it started.")
    finished_at: str | None = Field(default=None, alias="finishedAt", description="When it finished.")
    duration_ms: int | None = Field(default=None, alias="durationMs", description="How long it took.")
    summary: str = Field(default="", description="What it did (counts), or the error.")


class ComplianceSummary(WireModel):
    """The last compliance report in brief; the whole report is in ConfigMap `configMap`."""

    generated_at: str | None = Field(default=None, alias="generatedAt", description="When it was made.")
    score: int = Field(ge=0, le=100, description="Share of checks passed, in percent.")
    violations: int = Field(ge=0, description="Checks that failed.")
    config_map: str = Field(alias="configMap", description="ConfigMap with report.json and summary.md.")


class AuditSeal(WireModel):
    """What the operator last vouched for about the tenant's audit trail (public facts, never content).

    Given to `memory_client.seal.verify_trail` (or `AgentMemory.verify_audit(seal=...)`), it lets anyone who can
    read the trail check that nothing sealed was removed, reordered or changed since.
    """

    stream: str = Field(description="The audit stream's key.")
    first: str = Field(default="", description="Id of the oldest entry when sealed.")
    head: str = Field(default="", description="Id of the newest entry verified.")
    head_hash: str = Field(default="", alias="headHash", description="That entry's chain hash.")
    entries_added: int = Field(default=0, alias="entriesAdded", description="Entries ever appended (XINFO).")
    trimmed: int = Field(default=0, description="Entries the operator trimmed past the audit minimum.")
    verified: int = Field(default=0, description="Entries the operator verified since sealing began.")
    sealed_at: int = Field(default=0, alias="sealedAt", description="When the seal last moved (ms since epoch).")
    breach: str = Field(default="", description="The first tampering found; it stays on record.")
    breach_entry: str = Field(default="", alias="breachEntry", description="The entry the breach concerns.")
    breach_at: int = Field(default=0, alias="breachAt", description="When it was found (ms since epoch).")


class MemoryTenantStatus(StatusBase):
    """Observed state of a MemoryTenant."""

    model_config = StatusBase.model_config | {"extra": "ignore"}

    store: str | None = Field(default=None, description="The MemoryStore the tenant is provisioned on.")
    key_prefix: str | None = Field(default=None, alias="keyPrefix", description="All tenant keys start with it.")
    users: list[ProvisionedUser] = Field(default_factory=list, description="ACL users and their Secrets.")
    credentials_secret: str | None = Field(
        default=None, alias="credentialsSecret", description="Secret with the tenant user's credentials."
    )
    keys_secret: str | None = Field(default=None, alias="keysSecret", description="Secret with the keyring.")
    encryption: bool | None = Field(default=None, description="Whether encryption at rest is in force.")
    usage: Usage | None = Field(default=None, description="Last measured usage.")
    policies: list[str] = Field(default_factory=list, description="CompliancePolicies in force, in order.")
    jobs: list[JobRun] = Field(default_factory=list, description="The last run of each of the tenant's jobs.")
    compliance: ComplianceSummary | None = Field(default=None, description="The last compliance report in brief.")
    audit: AuditSeal | None = Field(default=None, description="The operator's seal of the audit trail.")
    effective_policy: Requirements | None = Field(
        default=None, alias="effectivePolicy", description="The strictest combination of the bound policies."
    )


#: deletionPolicy Delete erases data only when this annotation names the tenant (MemoryTenant.deletes_data)
CONFIRM_DELETION_ANNOTATION = f"{GROUP}/confirm-deletion"


class MemoryTenant(CustomObject):
    """A MemoryTenant object as the reconcilers see it."""

    plural: ClassVar[str] = "memorytenants"
    kind: ClassVar[str] = "MemoryTenant"
    short_names: ClassVar[tuple[str, ...]] = ("mt",)
    namespaced: ClassVar[bool] = True
    description: ClassVar[str] = (
        "An isolated, encrypted memory namespace for one tenant's agents: ACL users, a key prefix, "
        "credentials and keyring Secrets."
    )
    status_model: ClassVar[type[StatusBase]] = MemoryTenantStatus
    root_rules: ClassVar[tuple[dict[str, str], ...]] = (
        {
            "rule": f"size(self.metadata.name) <= {MAX_TENANT_NAME}",
            # no fieldPath: the API server accepts only paths its schema declares, and metadata's are implicit
            "message": TENANT_NAME_TOO_LONG,
        },
    )
    printer_columns: ClassVar[tuple[dict[str, str], ...]] = (
        *READY_COLUMNS,
        {"name": "Store", "type": "string", "jsonPath": ".status.store"},
        {"name": "Isolation", "type": "string", "jsonPath": ".spec.isolation"},
        {"name": "Keys", "type": "integer", "jsonPath": ".status.usage.keys"},
        {"name": "Prefix", "type": "string", "jsonPath": ".status.keyPrefix", "priority": "1"},
        AGE_COLUMN,
    )

    spec: MemoryTenantSpec
    status: MemoryTenantStatus = Field(default_factory=MemoryTenantStatus)

    @property
    def namespace(self) -> str:
        assert self.metadata.namespace is not None, "MemoryTenant is namespaced"
        return self.metadata.namespace

    @property
    def deletes_data(self) -> bool:
        """deletionPolicy Delete, confirmed by the annotation naming this very tenant (a copied one does not)."""
        confirmed = self.metadata.annotations.get(CONFIRM_DELETION_ANNOTATION) == self.metadata.name
        return self.spec.deletion_policy == "Delete" and confirmed
