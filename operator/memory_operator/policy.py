"""Compliance semantics, in one pure module: framework presets, one policy's requirements, and the strictest
combination bound to a tenant.

Two kinds of retention, deliberately not merged into one number (the seed took the max of all days, which keeps
chat content for seven years as soon as SOX is named, against GDPR's storage limitation):

- conversation content has a *maximum* (storage limitation: GDPR Art. 5(1)(e), PCI DSS 3.1) and, only if a
  policy says so explicitly, a *minimum* (when memory is treated as a record). Combining takes the smallest
  maximum and the largest minimum; a minimum above the maximum is a contradiction, never silently resolved;
- audit records have only a *minimum* (HIPAA, SOX and PCI DSS oblige keeping them; they hold who/what/when and
  counts, never content, and a legal obligation is a lawful basis to keep them under GDPR Art. 6(1)(c) and
  17(3)(b)). Combining takes the largest.

Within one policy, frameworks combine strictest-wins and `overrides` then replace individual values (an explicit
override is a deliberate decision, so it may also relax a preset). Across the policies bound to a tenant, and
the tenant's own `retentionDays`, every requirement combines strictest-wins: booleans that demand something
are OR-ed, masking detectors are united and `redact` beats `hash` (it keeps less), deadlines take the shortest.
The report schedule is not a matter of strictness: the first policy in `spec.policyRefs` that sets one wins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from croniter import CroniterBadDateError, croniter

from memory_operator.api.v1alpha1 import MemoryTenant
from memory_operator.api.v1alpha1.compliancepolicy import (
    DEFAULT_REPORT_SCHEDULE,
    CompliancePolicySpec,
    Detector,
    Framework,
    Masking,
    Requirements,
)

__all__ = [
    "PRESETS",
    "PolicyContradiction",
    "combine",
    "effective_for_tenant",
    "encryption_in_force",
    "requirements_for",
    "spread_schedule",
    "validate_schedule",
]


class PolicyContradiction(ValueError):
    """Requirements that cannot all hold (a minimum above a maximum, an unusable schedule)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


_STRICT_MASKING: tuple[Detector, ...] = ("payment_card",)
PRESETS: dict[Framework, Requirements] = {
    "GDPR": Requirements(
        message_retention_days=365,
        audit_retention_days=365,
        deletion_on_request=True,
        data_portability=True,
        consent_required=True,
        erasure_deadline_days=30,
    ),
    "HIPAA": Requirements(
        audit_retention_days=2555,
        encryption_required=True,
        access_logging=True,
        immutable_audit=True,  # HIPAA's integrity controls: tamper-evident records
    ),
    "SOX": Requirements(
        audit_retention_days=2555,
        access_logging=True,  # access controls are evidenced by logged access
        immutable_audit=True,  # and change tracking by an immutable trail
    ),
    "PCI_DSS": Requirements(
        message_retention_days=365,
        audit_retention_days=365,
        encryption_required=True,
        access_logging=True,
        masking=Masking(detectors=list(_STRICT_MASKING)),
    ),
}


