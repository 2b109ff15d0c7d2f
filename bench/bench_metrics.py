"""The operator's per-tenant metrics: memory a tenant's series take, the cost of recording one pass, and a scrape.

    .venv/bin/python bench/bench_metrics.py [--tenants 2000]

What is measured: `Metrics` (operator/memory_operator/metrics.py) recording `--tenants` Ready, compliant tenants
with usage, a quota and two jobs (11 series each, as a converged tenant pass leaves them), in-process. Baseline,
same run: the same series as plain prometheus_client Gauges with a labelled child per series (the library's
documented pattern, and what the operator did before): memory traced by tracemalloc per tenant, the mean time
of one more tenant pass recorded once the fleet is in, and one scrape (`generate_latest`) of the whole registry.
Both registries' tenant series are checked to be the same lines before any figure is printed.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from memory_operator.metrics import Metrics

STATUS: dict[str, Any] = {
    "conditions": [
        {"type": "Ready", "status": "True"},
        {"type": "Compliant", "status": "True", "reason": "Compliant"},
    ],
    "usage": {"keys": 12, "memoryBytes": 4096},
    "audit": {"breach": False},
}
SPEC: dict[str, Any] = {"quota": {"memory": "64Mi", "keys": 1000}}
JOBS = ("retention", "report")


class PlainGauges:
    """The baseline: one prometheus_client Gauge per metric, a child per (tenant, labels) series."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        tenant = ["namespace", "name"]

        def gauge(name: str, *labels: str) -> Gauge:
            return Gauge(name, name, [*tenant, *labels], registry=self.registry)

        self.usage_bytes = gauge("agentmemory_tenant_usage_bytes")
        self.usage_keys = gauge("agentmemory_tenant_usage_keys")
        self.quota_ratio = gauge("agentmemory_tenant_quota_ratio", "resource")
        self.job_last_success = gauge("agentmemory_tenant_job_last_success", "job")
        self.job_last_completion = gauge("agentmemory_tenant_job_last_completion_timestamp_seconds", "job")
        self.compliant = gauge("agentmemory_tenant_compliant", "reason")
        self.audit_breach = gauge("agentmemory_tenant_audit_breach")

    def record(self, namespace: str, name: str) -> None:
        self.usage_keys.labels(namespace, name).set(12)
        self.usage_bytes.labels(namespace, name).set(4096)
        self.quota_ratio.labels(namespace, name, "memory").set(4096 / (64 << 20))
        self.quota_ratio.labels(namespace, name, "keys").set(12 / 1000)
        for job in JOBS:
            self.job_last_success.labels(namespace, name, job).set(1)
            self.job_last_completion.labels(namespace, name, job).set(1.0)
        # a tenant's Compliant series changes label with its reason: the stale one is found and removed first
        for family in self.compliant.collect():
            for sample in family.samples:
                labels = tuple(sample.labels.values())
                if labels[:2] == (namespace, name) and labels[2] != "Compliant":
                    self.compliant.remove(*labels)
        self.compliant.labels(namespace, name, "Compliant").set(1)
        self.audit_breach.labels(namespace, name).set(0)


def ours() -> tuple[CollectorRegistry, Callable[[str, str], None]]:
    metrics = Metrics()

    def record(namespace: str, name: str) -> None:
        metrics.observe("MemoryTenant", namespace, name, STATUS, SPEC)
        for job in JOBS:
            metrics.observe_job(namespace, name, job, succeeded=True, finished_at=1.0)

    return metrics.registry, record


def plain() -> tuple[CollectorRegistry, Callable[[str, str], None]]:
    gauges = PlainGauges()
    return gauges.registry, gauges.record


def tenant_lines(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return sorted(line for line in text.splitlines() if line.startswith("agentmemory_tenant_"))


def measure(
    label: str, make: Callable[[], tuple[CollectorRegistry, Callable[[str, str], None]]], tenants: int
) -> tuple[list[str], str]:
    tracemalloc.start()
    registry, record = make()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(tenants):
        record(f"ns{i // 100}", f"t{i}")
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    rounds = 50
    started = time.perf_counter()
    for i in range(rounds):  # tenants already in: a converged pass re-recording its figures
        record(f"ns{i // 100}", f"t{i}")
    per_pass = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    lines = tenant_lines(registry)
    scrape = time.perf_counter() - started
    traced = f"{grown / tenants / 1024:.2f} KiB"
    return lines, f"| {label} | {tenants:,} | {traced} | {per_pass * 1e3:.3f} ms | {scrape * 1e3:.0f} ms |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=2000)
    args = parser.parse_args()
    ours_lines, ours_row = measure("ours (one collector, a dict per tenant)", ours, args.tenants)
    plain_lines, plain_row = measure("prometheus_client Gauge children", plain, args.tenants)
    assert ours_lines == plain_lines, "the two registries disagree on the tenant series"
    print(f"{len(ours_lines):,} tenant series in both, the same lines")
    print("| metrics | tenants | traced per tenant | one tenant pass recorded | scrape |")
    print("| --- | --- | --- | --- | --- |")
    print(ours_row)
    print(plain_row)


if __name__ == "__main__":
    main()
