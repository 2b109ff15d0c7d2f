"""Typed errors of the agent memory library; none of them carries a password, a key or stored content."""

from __future__ import annotations

__all__ = [
    "AgentMemoryError",
    "ConfigError",
    "ConflictError",
    "DecryptionError",
    "MemoryConnectionError",
    "MemoryPermissionError",
    "QuotaExceededError",
]


class AgentMemoryError(Exception):
    """Base of every error the library raises on purpose."""


class ConfigError(AgentMemoryError):
    """The environment or arguments do not describe a usable tenant (missing variable, bad keyring, ...)."""


class MemoryConnectionError(AgentMemoryError):
    """The store could not be reached or the connection was lost; the operation may be retried."""


class MemoryPermissionError(AgentMemoryError):
    """The ACL user may not run this command on this key (another tenant's or another strict agent's area)."""


class ConflictError(AgentMemoryError):
    """A compare-and-set lost: the shared context moved on since the version the caller read.

    `current_version` is the version now stored (None when the context does not exist, or when the
    conflict is a transaction that kept losing to concurrent writers).
    """

    def __init__(self, message: str, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


class QuotaExceededError(AgentMemoryError):
    """The write would take the tenant over its quota; nothing was written."""

    def __init__(self, resource: str, used: int, requested: int, limit: int) -> None:
        super().__init__(f"{resource} quota exceeded: {used} used + {requested} requested > {limit} allowed")
        self.resource = resource
        self.used = used
        self.requested = requested
        self.limit = limit


class DecryptionError(AgentMemoryError):
    """A stored value failed authentication: tampered, moved to another key, or encrypted with an unknown key."""
