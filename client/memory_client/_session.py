"""What an `AgentMemory` shares with the handles it makes (conversations, shared contexts): the store, the key
schema, the cipher, the masker, and the audited, quota-checked read and write steps they are built from.

Internal: the facade's public surface is what users call; the handles receive this session instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis

from memory_client._config import MemoryConfig
from memory_client._crypto import Cipher
from memory_client._keys import KeySchema
from memory_client._masking import Masker
from memory_client._resp import Command, Hole
from memory_client._store import Plan, Store
from memory_client.audit import AuditEvent
from memory_client.contract import DAY_MS
from memory_client.errors import QuotaExceededError

__all__ = ["Session", "as_int"]

_Size = TypeVar("_Size", int, Hole)


def as_int(value: Any) -> int:
    """A counter's reply (None when the field or key does not exist) as a number."""
    return int(value) if value is not None else 0


def _check(used: int, requested: int, limit: int | None, resource: str) -> None:
    if limit is not None and requested > 0 and used + requested > limit:
        raise QuotaExceededError(resource, used, requested, limit)


class Session:
    """One tenant's (or agent's) connection state and the building blocks of every operation."""

    def __init__(self, config: MemoryConfig, client: redis.Redis, *, audit: bool) -> None:
        self.config = config
        self.auditing = audit
        self.store = Store(config, client)
        self.keys = KeySchema(config)
        # Where encryption is required, a plain value can only have been written around the library: refused.
        self.cipher = Cipher(
            config.tenant_id, config.keyring, encrypt=config.encryption, legacy=config.legacy_envelopes
        )
        hash_key = config.keyring.masking_key() if config.masking_mode == "hash" and config.keyring else None
        self.masker = Masker(config.masking, hash_key)

    def close(self) -> None:
        self.store.close()

    def event(self, event: AuditEvent) -> AuditEvent | None:
        return event if self.auditing else None

    def retention_commands(self, key: str) -> list[Command]:
        """The TTL from the effective retention (streams are trimmed by entry age as well: `retention_cutoff`)."""
        days = self.config.retention_days
        return [] if days is None else [("PEXPIRE", key, days * DAY_MS)]

    def retention_cutoff(self, now_ms: int) -> bytes:
        """The stream entry id (for XTRIM MINID) of the oldest entry within the effective retention at `now_ms`."""
        days = self.config.retention_days
        if days is None:
            raise ValueError("no retention is in effect")
        return b"%d-0" % (now_ms - days * DAY_MS)

    def usage_commands(self, key: str, size: _Size) -> list[tuple[str, str, str, _Size]]:
        """Count `size` more bytes written to `key` (`size` may be a template's HOLE)."""
        return [("HINCRBY", self.keys.usage, "bytes", size), ("HINCRBY", self.keys.sizes, key, size)]

    def write_data(
        self,
        key: str,
        size: int,
        decide: Callable[[list[Any]], Plan],
        *,
        reads: Sequence[Command] = (),
        watch: Sequence[str] = (),
    ) -> list[Any]:
        """A write of about `size` bytes to `key`, refused before anything is written when over quota.

        Keys are counted in the size index, which holds exactly the data keys the library wrote: what
        `memory_client.contract.counts_toward_key_quota` says the operator counts too.
        """
        if self.config.quota_keys is None and self.config.quota_bytes is None:
            return self.store.transact(decide, reads=reads, watch=watch, audited=self.auditing)[1]
        extra = [("HGET", self.keys.usage, "bytes"), ("HLEN", self.keys.sizes), ("HEXISTS", self.keys.sizes, key)]

        def plan(replies: list[Any]) -> Plan:
            used_bytes, used_keys, known = replies[len(reads) :]
            _check(as_int(used_keys), 0 if known else 1, self.config.quota_keys, "keys")
            _check(as_int(used_bytes), size, self.config.quota_bytes, "bytes")
            return decide(replies[: len(reads)])

        # Watching the counters makes the quota check and the write one atomic step against other writers.
        watched = [*watch, self.keys.usage, self.keys.sizes]
        return self.store.transact(plan, reads=[*reads, *extra], watch=watched, audited=self.auditing)[1]

    def audited_read(self, commands: Sequence[Command], target: str, pseudonym: str) -> list[Any]:
        """Run reads; with access logging on, in the same transaction as their audit event."""
        if not (self.auditing and self.config.access_logging):
            return self.store.read(commands)

        def plan(replies: list[Any]) -> Plan:
            n = len(replies[0]) if isinstance(replies[0], list) else 1
            return [], AuditEvent("read", target, n, pseudonym)

        return self.store.transact(plan, reads=commands, durable=False)[0]

    def audit_read(self, target: str, pseudonym: str, count: int) -> None:
        if self.auditing and self.config.access_logging:
            self.store.transact(lambda _: ([], AuditEvent("read", target, count, pseudonym)), durable=False)

    def audit_rejected(self, target: str, pseudonym: str, count: int) -> None:
        """One "read.rejected" event for a read that skipped `count` stored values (a count: no content, no ids)."""
        if self.auditing:
            self.store.transact(lambda _: ([], AuditEvent("read.rejected", target, count, pseudonym)), durable=False)

    def delete_keys(
        self, keys: Sequence[str], index: str | None, action: str, pseudonym: str, target: str | None = None
    ) -> int:
        """Delete `keys` (and their index entries and quota share) in one audited transaction."""

        def plan(replies: list[Any]) -> Plan:
            released = sum(as_int(v) for v in replies[0])
            commands: list[Command] = [
                ("DEL", *keys),
                ("HDEL", self.keys.sizes, *keys),
                ("HINCRBY", self.keys.usage, "bytes", -released),
            ]
            if index is not None:
                commands.append(("SREM", index, *keys))
            return commands, self.event(AuditEvent(action, target or keys[0], len(keys), pseudonym))

        replies = self.store.transact(
            plan, reads=[("HMGET", self.keys.sizes, *keys)], watch=[self.keys.sizes], audited=self.auditing
        )[1]
        return int(replies[0])
