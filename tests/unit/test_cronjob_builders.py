"""Pure CronJob builders: schedules spread per tenant, Forbid, no API token, restricted security context."""

from __future__ import annotations

from typing import Any

from croniter import croniter

from memory_operator.api.v1alpha1 import MemoryTenant, Requirements
from memory_operator.builders.cronjobs import report_cronjob, retention_cronjob

IMAGE = "ghcr.io/agent-memory/agent-memory-operator:0.1.0"


def tenant(name: str = "support", namespace: str = "team-a") -> MemoryTenant:
    return MemoryTenant.from_body({"metadata": {"name": name, "namespace": namespace, "uid": "u1"}, "spec": {}})


def pod(cronjob: dict[str, Any]) -> dict[str, Any]:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_retention_cronjob_runs_the_job_with_the_jobs_own_credentials() -> None:
    job = retention_cronjob(tenant(), IMAGE)
    (container,) = pod(job)["containers"]
    assert job["metadata"]["name"] == "support-memory-retention"
    assert container["command"] == ["memory-jobs", "retention"]
    assert container["envFrom"] == [{"secretRef": {"name": "support-memory-job-credentials"}}]
    assert container["image"] == IMAGE
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u1"


def test_jobs_never_overlap_and_get_no_kubernetes_token() -> None:
    job = report_cronjob(tenant(), Requirements(), IMAGE)
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    spec = pod(job)
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def test_schedules_are_valid_stable_and_spread_across_tenants() -> None:
    schedules = {retention_cronjob(tenant(f"t{i}"), IMAGE)["spec"]["schedule"] for i in range(40)}
    assert all(croniter.is_valid(s) for s in schedules)
    assert len(schedules) > 30
    assert retention_cronjob(tenant("t1"), IMAGE) == retention_cronjob(tenant("t1"), IMAGE)


def test_report_follows_the_policy_schedule() -> None:
    weekly = report_cronjob(tenant(), Requirements(report_schedule="H 6 * * 1"), IMAGE)["spec"]["schedule"]
    minute, hour, dom, month, dow = weekly.split()
    assert (hour, dom, month, dow) == ("6", "*", "*", "1")
    assert 0 <= int(minute) < 60


def test_schedules_are_in_utc_not_the_controller_managers_zone() -> None:
    for job in (retention_cronjob(tenant(), IMAGE), report_cronjob(tenant(), Requirements(), IMAGE)):
        assert job["spec"]["timeZone"] == "UTC"
