"""Typed errors of the agent memory library; none of them carries a password, a key or stored content."""

from __future__ import annotations

__all__ = [
    "AgentMemoryError",
    "AuditTrailError",
    "ConfigError",
    "ConflictError",
    "DecryptionError",
    "MemoryConnectionError",
    "MemoryPermissionError",
    "NotReplicatedError",
    "PartialWriteError",
    "QuotaExceededError",
    "StoreError",
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
    """A stored value was not accepted: tampered, moved to another key or place, replayed, encrypted with an unknown
    key, or plain where encryption is required.

    `reason` is a short code: ``plaintext``, ``authentication``, ``unknown-key``, ``format``, ``misplaced``
    (sealed for another version or time than where it is stored) or ``replayed`` (a message id seen before).
    """

    def __init__(self, message: str, reason: str = "authentication") -> None:
        super().__init__(message)
        self.reason = reason


class StoreError(AgentMemoryError):
    """The store refused a command for a reason other than permissions (e.g. ``WRONGTYPE``: a key holds another
    type than the library wrote there). The message names the commands and the server's error code, never values."""


class PartialWriteError(StoreError):
    """A transaction ran, but some of its commands failed at run time: Redis does not roll back the others.

    `failed` names the commands that failed (in order); `audited` says whether the audit event, which every
    transaction queues first, was applied (it is the part that is never missing unless it failed itself).
    """

    def __init__(self, message: str, failed: tuple[str, ...], audited: bool) -> None:
        super().__init__(message)
        self.failed = failed
        self.audited = audited


class NotReplicatedError(StoreError):
    """The write was applied on the primary, with its audit event, but fewer replicas than asked for
    (`MEMORY_WAIT_REPLICAS`) confirmed it within the timeout: it is not acknowledged as durable and may be lost if
    the primary fails now. Writing it again would store it twice; read back before retrying.

    `wanted` and `confirmed` are replica counts."""

    def __init__(self, message: str, wanted: int, confirmed: int) -> None:
        super().__init__(message)
        self.wanted = wanted
        self.confirmed = confirmed


class AuditTrailError(AgentMemoryError):
    """The audit trail cannot take the event a write needs (its newest id is ahead of the clock beyond the allowed
    skew, or at the maximum), so nothing was written."""
