"""What the per-kind reconcilers share: their result type, Events, and the mapping of store faults."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Literal, TypeVar

from memory_operator.api.conditions import Condition, ConditionStatus, set_condition
from memory_operator.api.v1alpha1.common import StatusBase
from memory_operator.clients import redis_admin
from memory_operator.errors import StoreUnavailable, UnsupportedServer

__all__ = ["Event", "Outcome", "condition", "store_errors", "with_conditions"]

S = TypeVar("S", bound=StatusBase)


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the reconciled object."""

    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"


@dataclass
class Outcome(Generic[S]):
    """A reconcile's result: the full new status and the Events worth telling a human about."""

    status: S
    events: list[Event] = field(default_factory=list)


def condition(
    type_: str, status: ConditionStatus, reason: str, message: str, generation: int, now: datetime
) -> Condition:
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        observed_generation=generation,
        last_transition_time=now,
    )


def with_conditions(status: S, generation: int, *conditions: Condition) -> S:
    """`status` with `conditions` set (transition times kept where status did not flip) and generation observed."""
    merged = list(status.conditions)
    for new in conditions:
        merged = set_condition(merged, new)
    return status.model_copy(update={"conditions": merged, "observed_generation": generation})


@contextmanager
def store_errors(store_name: str) -> Iterator[None]:
    """Turn the admin client's faults into StoreUnavailable, naming the store (messages carry no secrets)."""
    try:
        yield
    except redis_admin.StoreUnsupported as exc:
        raise UnsupportedServer(f"MemoryStore {store_name}: {exc}") from None
    except redis_admin.StoreError as exc:
        raise StoreUnavailable(f"MemoryStore {store_name}: {exc}") from None
