"""Prometheus metrics: what each reconcile did and what the status it wrote says, on an optional HTTP endpoint.

Everything is derived from the status a reconcile produced (never from extra API or Redis calls), so a scrape
costs nothing and the figures agree with `kubectl get`. Labels carry kinds, namespaces, names, results and
condition reasons only: never a value from a Secret. One `Metrics` is built at start-up and shared through
kopf's `memo`; it owns its registry, so tests and a second instance never collide with global state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from memory_operator.api import crdgen
from memory_operator.api.quantity import parse_bytes

__all__ = ["DURATION_BUCKETS", "KINDS", "Metrics", "MetricsServer", "parse_address"]

#: Kinds always present in `agentmemory_objects` (zero until seen), so dashboards need no `or vector(0)`.
KINDS = tuple(model.kind for model in crdgen.KINDS)
READY_VALUES = ("True", "False", "Unknown")
#: A reconcile is a few API calls and a few Redis round trips; the tail is a slow store or API server.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _version() -> str:
    try:
        return metadata.version("agent-memory-operator")
    except metadata.PackageNotFoundError:
        return "unknown"


def parse_address(address: str) -> tuple[str, int]:
    """`host:port`, `:port` (all interfaces) or `port` -> (host, port); `[::1]:9090` for IPv6."""
    host, sep, port = address.rpartition(":")
    if not sep:
        host, port = "", address
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - in a Pod the endpoint must be reachable by Prometheus
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"not a metrics address (host:port, :port or port): {address!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port out of range in metrics address {address!r}")
    return host, number


@dataclass
class MetricsServer:
    """The HTTP endpoint serving `/metrics` (any path, in fact) from a daemon thread."""

    host: str
    port: int
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _ReadyCollector(Collector):
    """`agentmemory_objects{kind, ready}`: counted at scrape time from the last Ready seen per object."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "agentmemory_objects",
            "Objects of each kind by the status of their Ready condition, as of their last reconcile.",
            labels=["kind", "ready"],
        )
        counts = self._metrics.ready_counts()
        for (kind, ready), count in sorted(counts.items()):
            family.add_metric([kind, ready], count)
        yield family


#: The per-tenant gauges: attribute -> (name, help, labels after namespace and name).
_TENANT_GAUGES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "usage_bytes": (
        "agentmemory_tenant_usage_bytes",
        "Estimated bytes used by the tenant's keys (status.usage.memoryBytes).",
        (),
    ),
    "usage_keys": (
        "agentmemory_tenant_usage_keys",
        "Number of keys under the tenant's prefix (status.usage.keys).",
        (),
    ),
    "quota_ratio": (
        "agentmemory_tenant_quota_ratio",
        "Usage divided by spec.quota, per resource (memory, keys); above 1 means QuotaExceeded.",
        ("resource",),
    ),
    "job_last_success": (
        "agentmemory_tenant_job_last_success",
        "1 if the tenant's last finished run of this job (retention, report) succeeded, 0 if it failed.",
        ("job",),
    ),
    "job_last_completion": (
        "agentmemory_tenant_job_last_completion_timestamp_seconds",
        "When the tenant's last run of this job finished, as a Unix time.",
        ("job",),
    ),
    "compliant": (
        "agentmemory_tenant_compliant",
        "1 if the tenant's Compliant condition is True, 0 if False (AuditTrailTampered or Violations); no "
        "series while Unknown.",
        ("reason",),
    ),
    "audit_breach": (
        "agentmemory_tenant_audit_breach",
        "1 if the operator found the tenant's audit trail tampered with (status.audit.breach), else 0.",
        (),
    ),
}
#: one tenant's series: (gauge attribute, its labels after namespace and name) -> value
_Series = dict[tuple[str, tuple[str, ...]], float]


