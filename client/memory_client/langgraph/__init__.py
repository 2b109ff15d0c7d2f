"""LangGraph persistence in the tenant's namespace (the ``langgraph`` extra): `TenantCheckpointer`, short-term
memory per thread (`BaseCheckpointSaver`), and `TenantStore`, long-term memory by namespace (`BaseStore`)."""

from memory_client.langgraph.checkpoint import TenantCheckpointer, subject_from_config
from memory_client.langgraph.store import InvalidFilterError, SearchNotSupportedError, TenantStore, subject_at

__all__ = [
    "InvalidFilterError",
    "SearchNotSupportedError",
    "TenantCheckpointer",
    "TenantStore",
    "subject_at",
    "subject_from_config",
]
