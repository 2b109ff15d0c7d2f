"""CompliancePolicy: framework presets (GDPR, HIPAA, SOX, PCI_DSS) plus explicit overrides (cluster-scoped)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from memory_operator.api.base import WireModel
from memory_operator.api.v1alpha1.common import (
    AGE_COLUMN,
    READY_COLUMNS,
    CustomObject,
    StatusBase,
    cel_rules,
    unique_items,
)

Framework = Literal["GDPR", "HIPAA", "SOX", "PCI_DSS"]
Detector = Literal["email", "phone", "ssn", "payment_card", "iban", "ip_address"]
MaskingMode = Literal["redact", "hash"]
DEFAULT_REPORT_SCHEDULE = "H H * * *"
MAX_DAYS = 36500


class Masking(WireModel):
    """Which detectors mask values before anything is stored, and how."""

    detectors: list[Detector] = Field(
        default_factory=list,
        description="email, phone, ssn, payment_card (Luhn-checked), iban, ip_address.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    mode: MaskingMode = Field(
        default="redact", description="redact: replace with a placeholder; hash: a keyed hash (linkable, not readable)."
    )

    @field_validator("detectors")
    @classmethod
    def _detectorsunique_items(cls, detectors: list[str]) -> list[str]:
        return unique_items(detectors)


class Overrides(WireModel):
    """Explicit values; each replaces what the frameworks would give for that requirement in this policy."""

    model_config = WireModel.model_config | {
        "json_schema_extra": cel_rules(
            {
                "rule": "!has(self.messageMinRetentionDays) || !has(self.messageRetentionDays) "
                "|| self.messageMinRetentionDays <= self.messageRetentionDays",
                "message": "must not exceed messageRetentionDays (a minimum above the maximum cannot hold)",
                "fieldPath": ".messageMinRetentionDays",
            }
        )
    }

    message_retention_days: int | None = Field(
        default=None,
        alias="messageRetentionDays",
        ge=1,
        le=MAX_DAYS,
        description="Maximum age of conversation content (storage limitation).",
    )
    message_min_retention_days: int | None = Field(
        default=None,
        alias="messageMinRetentionDays",
        ge=1,
        le=MAX_DAYS,
        description="Minimum time conversation content must be kept (when memory is a record). Must not exceed "
        "the maximum.",
    )
    audit_retention_days: int | None = Field(
        default=None,
        alias="auditRetentionDays",
        ge=1,
        le=MAX_DAYS,
        description="Minimum time audit records are kept; they are trimmed only once older.",
    )
    encryption_required: bool | None = Field(
        default=None, alias="encryptionRequired", description="Values must be encrypted at rest (forces it on)."
    )
    access_logging: bool | None = Field(
        default=None, alias="accessLogging", description="Reads are audited too, not only writes."
    )
    immutable_audit: bool | None = Field(
        default=None, alias="immutableAudit", description="The audit trail must be hash-chained and append-only."
    )
    masking: Masking | None = Field(default=None, description="Masking of personal data before storage.")
    deletion_on_request: bool | None = Field(
        default=None, alias="deletionOnRequest", description="Data subjects may have their data erased."
    )
    data_portability: bool | None = Field(
        default=None, alias="dataPortability", description="Data subjects may export their data."
    )
    consent_required: bool | None = Field(
        default=None, alias="consentRequired", description="Processing needs recorded consent."
    )
    erasure_deadline_days: int | None = Field(
        default=None,
        alias="erasureDeadlineDays",
        ge=1,
        le=365,
        description="Days within which an erasure request must be completed.",
    )
    report_schedule: str | None = Field(
        default=None,
        alias="reportSchedule",
        max_length=100,
        description="Cron schedule of the compliance report, in UTC (the CronJobs set timeZone: UTC). 'H' in a "
        "field is replaced by a value spread per tenant with a stable hash (e.g. 'H 6 * * 1': Mondays between "
        "06:00 and 06:59 UTC).",
    )


class Requirements(WireModel):
    """Resolved requirements: what a policy (or the combination bound to a tenant) demands, every field set."""

    frameworks: list[Framework] = Field(default_factory=list, description="The frameworks these come from.")
    message_retention_days: int | None = Field(
        default=None, alias="messageRetentionDays", description="Maximum age of conversation content; empty: none."
    )
    message_min_retention_days: int | None = Field(
        default=None, alias="messageMinRetentionDays", description="Minimum age before content may be removed."
    )
    audit_retention_days: int | None = Field(
        default=None, alias="auditRetentionDays", description="Minimum age before audit records may be trimmed."
    )
    encryption_required: bool = Field(default=False, alias="encryptionRequired", description="Encryption at rest.")
    access_logging: bool = Field(default=False, alias="accessLogging", description="Reads are audited.")
    immutable_audit: bool = Field(default=False, alias="immutableAudit", description="Hash-chained audit trail.")
    masking: Masking = Field(default_factory=Masking, description="Masking before storage.")
    deletion_on_request: bool = Field(default=False, alias="deletionOnRequest", description="Erasure on request.")
    data_portability: bool = Field(default=False, alias="dataPortability", description="Export on request.")
    consent_required: bool = Field(default=False, alias="consentRequired", description="Recorded consent.")
    erasure_deadline_days: int | None = Field(
        default=None, alias="erasureDeadlineDays", description="Days to complete an erasure request."
    )
    report_schedule: str = Field(
        default=DEFAULT_REPORT_SCHEDULE, alias="reportSchedule", description="Cron schedule of the report."
    )


class CompliancePolicySpec(WireModel):
    """Desired state of a CompliancePolicy."""

    frameworks: list[Framework] = Field(
        default_factory=list,
        description="Presets to combine (strictest wins): GDPR, HIPAA, SOX, PCI_DSS.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    overrides: Overrides = Field(default_factory=Overrides, description="Explicit values that replace presets.")

    @field_validator("frameworks")
    @classmethod
    def _frameworksunique_items(cls, frameworks: list[str]) -> list[str]:
        return unique_items(frameworks)


class CompliancePolicyStatus(StatusBase):
    """Observed state of a CompliancePolicy."""

    model_config = StatusBase.model_config | {"extra": "ignore"}

    requirements: Requirements | None = Field(default=None, description="What the policy resolves to.")
    bound_tenants: int | None = Field(
        default=None, alias="boundTenants", description="MemoryTenants whose spec.policyRefs name this policy."
    )


class CompliancePolicy(CustomObject):
    """A CompliancePolicy object as the reconcilers see it."""

    plural: ClassVar[str] = "compliancepolicies"
    kind: ClassVar[str] = "CompliancePolicy"
    short_names: ClassVar[tuple[str, ...]] = ("cpol",)
    namespaced: ClassVar[bool] = False
    description: ClassVar[str] = (
        "Compliance requirements (retention, encryption, audit, masking, subject rights, reporting) from framework "
        "presets and explicit overrides; MemoryTenants bind to policies with spec.policyRefs."
    )
    status_model: ClassVar[type[StatusBase]] = CompliancePolicyStatus
    printer_columns: ClassVar[tuple[dict[str, str], ...]] = (
        *READY_COLUMNS,
        {"name": "Frameworks", "type": "string", "jsonPath": ".spec.frameworks"},
        {"name": "Tenants", "type": "integer", "jsonPath": ".status.boundTenants"},
        AGE_COLUMN,
    )

    spec: CompliancePolicySpec
    status: CompliancePolicyStatus = Field(default_factory=CompliancePolicyStatus)
