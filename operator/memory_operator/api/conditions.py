"""Kubernetes-style conditions (metav1.Condition): status moves, and lastTransitionTime with it, only when it must."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from memory_operator.api.base import WireModel

__all__ = ["Condition", "ConditionStatus", "find_condition", "set_condition"]

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(WireModel):
    """One aspect of an object's current state, as Kubernetes API conventions define it."""

    type: str = Field(description="CamelCase type of the condition, e.g. Ready.", pattern=r"^[A-Z][A-Za-z0-9]*$")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        description="CamelCase, machine-readable reason for the last transition.",
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    )
    message: str = Field(default="", description="Human-readable detail; names the offending field on errors.")
    observed_generation: int | None = Field(
        default=None, alias="observedGeneration", description="The .metadata.generation this was set for."
    )
    last_transition_time: datetime = Field(
        alias="lastTransitionTime", description="When status last changed (not reason or message)."
    )


def find_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(conditions: list[Condition], new: Condition) -> list[Condition]:
    """Replace the condition of `new.type`, keeping lastTransitionTime when the status did not flip."""
    old = find_condition(conditions, new.type)
    if old is not None and old.status == new.status:
        new = new.model_copy(update={"last_transition_time": old.last_transition_time})
    return [c for c in conditions if c.type != new.type] + [new]
