"""Pure builders of a tenant's CronJobs: retention enforcement and the compliance report.

Both run the operator's own image (`memory-jobs retention|report`) with the tenant's credentials Secret as
their environment and no Kubernetes API access at all (no service account token): a job records its result in
the tenant's namespace on the store, and the operator surfaces it in the tenant's status.
"""

from __future__ import annotations

import json
from typing import Any

from memory_client import contract
from memory_operator.api.v1alpha1 import MemoryTenant, Requirements
from memory_operator.builders.meta import (
    JOB_SERVICE_ACCOUNT,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    ROLE_LABEL,
    job_credentials_secret_name,
    owner_reference,
    tenant_labels,
)
from memory_operator.policy import spread_schedule

__all__ = [
    "JOBS",
    "RETENTION_SCHEDULE",
    "ROLE_JOB_SERVICE_ACCOUNT",
    "ROLE_REPORT",
    "cronjob_name",
    "job_role",
    "job_service_account",
    "report_configmap",
    "report_configmap_name",
    "report_cronjob",
    "report_history",
    "retention_cronjob",
]

JOBS = (contract.JOB_RETENTION, contract.JOB_REPORT)
ROLE_REPORT = "compliance-report"
ROLE_JOB_SERVICE_ACCOUNT = "job-service-account"

RETENTION_SCHEDULE = "H H * * *"  # daily, at a time spread per tenant
JOB_DEADLINE_SECONDS = 3600
#: schedules are read in UTC wherever the controller-manager runs (CronJob timeZone, Kubernetes >= 1.27)
SCHEDULE_TIME_ZONE = "UTC"


def cronjob_name(tenant: str, job: str) -> str:
    return f"{tenant}-memory-{job}"


def job_role(job: str) -> str:
    """The role label of a job's CronJob (and its Jobs and Pods)."""
    return f"{job}-job"


def report_configmap_name(tenant: str) -> str:
    return f"{tenant}-compliance-report"


def job_service_account(namespace: str) -> dict[str, Any]:
    """The identity tenant job Pods run as: a ServiceAccount of their own, with no token and no permissions.

    One per namespace, shared by its tenants and owned by none of them (it grants nothing, so it may outlive
    them); a Pod that names it can never act as another ServiceAccount of the namespace.
    """
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": JOB_SERVICE_ACCOUNT,
            "namespace": namespace,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY,
                "app.kubernetes.io/part-of": "agent-memory",
                ROLE_LABEL: ROLE_JOB_SERVICE_ACCOUNT,
            },
        },
        "automountServiceAccountToken": False,
    }


def _container(tenant: MemoryTenant, job: str, image: str) -> dict[str, Any]:
    return {
        "name": job,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["memory-jobs", job],
        "envFrom": [{"secretRef": {"name": job_credentials_secret_name(tenant.name)}}],
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _cronjob(tenant: MemoryTenant, job: str, schedule: str, image: str) -> dict[str, Any]:
    labels = tenant_labels(tenant, job_role(job))
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": cronjob_name(tenant.name, job),
            "namespace": tenant.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(tenant)],
        },
        "spec": {
            "schedule": spread_schedule(schedule, f"{tenant.namespace}/{tenant.name}/{job}"),
            "timeZone": SCHEDULE_TIME_ZONE,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": JOB_DEADLINE_SECONDS,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": JOB_DEADLINE_SECONDS,
                    "ttlSecondsAfterFinished": 86400,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "restartPolicy": "Never",
                            "serviceAccountName": JOB_SERVICE_ACCOUNT,
                            "automountServiceAccountToken": False,
                            "securityContext": {
                                "runAsNonRoot": True,
                                "runAsUser": 10001,
                                "runAsGroup": 10001,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "containers": [_container(tenant, job, image)],
                        },
                    },
                },
            },
        },
    }


def retention_cronjob(tenant: MemoryTenant, image: str) -> dict[str, Any]:
    """Daily enforcement of the effective retention on the tenant's data."""
    return _cronjob(tenant, contract.JOB_RETENTION, RETENTION_SCHEDULE, image)


def report_cronjob(tenant: MemoryTenant, policy: Requirements, image: str) -> dict[str, Any]:
    """The compliance report, on the effective policy's schedule."""
    return _cronjob(tenant, contract.JOB_REPORT, policy.report_schedule, image)


#: how many reports `history.json` of the report ConfigMap keeps (newest last)
REPORT_HISTORY = 10


def report_history(previous: str | None, report: dict[str, Any]) -> str:
    """`history.json` after `report`: the last REPORT_HISTORY reports in brief (time, score, failed checks), newest
    last; the same report again changes nothing. An unreadable previous history starts afresh."""
    try:
        runs = [r for r in json.loads(previous or "[]") if isinstance(r, dict)]
    except ValueError:
        runs = []
    entry = {
        "generatedAt": report.get("generatedAt"),
        "score": report.get("score"),
        "failed": [str(v.get("check")) for v in report.get("violations") or () if isinstance(v, dict)],
    }
    if not runs or runs[-1].get("generatedAt") != entry["generatedAt"]:
        runs.append(entry)
    return json.dumps(runs[-REPORT_HISTORY:], separators=(",", ":"))


def report_configmap(tenant: MemoryTenant, report_json: str, markdown: str, history: str = "[]") -> dict[str, Any]:
    """The last compliance report, where platform teams (and auditors) read it: `<tenant>-compliance-report`,
    with the brief history of the last reports (`history.json`)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": report_configmap_name(tenant.name),
            "namespace": tenant.namespace,
            "labels": tenant_labels(tenant, ROLE_REPORT),
            "ownerReferences": [owner_reference(tenant)],
        },
        "data": {"report.json": report_json, "summary.md": markdown, "history.json": history},
    }
