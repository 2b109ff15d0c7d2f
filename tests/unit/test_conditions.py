"""Conditions move lastTransitionTime only when their status flips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from memory_operator.api.conditions import Condition, find_condition, set_condition

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def cond(status: str, reason: str, at: datetime, type_: str = "Ready") -> Condition:
    return Condition.model_validate(
        {"type": type_, "status": status, "reason": reason, "message": "m", "lastTransitionTime": at}
    )


def test_first_condition_is_added() -> None:
    assert set_condition([], cond("True", "Provisioned", T0)) == [cond("True", "Provisioned", T0)]


def test_same_status_keeps_transition_time_but_takes_new_reason() -> None:
    updated = set_condition([cond("False", "StoreNotFound", T0)], cond("False", "StoreUnavailable", T1))
    assert updated[0].last_transition_time == T0
    assert updated[0].reason == "StoreUnavailable"


def test_flipped_status_moves_transition_time() -> None:
    updated = set_condition([cond("False", "StoreNotFound", T0)], cond("True", "Provisioned", T1))
    assert updated[0].last_transition_time == T1


def test_other_condition_types_are_untouched() -> None:
    other = cond("True", "Provisioned", T0, type_="Provisioned")
    updated = set_condition([other, cond("True", "Provisioned", T0)], cond("False", "QuotaExceeded", T1))
    assert find_condition(updated, "Provisioned") == other
    assert len(updated) == 2


def test_condition_wire_shape_follows_api_conventions() -> None:
    wire = cond("True", "Provisioned", T0).model_copy(update={"observed_generation": 4}).to_wire()
    assert set(wire) == {"type", "status", "reason", "message", "observedGeneration", "lastTransitionTime"}
    assert wire["lastTransitionTime"] == "2026-01-01T00:00:00Z"
