"""Leader election on a coordination.k8s.io Lease: one replica reconciles, the others wait to take over.

The protocol is client-go's (and controller-runtime's). The holder renews the Lease every `retry` seconds. A
candidate takes it over once the record it saw has stayed the same for the Lease's duration, measured on the
candidate's own monotonic clock: nobody compares another node's timestamps with their own, so clock skew between
nodes does not matter. Every write carries the resourceVersion it read, so two candidates cannot both win. A
holder that has not renewed for `deadline` seconds (less than the duration) is told it lost (`hold` calls `lost`)
before any candidate may take over, and it must stop at once. A holder that shuts down releases the Lease, so a
standby takes over within `retry` seconds instead of waiting out the duration.

The kubernetes client ships a LeaderElection class of its own. It is not used here because it measures time with
the wall clock, sets no request timeout (a hung renewal can outlive the lease it renews), and cannot release the
Lease when the holder stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

__all__ = ["LeaderElector", "LeaseTiming"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseTiming:
    """Seconds: how long a Lease lasts unrenewed, how long the holder keeps trying to renew it, how often it tries.

    The defaults are controller-runtime's: a standby takes over 15-17 s after the holder dies, or within 2 s
    after it stops cleanly.
    """

    duration: float = 15.0
    deadline: float = 10.0
    retry: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry < self.deadline < self.duration:
            raise ValueError(
                f"leader election needs 0 < retry ({self.retry:g}s) < renew deadline ({self.deadline:g}s) "
                f"< lease duration ({self.duration:g}s)"
            )


def _now() -> datetime:
    return datetime.now(UTC)


class LeaderElector:
    """One candidate for the Lease `namespace/name`, known to the others as `identity`."""

    def __init__(
        self,
        api: k8s.CoordinationV1Api,
        namespace: str,
        name: str,
        identity: str,
        timing: LeaseTiming | None = None,
        *,
        labels: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._leases = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing or LeaseTiming()
        self._labels = labels or {}
        self._clock = clock
        self._observed: tuple[Any, ...] | None = None  # the last Lease record seen (holder, renewTime, version)
        self._observed_at = 0.0  # when it was first seen, on our clock
        self.renewed_at: float | None = None  # when we last acquired or renewed it, on our clock
        self.holder: str | None = None  # who held it when we last looked

    # One attempt --------------------------------------------------------------------------------------------

    def try_acquire_or_renew(self, timeout: float | None = None) -> bool:
        """Read the Lease and, if it is free, expired or ours, write ourselves in as its holder. True on success;
        False when someone else holds it or any request failed (the caller tries again later)."""
        timeout = timeout if timeout is not None else self.timing.deadline / 2
        started = self._clock()
        try:
            lease = self._leases.read_namespaced_lease(self.name, self.namespace, _request_timeout=timeout)
        except ApiException as exc:
            if exc.status != 404:
                logger.warning("Reading Lease %s/%s failed: HTTP %s", self.namespace, self.name, exc.status)
                return False
            return self._create(started, timeout)
        except (HTTPError, OSError) as exc:
            logger.warning("Reading Lease %s/%s failed: %s", self.namespace, self.name, type(exc).__name__)
            return False
        spec = lease.spec or k8s.V1LeaseSpec()
        version = lease.metadata.resource_version if lease.metadata else None
        record = (spec.holder_identity, spec.renew_time, spec.lease_duration_seconds, version)
        if record != self._observed:
            self._observed, self._observed_at = record, started
        self.holder = spec.holder_identity or None
        ours = spec.holder_identity == self.identity
        if spec.holder_identity and not ours:
            lasts = spec.lease_duration_seconds or self.timing.duration
            if started - self._observed_at < lasts:
                return False  # held, and renewed within its duration as far as we can tell
            logger.info("Lease %s/%s: holder %s stopped renewing it", self.namespace, self.name, spec.holder_identity)
        now = _now()
        lease.spec = k8s.V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=round(self.timing.duration),
            acquire_time=spec.acquire_time if ours and spec.acquire_time else now,
            renew_time=now,
            lease_transitions=(spec.lease_transitions or 0) + (0 if ours else 1),
        )

        # 409: someone wrote it since we read it (a renewal, or a rival's take-over)
        def replace() -> object:
            return self._leases.replace_namespaced_lease(self.name, self.namespace, lease, _request_timeout=timeout)

        return self._write("Writing", started, replace)

    def _create(self, started: float, timeout: float) -> bool:
        now = _now()
        body = k8s.V1Lease(
            metadata=k8s.V1ObjectMeta(name=self.name, namespace=self.namespace, labels=self._labels or None),
            spec=k8s.V1LeaseSpec(
                holder_identity=self.identity,
                lease_duration_seconds=round(self.timing.duration),
                acquire_time=now,
                renew_time=now,
                lease_transitions=0,
            ),
        )
        # 409: a rival created it first
        create = self._leases.create_namespaced_lease
        return self._write("Creating", started, lambda: create(self.namespace, body, _request_timeout=timeout))

    def _write(self, what: str, started: float, call: Callable[[], object]) -> bool:
        """Run one Lease write; True (and we hold it) when it went through, False on a conflict or a failure."""
        try:
            call()
        except ApiException as exc:
            logger.debug("%s Lease %s/%s failed: HTTP %s", what, self.namespace, self.name, exc.status)
            return False
        except (HTTPError, OSError) as exc:
            logger.warning("%s Lease %s/%s failed: %s", what, self.namespace, self.name, type(exc).__name__)
            return False
        return self._won(started)

    def _won(self, started: float) -> bool:
        # Counted from before the request: the others saw our write at some point after that.
        self.renewed_at = started
        self.holder = self.identity
        return True

    # The loops ----------------------------------------------------------------------------------------------

    def acquire(self, stop: threading.Event) -> bool:
        """Try every `retry` seconds until we hold the Lease (True) or `stop` is set (False)."""
        waiting_on: str | None = None
        while not stop.is_set():
            if self.try_acquire_or_renew():
                return True
            if self.holder != waiting_on:
                waiting_on = self.holder
                logger.info("Standing by: Lease %s/%s is held by %s", self.namespace, self.name, self.holder)
            stop.wait(self.timing.retry)
        return False

    def hold(self, stop: threading.Event, lost: Callable[[], None]) -> None:
        """Renew every `retry` seconds until `stop` is set. If no renewal succeeds for `deadline` seconds, call
        `lost` (at most once) and return: by then no request of ours is still in flight, and no candidate can have
        taken over yet (that takes the duration)."""
        while not stop.wait(self.timing.retry):
            while True:
                left = (self.renewed_at or 0.0) + self.timing.deadline - self._clock()
                if left <= 0:
                    logger.error(
                        "Lost Lease %s/%s: not renewed in %gs", self.namespace, self.name, self.timing.deadline
                    )
                    lost()
                    return
                if self.try_acquire_or_renew(timeout=min(self.timing.deadline / 2, left)):
                    break
                if self.holder not in (None, self.identity):  # someone else holds it now: we lost it outright
                    logger.error("Lost Lease %s/%s to %s", self.namespace, self.name, self.holder)
                    lost()
                    return
                if stop.wait(min(self.timing.retry, max(left, 0.0))):
                    return

    def release(self) -> bool:
        """Give the Lease up if we hold it (a standby then takes it at its next try). True if released."""
        if self.renewed_at is None:
            return False
        timeout = self.timing.retry
        try:
            lease = self._leases.read_namespaced_lease(self.name, self.namespace, _request_timeout=timeout)
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return False
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time = _now()
            self._leases.replace_namespaced_lease(self.name, self.namespace, lease, _request_timeout=timeout)
        except (ApiException, HTTPError, OSError) as exc:
            logger.warning("Releasing Lease %s/%s failed (%s): a standby takes over when it expires",
                           self.namespace, self.name, getattr(exc, "status", None) or type(exc).__name__)  # fmt: skip
            return False
        self.renewed_at = None
        logger.info("Released Lease %s/%s", self.namespace, self.name)
        return True
