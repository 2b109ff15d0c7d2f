"""agentmemory.io/v1alpha1: MemoryStore, MemoryTenant."""

from memory_operator.api.v1alpha1.common import API_VERSION, CATEGORY, GROUP, VERSION
from memory_operator.api.v1alpha1.memorystore import MemoryStore, MemoryStoreSpec, MemoryStoreStatus
from memory_operator.api.v1alpha1.memorytenant import MemoryTenant, MemoryTenantSpec, MemoryTenantStatus

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "VERSION",
    "MemoryStore",
    "MemoryStoreSpec",
    "MemoryStoreStatus",
    "MemoryTenant",
    "MemoryTenantSpec",
    "MemoryTenantStatus",
]
