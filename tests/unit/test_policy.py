"""Compliance semantics: presets, one policy's requirements, the strictest combination, cron spreading."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_operator.api.v1alpha1 import CompliancePolicySpec, Requirements
from memory_operator.api.v1alpha1.compliancepolicy import Masking
from memory_operator.policy import PRESETS, PolicyContradiction, combine, requirements_for, spread_schedule


def resolve(**spec: Any) -> Requirements:
    return requirements_for(CompliancePolicySpec.model_validate(spec))


def test_gdpr_limits_content_and_grants_subject_rights() -> None:
    gdpr = resolve(frameworks=["GDPR"])
    assert gdpr.message_retention_days == 365
    assert gdpr.deletion_on_request and gdpr.data_portability and gdpr.consent_required
    assert gdpr.erasure_deadline_days == 30


def test_sox_keeps_audit_seven_years_without_keeping_chat_content_that_long() -> None:
    both = resolve(frameworks=["GDPR", "SOX"])
    assert both.audit_retention_days == 2555  # the largest minimum
    assert both.message_retention_days == 365  # the seed's max-of-all-days would have said 2555
    assert both.immutable_audit


def test_hipaa_and_pci_require_encryption_and_pci_masks_cards() -> None:
    assert resolve(frameworks=["HIPAA"]).encryption_required
    pci = resolve(frameworks=["PCI_DSS"])
    assert pci.encryption_required
    assert pci.masking.detectors == ["payment_card"]


def test_override_replaces_the_preset_value_in_its_policy() -> None:
    assert resolve(frameworks=["GDPR"], overrides={"messageRetentionDays": 30}).message_retention_days == 30
    assert resolve(frameworks=["GDPR"], overrides={"messageRetentionDays": 730}).message_retention_days == 730


def test_minimum_above_maximum_is_a_contradiction_naming_the_field() -> None:
    with pytest.raises(PolicyContradiction) as caught:
        resolve(frameworks=["GDPR"], overrides={"messageMinRetentionDays": 400})
    assert str(caught.value).startswith("spec.overrides.messageMinRetentionDays: minimum 400 days exceeds")


@pytest.mark.parametrize("schedule", ["every day", "61 * * * *", "* * * *", "0 6 * * 8"])
def test_unknown_cron_is_a_contradiction(schedule: str) -> None:
    with pytest.raises(PolicyContradiction, match=r"spec\.overrides\.reportSchedule"):
        resolve(overrides={"reportSchedule": schedule})


@pytest.mark.parametrize("schedule", ["0 6 * * 1", "H H * * *", "H/15 * * * *", "@daily"])
def test_cron_forms_a_cronjob_accepts_are_valid(schedule: str) -> None:
    assert resolve(overrides={"reportSchedule": schedule}).report_schedule == schedule


def test_spread_is_stable_per_key_and_differs_between_keys() -> None:
    one = spread_schedule("H H * * *", "team-a/support")
    assert one == spread_schedule("H H * * *", "team-a/support")
    minute, hour = (int(x) for x in one.split()[:2])
    assert 0 <= minute < 60 and 0 <= hour < 24
    spread = {spread_schedule("H H * * *", f"ns/tenant-{i}") for i in range(50)}
    assert len(spread) > 40
    assert spread_schedule("0 6 * * 1", "any") == "0 6 * * 1"


def test_redact_beats_hash_and_detectors_unite() -> None:
    masked = combine(
        [
            Requirements(masking=Masking(detectors=["email"], mode="hash")),
            Requirements(masking=Masking(detectors=["payment_card"], mode="redact")),
        ]
    )
    assert masked.masking == Masking(detectors=["email", "payment_card"], mode="redact")


days = st.one_of(st.none(), st.integers(1, 3000))
detectors = st.lists(st.sampled_from(["email", "phone", "ssn", "payment_card", "iban", "ip_address"]), unique=True)
requirements = st.builds(
    Requirements,
    message_retention_days=days,
    audit_retention_days=days,
    encryption_required=st.booleans(),
    access_logging=st.booleans(),
    immutable_audit=st.booleans(),
    masking=st.builds(Masking, detectors=detectors, mode=st.sampled_from(["redact", "hash"])),
    deletion_on_request=st.booleans(),
    data_portability=st.booleans(),
    consent_required=st.booleans(),
    erasure_deadline_days=days,
) | st.sampled_from(list(PRESETS.values()))


def at_most(limit: int | None, than: int | None) -> bool:
    """`limit` is as strict a maximum as `than` (None means no maximum)."""
    return than is None or (limit is not None and limit <= than)


@given(st.lists(requirements, min_size=1, max_size=5))
def test_combination_is_at_least_as_strict_as_every_input(inputs: list[Requirements]) -> None:
    result = combine(inputs)
    for one in inputs:
        assert at_most(result.message_retention_days, one.message_retention_days)
        assert at_most(result.erasure_deadline_days, one.erasure_deadline_days)
        assert (result.audit_retention_days or 0) >= (one.audit_retention_days or 0)
        for flag in ("encryption_required", "access_logging", "immutable_audit", "deletion_on_request",
                     "data_portability", "consent_required"):  # fmt: skip
            assert getattr(result, flag) >= getattr(one, flag)
        assert set(result.masking.detectors) >= set(one.masking.detectors)
        if one.masking.detectors and one.masking.mode == "redact":
            assert result.masking.mode == "redact"
