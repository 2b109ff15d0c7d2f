"""Labels, owner references and child names shared by every builder (pure)."""

from __future__ import annotations

from typing import Any

from memory_operator.api.v1alpha1 import API_VERSION, GROUP, MemoryTenant

__all__ = [
    "MANAGED_BY",
    "ROLE_LABEL",
    "TENANT_LABEL",
    "credentials_secret_name",
    "keys_secret_name",
    "owner_reference",
    "tenant_labels",
]

MANAGED_BY = "agent-memory-operator"
TENANT_LABEL = f"{GROUP}/tenant"
AGENT_LABEL = f"{GROUP}/agent"
ROLE_LABEL = f"{GROUP}/role"


def credentials_secret_name(tenant: str, agent: str | None = None) -> str:
    return f"{tenant}-{agent}-memory-credentials" if agent else f"{tenant}-memory-credentials"


def keys_secret_name(tenant: str) -> str:
    return f"{tenant}-memory-keys"


def tenant_labels(tenant: MemoryTenant, role: str, agent: str | None = None) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/managed-by": MANAGED_BY,
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
