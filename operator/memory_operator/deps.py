"""Dependencies built once at start-up and handed to every reconcile (kopf's `memo`), never module globals."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from memory_operator.clients.kube import KubeClient
from memory_operator.clients.stores import StoreConnections

__all__ = ["DEFAULT_JOB_IMAGE", "Deps", "utcnow"]

DEFAULT_JOB_IMAGE = "ghcr.io/agent-memory/agent-memory-operator:0.1.0"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Deps:
    kube: KubeClient
    stores: StoreConnections
    clock: Callable[[], datetime] = field(default=utcnow)
    #: keys whose MEMORY USAGE is measured per tenant; beyond it the byte count is extrapolated
    usage_sample: int = 200
    #: the image tenant CronJobs run (`memory-jobs`): the operator's own, set by the Deployment
    job_image: str = field(default_factory=lambda: os.environ.get("AGENTMEMORY_JOB_IMAGE", DEFAULT_JOB_IMAGE))
