"""Dependencies built once at start-up and handed to every reconcile (kopf's `memo`), never module globals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from memory_operator.clients.kube import KubeClient
from memory_operator.clients.stores import StoreConnections

__all__ = ["Deps", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Deps:
    kube: KubeClient
    stores: StoreConnections
    clock: Callable[[], datetime] = field(default=utcnow)
    #: keys whose MEMORY USAGE is measured per tenant; beyond it the byte count is extrapolated
    usage_sample: int = 200
