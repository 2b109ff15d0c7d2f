"""Metrics: the documented series exist on a running operator, with values that agree with the status."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from memory_operator.metrics import Metrics, parse_address
from tests.ops.conftest import NAMESPACE, ROOT, Lifecycle

Sample = tuple[str, dict[str, str], float]


def samples(text: str) -> list[Sample]:
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def value(text: str, metric: str, /, **labels: str) -> float:
    found = [v for n, ls, v in samples(text) if n == metric and labels.items() <= ls.items()]
    assert found, f"no sample {metric}{labels}"
    return sum(found)


@pytest.mark.e2e
def test_reconciliations_are_counted_by_kind_and_result(lifecycle: Lifecycle) -> None:
    text = lifecycle.scrape_live
    assert value(text, "agentmemory_reconciliations_total", kind="MemoryTenant", result="success") >= 2
    assert value(text, "agentmemory_reconciliations_total", kind="MemoryStore", result="success") >= 1
    assert value(text, "agentmemory_reconcile_errors_total", kind="MemoryTenant", reason="StoreNotFound") >= 1


@pytest.mark.e2e
def test_reconcile_durations_are_a_histogram_per_kind(lifecycle: Lifecycle) -> None:
    text = lifecycle.scrape_live
    count = value(text, "agentmemory_reconcile_duration_seconds_count", kind="MemoryTenant")
    assert count == value(text, "agentmemory_reconcile_duration_seconds_bucket", kind="MemoryTenant", le="+Inf")
    assert 0 < value(text, "agentmemory_reconcile_duration_seconds_sum", kind="MemoryTenant") < 60 * count


@pytest.mark.e2e
def test_objects_are_counted_by_ready_status(lifecycle: Lifecycle) -> None:
    text = lifecycle.scrape_live
    assert value(text, "agentmemory_objects", kind="MemoryTenant", ready="True") == 2  # alpha, beta
    assert value(text, "agentmemory_objects", kind="MemoryTenant", ready="False") == 1  # lost (StoreNotFound)
    assert value(text, "agentmemory_objects", kind="MemoryStore", ready="True") == 1
    after = lifecycle.scrape_after_delete
    assert value(after, "agentmemory_objects", kind="MemoryTenant", ready="True") == 0
    assert value(after, "agentmemory_objects", kind="MemoryTenant", ready="False") == 0


@pytest.mark.e2e
def test_tenant_usage_and_quota_ratio_follow_status_usage(lifecycle: Lifecycle) -> None:
    text = lifecycle.scrape_live
    tenant = {"namespace": NAMESPACE, "name": "alpha"}
    assert value(text, "agentmemory_tenant_usage_keys", **tenant) == 5
    used = value(text, "agentmemory_tenant_usage_bytes", **tenant)
    assert used > 5 * 100
    assert value(text, "agentmemory_tenant_quota_ratio", resource="keys", **tenant) == pytest.approx(5 / 100)
    assert value(text, "agentmemory_tenant_quota_ratio", resource="memory", **tenant) == pytest.approx(used / 2**20)
    assert not [s for s in samples(text) if s[0] == "agentmemory_tenant_quota_ratio" and s[1]["name"] == "beta"]


@pytest.mark.e2e
def test_deleted_tenants_leave_no_series(lifecycle: Lifecycle) -> None:
    assert not [s for s in samples(lifecycle.scrape_after_delete) if s[1].get("namespace") == NAMESPACE]


@pytest.mark.e2e
def test_metric_labels_carry_no_secret_values(lifecycle: Lifecycle) -> None:
    for text in (lifecycle.scrape_live, lifecycle.scrape_after_delete):
        for secret_value in lifecycle.secret_values:
            assert secret_value not in text


def test_every_metric_is_documented_in_operations_md() -> None:
    documented = set(re.findall(r"`(agentmemory_[a-z_]+)`", (ROOT / "docs" / "operations.md").read_text()))
    registry = CollectorRegistry()
    Metrics(registry, process=False)
    names = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in registry.collect()
        if family.name.startswith("agentmemory_")
    }
    assert names <= documented, f"undocumented metrics: {sorted(names - documented)}"


def test_job_results_are_recorded_and_forgotten_with_the_tenant() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, process=False)
    metrics.observe_job("ns", "t", "retention", succeeded=False, finished_at=1700000000.0)
    assert (
        registry.get_sample_value(
            "agentmemory_tenant_job_last_success", {"namespace": "ns", "name": "t", "job": "retention"}
        )
        == 0
    )
    metrics.forget("MemoryTenant", "ns", "t")
    assert (
        registry.get_sample_value(
            "agentmemory_tenant_job_last_success", {"namespace": "ns", "name": "t", "job": "retention"}
        )
        is None
    )


def test_compliance_and_audit_breaches_follow_status_and_go_with_the_tenant() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, process=False)
    labels = {"namespace": "ns", "name": "t"}

    def observe(status: str, reason: str, breach: str) -> None:
        conditions = [{"type": "Ready", "status": "True"}, {"type": "Compliant", "status": status, "reason": reason}]
        metrics.observe("MemoryTenant", "ns", "t", {"conditions": conditions, "audit": {"breach": breach}}, {})

    observe("True", "NoViolations", "")
    assert registry.get_sample_value("agentmemory_tenant_compliant", {**labels, "reason": "NoViolations"}) == 1
    assert registry.get_sample_value("agentmemory_tenant_audit_breach", labels) == 0
    observe("False", "AuditTrailTampered", "the oldest entries were removed")
    assert registry.get_sample_value("agentmemory_tenant_compliant", {**labels, "reason": "AuditTrailTampered"}) == 0
    assert registry.get_sample_value("agentmemory_tenant_compliant", {**labels, "reason": "NoViolations"}) is None
    assert registry.get_sample_value("agentmemory_tenant_audit_breach", labels) == 1
    metrics.forget("MemoryTenant", "ns", "t")
    assert registry.get_sample_value("agentmemory_tenant_compliant", {**labels, "reason": "AuditTrailTampered"}) is None
    assert registry.get_sample_value("agentmemory_tenant_audit_breach", labels) is None


def test_one_tenants_changes_leave_another_tenants_series_alone() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, process=False)

    def observe(namespace: str, name: str, reason: str) -> None:
        conditions = [
            {"type": "Compliant", "status": "True" if reason == "NoViolations" else "False", "reason": reason}
        ]
        status = {"conditions": conditions, "usage": {"keys": 3, "memoryBytes": 100}}
        metrics.observe("MemoryTenant", namespace, name, status, {"quota": {"keys": 10}})

    observe("ns", "t", "NoViolations")
    observe("ns", "t2", "NoViolations")
    observe("other", "t", "NoViolations")  # the same name in another namespace is another tenant
    observe("ns", "t", "Violations")
    metrics.observe_job("ns", "t", "retention", succeeded=False, finished_at=5.0)
    metrics.forget("MemoryTenant", "ns", "t")
    for namespace, name in (("ns", "t2"), ("other", "t")):
        labels = {"namespace": namespace, "name": name}
        assert registry.get_sample_value("agentmemory_tenant_compliant", {**labels, "reason": "NoViolations"}) == 1
        assert registry.get_sample_value("agentmemory_tenant_quota_ratio", {**labels, "resource": "keys"}) == 0.3
        assert registry.get_sample_value("agentmemory_tenant_job_last_success", {**labels, "job": "retention"}) is None
    gone = {"namespace": "ns", "name": "t"}
    assert registry.get_sample_value("agentmemory_tenant_usage_keys", gone) is None
    assert registry.get_sample_value("agentmemory_tenant_job_last_success", {**gone, "job": "retention"}) is None


def test_a_failed_reconcile_keeps_the_last_measured_usage() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, process=False)
    status = {"conditions": [{"type": "Ready", "status": "False"}], "usage": {"keys": 3, "memoryBytes": 30}}
    metrics.observe("MemoryTenant", "ns", "t", status, {"quota": {"memory": "1Ki"}}, "StoreUnavailable")
    labels = {"namespace": "ns", "name": "t"}
    assert registry.get_sample_value("agentmemory_tenant_usage_keys", labels) == 3
    assert registry.get_sample_value("agentmemory_tenant_quota_ratio", {**labels, "resource": "memory"}) == 30 / 1024
    assert registry.get_sample_value("agentmemory_objects", {"kind": "MemoryTenant", "ready": "False"}) == 1


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (":9090", ("0.0.0.0", 9090)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("9090", ("0.0.0.0", 9090)),
        ("[::1]:9", ("::1", 9)),
    ],
)
def test_metrics_addresses(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


def test_a_bad_metrics_address_is_refused() -> None:
    with pytest.raises(ValueError, match="metrics address"):
        parse_address("localhost:http")


@pytest.mark.e2e
def test_job_results_in_status_become_job_series(lifecycle: Lifecycle) -> None:
    labels = {"namespace": NAMESPACE, "name": "alpha", "job": "report"}
    assert value(lifecycle.scrape_jobs, "agentmemory_tenant_job_last_success", **labels) == 1
    assert value(lifecycle.scrape_jobs, "agentmemory_tenant_job_last_completion_timestamp_seconds", **labels) > 1.7e9