class _TenantCollector(Collector):
    """The per-tenant gauges, from one small dict per tenant: a prometheus_client child per series took about
    2.6 KiB a tenant, and finding a tenant's series meant collecting every tenant's (BENCHMARKS.md)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        for name, documentation, labels in _TENANT_GAUGES.values():
            yield GaugeMetricFamily(name, documentation, labels=["namespace", "name", *labels])

    def collect(self) -> Iterator[Metric]:
        with self._metrics._lock:
            tenants = [(tenant, dict(series)) for tenant, series in self._metrics._tenants.items()]
        families = {
            attribute: GaugeMetricFamily(name, documentation, labels=["namespace", "name", *labels])
            for attribute, (name, documentation, labels) in _TENANT_GAUGES.items()
        }
        for (namespace, name), series in tenants:
            for (attribute, labels), value in series.items():
                families[attribute].add_metric([namespace, name, *labels], value)
        yield from families.values()


class Metrics:
    """The operator's metrics. Thread-safe: kopf runs sync handlers in a thread pool."""

    def __init__(self, registry: CollectorRegistry | None = None, *, process: bool = True) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        if process:  # process_* (CPU, memory, fds) and python_info, as the default registry would have them
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        self._lock = threading.Lock()
        self._ready: dict[tuple[str, str, str], str] = {}

        Gauge(
            "agentmemory_build_info", "The operator's version (always 1).", ["version"], registry=self.registry
        ).labels(_version()).set(1)
        self.leader = Gauge(
            "agentmemory_leader",
            "1 while this replica holds the leader Lease and reconciles, 0 while it stands by (with "
            "--leader-elect; without it, always 1).",
            registry=self.registry,
        )
        self.leader.set(1)
        self.reconciliations = Counter(
            "agentmemory_reconciliations",
            "Reconciles run, by kind and result (success, or error with the reason in "
            "agentmemory_reconcile_errors_total).",
            ["kind", "result"],
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "agentmemory_reconcile_errors",
            "Failed reconciles by kind and condition reason (InvalidSpec, StoreUnavailable, ...).",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "agentmemory_reconcile_duration_seconds",
            "Time one reconcile took (API calls and store round trips included), by kind.",
            ["kind"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        #: the per-tenant gauges' values, (namespace, name) -> series (`_TenantCollector`)
        self._tenants: dict[tuple[str, str], _Series] = {}
        self.registry.register(_TenantCollector(self))
        self.registry.register(_ReadyCollector(self))

    # Recording ------------------------------------------------------------------------------------------

    @contextmanager
    def timed(self, kind: str) -> Iterator[None]:
        """Observe the duration of the block, whether it raises or not."""
        start = time.monotonic()
        try:
            yield
        finally:
            self.duration.labels(kind).observe(time.monotonic() - start)

    def observe(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        status: Mapping[str, Any],
        spec: Mapping[str, Any] | None,
        error_reason: str | None = None,
    ) -> None:
        """Record one reconcile from the status it wrote; `error_reason` is None when it succeeded."""
        if error_reason is None:
            self.reconciliations.labels(kind, "success").inc()
        else:
            self.reconciliations.labels(kind, "error").inc()
            self.reconcile_errors.labels(kind, error_reason).inc()
        ready = next(
            (str(c.get("status")) for c in status.get("conditions") or () if c.get("type") == "Ready"), "Unknown"
        )
        with self._lock:
            self._ready[(kind, namespace or "", name)] = ready if ready in READY_VALUES else "Unknown"
        if kind == "MemoryTenant" and namespace is not None:
            self._observe_usage(namespace, name, status.get("usage"), (spec or {}).get("quota"))
            self._observe_jobs(namespace, name, status.get("jobs"))
            self._observe_compliance(namespace, name, status)

    def _observe_compliance(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """From the Compliant condition and status.audit (a pass that failed early leaves the last figures)."""
        compliant = next((c for c in status.get("conditions") or () if c.get("type") == "Compliant"), None)
        audit = status.get("audit")
        with self._lock:
            series = self._tenants.setdefault((namespace, name), {})
            if compliant is not None:
                for key in [key for key in series if key[0] == "compliant"]:
                    del series[key]
                if compliant.get("status") in ("True", "False"):
                    value = 1 if compliant["status"] == "True" else 0
                    series["compliant", (str(compliant.get("reason")),)] = value
            if isinstance(audit, Mapping):
                series["audit_breach", ()] = 1 if audit.get("breach") else 0
            self._prune(namespace, name)

    def _observe_jobs(self, namespace: str, name: str, jobs: Any) -> None:
        """From status.jobs: each job's last finished run (a run still going leaves the previous figures)."""
        for run in jobs if isinstance(jobs, list) else ():
            finished = run.get("finishedAt") if isinstance(run, Mapping) else None
            if not finished or run.get("status") not in ("succeeded", "failed"):
                continue
            try:
                at = datetime.fromisoformat(str(finished).replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
            self.observe_job(
                namespace, name, str(run.get("job")), succeeded=run["status"] == "succeeded", finished_at=at
            )

    def _observe_usage(self, namespace: str, name: str, usage: Any, quota: Any) -> None:
        if not isinstance(usage, Mapping):
            self._drop_tenant(namespace, name)  # not measured (yet): no series rather than a misleading 0
            return
        keys, used_bytes = int(usage.get("keys") or 0), int(usage.get("memoryBytes") or 0)
        with self._lock:
            series = self._tenants.setdefault((namespace, name), {})
            series["usage_keys", ()] = keys
            series["usage_bytes", ()] = used_bytes
            quota = quota if isinstance(quota, Mapping) else {}
            for resource, used, limit in (
                ("memory", used_bytes, _bytes_or_none(quota.get("memory"))),
                ("keys", keys, quota.get("keys")),
            ):
                if isinstance(limit, int) and limit > 0:
                    series["quota_ratio", (resource,)] = used / limit
                else:
                    series.pop(("quota_ratio", (resource,)), None)

    def observe_job(self, namespace: str, name: str, job: str, *, succeeded: bool, finished_at: float) -> None:
        """A tenant's job run finished."""
        with self._lock:
            series = self._tenants.setdefault((namespace, name), {})
            series["job_last_success", (job,)] = 1 if succeeded else 0
            series["job_last_completion", (job,)] = finished_at

    def forget(self, kind: str, namespace: str | None, name: str) -> None:
        """The object is gone: drop its series so dashboards do not show ghosts."""
        with self._lock:
            self._ready.pop((kind, namespace or "", name), None)
        if kind == "MemoryTenant" and namespace is not None:
            self._drop_tenant(namespace, name)

    def _drop_tenant(self, namespace: str, name: str) -> None:
        with self._lock:
            self._tenants.pop((namespace, name), None)

    def _prune(self, namespace: str, name: str) -> None:
        """Drop a tenant's empty series dict (under the lock): a tenant without series takes nothing."""
        if not self._tenants.get((namespace, name), True):
            del self._tenants[(namespace, name)]

    def ready_counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            seen = list(self._ready.items())
        counts = {(kind, ready): 0 for kind in {*KINDS, *(k for (k, _, _), _ in seen)} for ready in READY_VALUES}
        for (kind, _, _), ready in seen:
            counts[(kind, ready)] += 1
        return counts

    # Serving --------------------------------------------------------------------------------------------

    def serve(self, address: str) -> MetricsServer:
        """Serve the registry over HTTP at `address` (see `parse_address`); port 0 picks a free one."""
        host, port = parse_address(address)
        server, thread = start_http_server(port, host, registry=self.registry)
        return MetricsServer(host, int(server.server_port), server, thread)


def _bytes_or_none(value: Any) -> int | None:
    try:
        return parse_bytes(value) if isinstance(value, int | str) else None
    except ValueError:
        return None
