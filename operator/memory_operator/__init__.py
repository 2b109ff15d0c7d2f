"""agent-memory-operator: per-tenant, isolated, encrypted memory namespaces on Redis/Valkey for LLM agents."""

__version__ = "0.1.0"
