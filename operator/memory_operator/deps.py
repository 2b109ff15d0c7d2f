"""Dependencies built once at start-up and handed to every reconcile (kopf's `memo`), never module globals."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from memory_operator.clients.kube import KubeClient
from memory_operator.connections import StoreConnections
from memory_operator.surveys import Surveys

__all__ = [
    "ADMIN_NAMESPACES_ENV",
    "DEFAULT_JOB_IMAGE",
    "DEFAULT_OPERATOR_NAMESPACE",
    "NAMESPACE_ENV",
    "RETRY_SCALE_ENV",
    "WATCH_SECRETS_ENV",
    "Deletions",
    "Deps",
    "operator_namespace",
    "retry_scale",
    "utcnow",
]

DEFAULT_JOB_IMAGE = "ghcr.io/agent-memory/agent-memory-operator:0.1.0"
DEFAULT_OPERATOR_NAMESPACE = "memory-system"
#: the operator's own namespace (the Deployment sets it from the downward API)
NAMESPACE_ENV = "AGENTMEMORY_NAMESPACE"
#: more namespaces MemoryStore admin Secrets may be read from, comma-separated (also --admin-secret-namespace)
ADMIN_NAMESPACES_ENV = "AGENTMEMORY_ADMIN_SECRET_NAMESPACES"
#: "false": no watch on Secrets is registered (`--no-watch-secrets`); the operator then needs no list/watch on them
WATCH_SECRETS_ENV = "AGENTMEMORY_WATCH_SECRETS"
#: a factor on every retry delay (default 1; the e2e tests run them in a tenth of the time)
RETRY_SCALE_ENV = "AGENTMEMORY_RETRY_SCALE"
_SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def operator_namespace() -> str:
    """$AGENTMEMORY_NAMESPACE, else the Pod's own namespace (in-cluster), else memory-system."""
    configured = os.environ.get(NAMESPACE_ENV, "").strip()
    if configured:
        return configured
    try:
        return _SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or DEFAULT_OPERATOR_NAMESPACE
    except OSError:
        return DEFAULT_OPERATOR_NAMESPACE


def retry_scale() -> float:
    """$AGENTMEMORY_RETRY_SCALE as a positive number (default 1); anything else stops the start-up, naming it."""
    raw = os.environ.get(RETRY_SCALE_ENV, "").strip() or "1"
    try:
        scale = float(raw)
    except ValueError:
        scale = 0.0
    if not 0 < scale < float("inf"):
        raise ValueError(f"${RETRY_SCALE_ENV} must be a positive number, not {raw!r}")
    return scale


class Deletions:
    """In-process bookkeeping that keeps a tenant's reconcile and its deletion apart (thread-safe).

    The deletion handler marks the object first, so a reconcile already running (a timer pass blocked on a hung
    store) stops at its next write instead of re-applying children after deletion began; then it takes the
    object's lock, so the finalizer never runs alongside a reconcile; and it records when the work is done, so
    a second delivery of the same deletion does nothing twice.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._deleting: set[str] = set()
        self._done: set[str] = set()

    def _lock(self, uid: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(uid, threading.Lock())

    def begin(self, uid: str) -> None:
        with self._guard:
            self._deleting.add(uid)

    def deleting(self, uid: str) -> bool:
        with self._guard:
            return uid in self._deleting

    def finished(self, uid: str) -> bool:
        with self._guard:
            return uid in self._done

    def finish(self, uid: str) -> None:
        with self._guard:
            self._done.add(uid)
            self._locks.pop(uid, None)

    @contextmanager
    def exclusive(self, uid: str, timeout: float) -> Iterator[bool]:
        """Hold the object's lock (True), or give up after `timeout` seconds (False) without it."""
        lock = self._lock(uid)
        acquired = lock.acquire(timeout=timeout) if timeout > 0 else lock.acquire()
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()


@dataclass
class Deps:
    kube: KubeClient
    stores: StoreConnections
    clock: Callable[[], datetime] = field(default=utcnow)
    #: keys whose MEMORY USAGE is measured per tenant; beyond it the byte count is extrapolated
    usage_sample: int = 200
    #: the image tenant CronJobs run (`memory-jobs`): the operator's own, set by the Deployment
    job_image: str = field(default_factory=lambda: os.environ.get("AGENTMEMORY_JOB_IMAGE", DEFAULT_JOB_IMAGE))
    deletions: Deletions = field(default_factory=Deletions)
    #: what each store's hourly survey covers (noted by tenant passes, walked by the store's pass)
    surveys: Surveys = field(default_factory=Surveys)
    #: the operator's own namespace: where the audit seal key Secret lives
    namespace: str = field(default_factory=operator_namespace)
    #: a factor on every retry delay (handlers.sync.retry_delay), from $AGENTMEMORY_RETRY_SCALE
    retry_scale: float = field(default_factory=retry_scale)
    #: the HMAC key of audit seals, once read (memory_operator.reconcilers.audit.seal_key)
    seal_key: bytes | None = field(default=None, repr=False)
