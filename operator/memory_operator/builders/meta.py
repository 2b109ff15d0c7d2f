"""Labels, owner references and child names shared by every builder (pure)."""

from __future__ import annotations

from typing import Any

from memory_operator.api.v1alpha1 import API_VERSION, GROUP, MemoryTenant

__all__ = [
    "AGENT_LABEL",
    "JOB_SERVICE_ACCOUNT",
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "ROLE_LABEL",
    "TENANT_LABEL",
    "carries_our_marks",
    "credentials_secret_name",
    "job_credentials_secret_name",
    "keys_secret_name",
    "owner_reference",
    "tenant_labels",
]

MANAGED_BY = "agent-memory-operator"
TENANT_LABEL = f"{GROUP}/tenant"
AGENT_LABEL = f"{GROUP}/agent"
ROLE_LABEL = f"{GROUP}/role"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
#: the ServiceAccount tenant job Pods run as in each tenant namespace: no token, no permissions
JOB_SERVICE_ACCOUNT = "agent-memory-job"


def credentials_secret_name(tenant: str, agent: str | None = None) -> str:
    return f"{tenant}-{agent}-memory-credentials" if agent else f"{tenant}-memory-credentials"


def job_credentials_secret_name(tenant: str) -> str:
    return f"{tenant}-memory-job-credentials"


def keys_secret_name(tenant: str) -> str:
    return f"{tenant}-memory-keys"


def tenant_labels(tenant: MemoryTenant, role: str, agent: str | None = None) -> dict[str, str]:
    labels = {
        MANAGED_BY_LABEL: MANAGED_BY,
        "app.kubernetes.io/part-of": "agent-memory",
        TENANT_LABEL: tenant.name,
        ROLE_LABEL: role,
    }
    if agent:
        labels[AGENT_LABEL] = agent
    return labels


def owner_reference(tenant: MemoryTenant) -> dict[str, Any]:
    """Children are garbage-collected with the tenant; blockOwnerDeletion is off (it needs extra RBAC)."""
    return {
        "apiVersion": API_VERSION,
        "kind": tenant.kind,
        "name": tenant.name,
        "uid": tenant.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": False,
    }


def carries_our_marks(obj: dict[str, Any], tenant: str | None, role: str, agent: str | None = None) -> bool:
    """Whether an existing child was written by this operator for this tenant, role and agent.

    Only such an object is adopted (a re-created tenant takes back its own Secrets); anything else at one of our
    names belongs to someone else and is never overwritten, owned or deleted. `tenant` None: a namespace-wide
    child (the jobs' ServiceAccount) that carries no tenant label.
    """
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or labels.get(ROLE_LABEL) != role:
        return False
    if tenant is None:
        return True
    return labels.get(TENANT_LABEL) == tenant and labels.get(AGENT_LABEL) == agent