def _smallest(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _largest(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _masking(items: Sequence[Masking]) -> Masking:
    detectors = sorted({d for m in items for d in m.detectors})
    used = [m for m in items if m.detectors]
    mode: Literal["redact", "hash"] = "hash" if used and all(m.mode == "hash" for m in used) else "redact"
    return Masking(detectors=detectors, mode=mode)


def combine(items: Sequence[Requirements], schedule: str | None = None) -> Requirements:
    """The strictest combination; `schedule` (or the default) is the report schedule of the result."""
    combined = Requirements(
        frameworks=sorted({f for r in items for f in r.frameworks}),
        message_retention_days=_smallest(r.message_retention_days for r in items),
        message_min_retention_days=_largest(r.message_min_retention_days for r in items),
        audit_retention_days=_largest(r.audit_retention_days for r in items),
        encryption_required=any(r.encryption_required for r in items),
        access_logging=any(r.access_logging for r in items),
        immutable_audit=any(r.immutable_audit for r in items),
        masking=_masking([r.masking for r in items]),
        deletion_on_request=any(r.deletion_on_request for r in items),
        data_portability=any(r.data_portability for r in items),
        consent_required=any(r.consent_required for r in items),
        erasure_deadline_days=_smallest(r.erasure_deadline_days for r in items),
        report_schedule=schedule or DEFAULT_REPORT_SCHEDULE,
    )
    check(combined)
    return combined


def check(requirements: Requirements, field_prefix: str = "") -> None:
    """Raise PolicyContradiction when the requirements cannot all hold."""
    low, high = requirements.message_min_retention_days, requirements.message_retention_days
    if low is not None and high is not None and low > high:
        raise PolicyContradiction(
            f"{field_prefix}messageMinRetentionDays",
            f"minimum {low} days exceeds the maximum messageRetentionDays {high}",
        )
    validate_schedule(requirements.report_schedule, f"{field_prefix}reportSchedule")


def requirements_for(spec: CompliancePolicySpec) -> Requirements:
    """One policy: its frameworks combined strictest-wins, then its overrides replacing single values."""
    base = combine([PRESETS[f] for f in spec.frameworks]) if spec.frameworks else Requirements()
    explicit: dict[str, Any] = {
        name: value for name, value in spec.overrides if value is not None and name in Requirements.model_fields
    }
    resolved = base.model_copy(update={**explicit, "frameworks": sorted(set(spec.frameworks))})
    check(resolved, "spec.overrides.")
    return resolved


def validate_schedule(schedule: str, field: str = "reportSchedule") -> None:
    """A five-field cron expression (or @daily etc.) as a CronJob accepts it, with 'H' allowed in any field, that
    fires at least once in any 5 years (`0 0 30 2 *` is well-formed and never runs: its report would never come)."""
    if not croniter.is_valid(schedule.replace("H", "0")) or len(schedule.split()) not in (1, 5):
        raise PolicyContradiction(field, f"{schedule!r} is not a cron schedule such as '0 6 * * 1' or 'H H * * *'")
    fields = schedule.split()
    if len(fields) == 5:  # each 'H' at the lowest value it can spread to
        fields = [f.replace("H", str(low)) for f, (low, _) in zip(fields, _H_RANGES, strict=True)]
    try:
        croniter(" ".join(fields), datetime(2000, 1, 1), max_years_between_matches=5).get_next(datetime)
    except (CroniterBadDateError, ValueError):
        raise PolicyContradiction(field, f"{schedule!r} never fires (no such date); pick a day that exists") from None


_H_RANGES = ((0, 60), (0, 24), (1, 28), (1, 12), (0, 7))  # minute, hour, day of month (<= 28), month, weekday


def spread_schedule(schedule: str, key: str) -> str:
    """Replace each 'H' with a value derived from `key` by a stable hash, so tenants don't all run at once."""
    fields = schedule.split()
    if len(fields) != 5:
        return schedule
    digest = hashlib.sha256(key.encode()).digest()
    spread = []
    for i, (field, (start, size)) in enumerate(zip(fields, _H_RANGES, strict=True)):
        value = start + int.from_bytes(digest[4 * i : 4 * i + 4], "big") % size
        spread.append(field.replace("H", str(value)))
    return " ".join(spread)


def effective_for_tenant(
    policies: Sequence[tuple[str, CompliancePolicySpec]], retention_days: int | None
) -> Requirements:
    """The tenant's effective policy: its policies (name, spec) in spec.policyRefs order, and its own
    retentionDays as one more maximum, combined strictest-wins. Raises PolicyContradiction naming the policies."""
    resolved = [requirements_for(spec) for _, spec in policies]
    schedule = next((s.overrides.report_schedule for _, s in policies if s.overrides.report_schedule), None)
    own = Requirements(message_retention_days=retention_days)
    try:
        return combine([*resolved, own], schedule)
    except PolicyContradiction as exc:
        names = ", ".join(name for name, _ in policies) or "(none)"
        raise PolicyContradiction("spec.policyRefs", f"{exc} (combining spec.retentionDays and {names})") from None


def encryption_in_force(tenant: MemoryTenant, policy: Requirements) -> bool:
    """Encryption is on when the tenant asks for it, its isolation is strict, or a bound policy requires it."""
    return tenant.spec.encryption_enabled or policy.encryption_required
