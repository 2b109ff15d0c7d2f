"""agentmemory.io/v1alpha1: MemoryStore, MemoryTenant, CompliancePolicy."""

from memory_operator.api.v1alpha1.common import API_VERSION, CATEGORY, GROUP, VERSION
from memory_operator.api.v1alpha1.compliancepolicy import (
    CompliancePolicy,
    CompliancePolicySpec,
    CompliancePolicyStatus,
    Requirements,
)
from memory_operator.api.v1alpha1.memorystore import MemoryStore, MemoryStoreSpec, MemoryStoreStatus
from memory_operator.api.v1alpha1.memorytenant import MemoryTenant, MemoryTenantSpec, MemoryTenantStatus

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "VERSION",
    "CompliancePolicy",
    "CompliancePolicySpec",
    "CompliancePolicyStatus",
    "MemoryStore",
    "MemoryStoreSpec",
    "MemoryStoreStatus",
    "MemoryTenant",
    "MemoryTenantSpec",
    "MemoryTenantStatus",
    "Requirements",
]
