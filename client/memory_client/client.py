"""`AgentMemory`: one tenant's (or one agent's) handle on its memory namespace; everything starts here."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import redis

from memory_client.audit import GENESIS, AuditEvent, ChainVerification, ChainVerifier
from memory_client.config import MemoryConfig
from memory_client.contract import DAY_MS
from memory_client.conversation import ConversationMemory, decode_entries
from memory_client.crypto import Cipher
from memory_client.errors import ConfigError, DecryptionError, MemoryPermissionError, QuotaExceededError
from memory_client.keys import KeySchema
from memory_client.masking import Masker
from memory_client.messages import RejectedEntry
from memory_client.optimize import Summarizer
from memory_client.resp import Command, Hole
from memory_client.seal import Seal, TrailInfo, TrailVerification, verify_trail
from memory_client.shared import SharedContext
from memory_client.store import Plan, Replies, Store, decode_fields
from memory_client.tokens import TokenCounter

__all__ = ["AgentActivity", "AgentMemory", "AuditRecord", "ErasureReceipt", "Usage"]

_Size = TypeVar("_Size", int, Hole)
_AUDIT_PAGE = 1000


@dataclass(frozen=True)
class AgentActivity:
    """One line of the cross-agent report. `preview` is None when this login may not read that agent's data."""

    agent: str
    messages: int
    last_update: datetime | None
    preview: str | None


@dataclass(frozen=True)
class Usage:
    """What the library has written and not deleted (the operator's measured usage is authoritative)."""

    keys: int
    bytes: int


@dataclass(frozen=True)
class ErasureReceipt:
    """What `erase_subject` deleted: counts per kind, the keys (that existed), the "erase" audit event's id.

    `subject` is the pseudonym the audit event names (never the subject id). `int(receipt)` and `deleted` give
    the data keys deleted (conversations + summaries + shared contexts), what `erase_subject` used to return.
    """

    subject: str
    conversations: int
    summaries: int
    contexts: int
    activity_fields: int
    keys: tuple[str, ...]
    audit_event: str | None

    @property
    def deleted(self) -> int:
        return self.conversations + self.summaries + self.contexts

    def __int__(self) -> int:
        return self.deleted


@dataclass(frozen=True)
class AuditRecord:
    id: str
    fields: dict[str, str]


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


class AgentMemory:
    """Memory of one tenant, acting as the ACL user (and agent) of the credentials it was given.

    Build it from the Secret's environment with `AgentMemory.from_env()`, or from a `MemoryConfig`.
    Thread-safe: operations borrow connections from one pool. Close it (or use `with`) when done.
    """

    def __init__(
        self,
        config: MemoryConfig,
        *,
        audit: bool = True,
        socket_timeout: float = 5.0,
        client: redis.Redis | None = None,
    ) -> None:
        self.config = config
        self.auditing = audit
        # The health check PINGs a connection idle for 15 s before using it, so a server-side idle timeout does not
        # surface as an error; the audit fast path never uses a connection that old (store._PRIMED_MAX_AGE).
        self.client = client or redis.Redis.from_url(
            config.redis_url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            health_check_interval=15,
            protocol=2,
        )
        self.store = Store(config, self.client)
        self.keys = KeySchema(config)
        # Where encryption is required, a plain value can only have been written around the library: refused.
        self.cipher = Cipher(
            config.tenant_id, config.keyring, encrypt=config.encryption, legacy=config.legacy_envelopes
        )
        hash_key = config.keyring.masking_key() if config.masking_mode == "hash" and config.keyring else None
        self.masker = Masker(config.masking, hash_key)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, keyring_file: str | Path | None = None, **options: Any
    ) -> AgentMemory:
        """From the credentials Secret's variables (default `os.environ`) and the keyring (env or file)."""
        return cls(MemoryConfig.from_env(env, keyring_file=keyring_file), **options)

    def close(self) -> None:
        self.store.close()
        self.client.close()

    def __enter__(self) -> AgentMemory:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- handles ----------------------------------------------------------------------------------------

    def conversation(
        self,
        conversation: str,
        subject: str,
        *,
        agent: str | None = None,
        counter: TokenCounter | None = None,
        summarizer: Summarizer | None = None,
    ) -> ConversationMemory:
        """The conversation `conversation` with `subject` (the user it is about), kept by `agent`.

        `agent` defaults to the Secret's MEMORY_AGENT_ID; the tenant user (no agent of its own) must name one.
        """
        agent = agent or self.config.agent_id
        if agent is None:
            raise ConfigError("these are tenant credentials without an agent: pass agent=")
        return ConversationMemory(self, agent, conversation, subject, counter=counter, summarizer=summarizer)

    def shared_context(self, name: str) -> SharedContext:
        return SharedContext(self, name)

    # -- building blocks for the handles ----------------------------------------------------------------

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
        """A write of about `size` bytes to `key`, refused before anything is written when over quota."""
        if self.config.quota_keys is None and self.config.quota_bytes is None:
            return self.store.transact(decide, reads=reads, watch=watch, audited=self.auditing)[1]
        extra = [("HGET", self.keys.usage, "bytes"), ("HLEN", self.keys.sizes), ("HEXISTS", self.keys.sizes, key)]

        def plan(replies: list[Any]) -> Plan:
            used_bytes, used_keys, known = replies[len(reads) :]
            _check(_int(used_keys), 0 if known else 1, self.config.quota_keys, "keys")
            _check(_int(used_bytes), size, self.config.quota_bytes, "bytes")
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

        return self.store.transact(plan, reads=commands)[0]

    def audit_read(self, target: str, pseudonym: str, count: int) -> None:
        if self.auditing and self.config.access_logging:
            self.store.transact(lambda _: ([], AuditEvent("read", target, count, pseudonym)))

    def audit_rejected(self, target: str, pseudonym: str, count: int) -> None:
        """One "read.rejected" event for a read that skipped `count` stored values (a count: no content, no ids)."""
        if self.auditing:
            self.store.transact(lambda _: ([], AuditEvent("read.rejected", target, count, pseudonym)))

    def delete_keys(
        self, keys: Sequence[str], index: str | None, action: str, pseudonym: str, target: str | None = None
    ) -> int:
        """Delete `keys` (and their index entries and quota share) in one audited transaction."""

        def plan(replies: list[Any]) -> Plan:
            released = sum(_int(v) for v in replies[0])
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

    # -- tenant-wide views ------------------------------------------------------------------------------

    def usage(self) -> Usage:
        used_bytes, used_keys = self.store.read([("HGET", self.keys.usage, "bytes"), ("HLEN", self.keys.sizes)])
        return Usage(_int(used_keys), _int(used_bytes))

    def agent_report(self, preview_chars: int = 80) -> list[AgentActivity]:
        """Per agent: messages written, last update, a preview of its latest message (where readable)."""
        raw = decode_fields(self.store.read([("HGETALL", self.keys.activity)])[0])
        agents = sorted({name.rsplit(":", 1)[0] for name in raw})
        report = []
        for agent in agents:
            at = raw.get(f"{agent}:at")
            key = raw.get(f"{agent}:key", b"").decode()
            report.append(
                AgentActivity(
                    agent,
                    _int(raw.get(f"{agent}:n")),
                    datetime.fromtimestamp(int(at) / 1000, tz=UTC) if at else None,
                    self._preview(key, preview_chars),
                )
            )
        self.audit_read(self.keys.activity, "", len(report))
        return report

    def _preview(self, key: str, chars: int) -> str | None:
        if not key:
            return None
        try:
            entries = self.store.read([("XREVRANGE", key, "+", "-", "COUNT", 1)])[0]
        except MemoryPermissionError:  # strict isolation: another agent's area
            return None
        rejected: list[RejectedEntry] = []
        messages = decode_entries(self.cipher, key, entries, rejected)
        if rejected:
            self.audit_rejected(key, "", len(rejected))
        return messages[0].content[:chars] if messages else None

    # -- subject rights ---------------------------------------------------------------------------------

    def export_subject(self, subject: str) -> dict[str, Any]:
        """Everything stored about `subject`, decrypted, as a JSON-ready dict (audited as "export").

        Conversations, summaries and the shared contexts tagged with the subject. Values that fail to open (or
        are plain where encryption is required) are not exported but listed under "rejected" (key, entry id,
        reason), and counted in one "read.rejected" audit event.
        """
        index = self.keys.subject_index(subject)
        keys = sorted(k.decode() for k in self.store.read([("SMEMBERS", index)])[0])
        readers: list[Command] = []
        for key in keys:
            if key.endswith(":summary"):
                readers.append(("GET", key))
            elif self.keys.is_context(key):
                readers.append(("HMGET", key, "v", "d", "by", "at"))
            else:
                readers.append(("XRANGE", key, "-", "+"))
        replies = self.store.read(readers) if readers else []
        conversations: list[dict[str, Any]] = []
        summaries: list[dict[str, Any]] = []
        contexts: list[dict[str, Any]] = []
        rejected: list[RejectedEntry] = []
        for key, reply in zip(keys, replies, strict=True):
            where = self._describe(key)
            if key.endswith(":summary"):
                if reply is not None:
                    try:
                        summaries.append({**where, "summary": self.cipher.open(reply, key).decode()})
                    except DecryptionError as exc:
                        rejected.append(RejectedEntry(key, None, exc.reason))
                    except UnicodeDecodeError:
                        rejected.append(RejectedEntry(key, None, "malformed"))
                continue
            if self.keys.is_context(key):
                context = self.shared_context(key.rpartition(":")[2])
                try:
                    state = context._state(reply)
                except DecryptionError as exc:
                    rejected.append(RejectedEntry(key, None, exc.reason))
                    continue
                if state is not None:
                    contexts.append({"context": context.name, "version": state.version, "data": state.data})
                continue
            messages = [m.to_dict() for m in decode_entries(self.cipher, key, reply, rejected)]
            if messages:
                conversations.append({**where, "messages": messages})
        pseudonym = self.keys.subject_token(subject)
        if rejected:
            self.audit_rejected(index, pseudonym, len(rejected))
        self.store.transact(lambda _: ([], AuditEvent("export", index, len(keys), pseudonym)), audited=True)
        return {
            "subject": subject,
            "tenant": self.config.tenant_id,
            "exportedAt": datetime.now(UTC).isoformat(),
            "conversations": conversations,
            "summaries": summaries,
            "contexts": contexts,
            "rejected": [r.to_dict() for r in rejected],
        }

    def _describe(self, key: str) -> dict[str, str]:
        match = re.fullmatch(r".*agent:([^:]+):conv:([^:]+):[0-9a-f]+(?::summary)?", key)
        return {"agent": match[1], "conversation": match[2]} if match else {"key": key}

    def erase_subject(self, subject: str) -> ErasureReceipt:
        """Delete every key holding `subject`'s data: conversations, summaries, the shared contexts tagged with the
        subject (with their access logs), the activity-hash entries pointing at them, and the subject's index.

        Returns an `ErasureReceipt`. Audited as "erase" with counts and the subject's keyed pseudonym only.
        Under strict isolation only the tenant user reaches every agent's area; an agent user gets
        MemoryPermissionError and nothing is deleted.
        """
        index = self.keys.subject_index(subject)
        pseudonym = self.keys.subject_token(subject)
        keys = sorted(k.decode() for k in self.store.read([("SMEMBERS", index)])[0])
        if not keys:
            none = self.store.transact(lambda _: ([], AuditEvent("erase", index, 0, pseudonym)), audited=True)[1]
            return ErasureReceipt(pseudonym, 0, 0, 0, 0, (), none.event_id)
        logs = [self.keys.context_log(k) for k in keys if self.keys.is_context(k)]
        doomed = [*keys, *logs]
        found: dict[str, bool] = {}
        stale: list[str] = []

        def plan(replies: list[Any]) -> Plan:
            exists, sizes, activity = replies[: len(doomed)], replies[len(doomed)], replies[len(doomed) + 1]
            found.clear()
            found.update((key, bool(n)) for key, n in zip(doomed, exists, strict=True))
            released = sum(_int(v) for v in sizes)
            gone = set(doomed)
            stale[:] = [f for f, v in decode_fields(activity).items() if f.endswith(":key") and v.decode() in gone]
            commands: list[Command] = [
                ("DEL", *doomed, index),
                ("HDEL", self.keys.sizes, *doomed),
                ("HINCRBY", self.keys.usage, "bytes", -released),
            ]
            if stale:
                commands.append(("HDEL", self.keys.activity, *stale))
            return commands, self.event(AuditEvent("erase", index, sum(found.values()), pseudonym))

        reads: list[Command] = [("EXISTS", k) for k in doomed]
        reads += [("HMGET", self.keys.sizes, *doomed), ("HGETALL", self.keys.activity)]
        written: Replies = self.store.transact(
            plan, reads=reads, watch=[self.keys.sizes, self.keys.activity], audited=self.auditing
        )[1]
        existed = tuple(k for k in doomed if found.get(k))
        tagged = {k for k in keys if self.keys.is_context(k)}
        contexts = sum(1 for k in existed if k in tagged)
        summaries = sum(1 for k in existed if k.endswith(":summary"))
        conversations = sum(1 for k in existed if k in keys and k not in tagged and not k.endswith(":summary"))
        return ErasureReceipt(pseudonym, conversations, summaries, contexts, len(stale), existed, written.event_id)

    # -- the audit trail --------------------------------------------------------------------------------

    def audit_events(self, count: int = 100) -> list[AuditRecord]:
        """The newest `count` audit events, newest first."""
        entries = self.store.read([("XREVRANGE", self.config.audit_key, "+", "-", "COUNT", count)])[0]
        return [AuditRecord(i.decode(), {k: v.decode() for k, v in decode_fields(f).items()}) for i, f in entries]

    def verify_audit(self, anchor: str = GENESIS) -> ChainVerification:
        """Walk the whole trail oldest first; report the first entry that is edited, missing or out of order.

        `anchor`: the hash of the last event a retention trim removed, where the trail may legitimately start.
        """
        verifier = ChainVerifier(anchor)
        start = "-"
        while True:
            page = self.store.read([("XRANGE", self.config.audit_key, start, "+", "COUNT", _AUDIT_PAGE)])[0]
            for entry_id, flat in page:
                fields = {k: v.decode() for k, v in decode_fields(flat).items()}
                if not verifier.feed(entry_id.decode(), fields):
                    return verifier.result()
            if len(page) < _AUDIT_PAGE:
                return verifier.result()
            start = f"({page[-1][0].decode()}"

    def verify_sealed(self, seal: Seal | Mapping[str, Any]) -> TrailVerification:
        """The whole trail held to the operator's seal (a `Seal`, or the tenant's `status.audit` as a mapping):
        unlike `verify_audit()`, a history replaced from the genesis, removed or reordered sealed entries and
        far-future ids fail. Walked in pages; "future" is judged by this machine's clock (tenant users may not
        run TIME), so it must be within `memory_client.seal.SKEW_MS` of the server's."""
        sealed = seal if isinstance(seal, Seal) else Seal.from_status(seal)
        key = self.config.audit_key
        info = None
        if int(self.store.read([("XLEN", key)])[0]):
            flat = self.store.read([("XINFO", "STREAM", key)])[0]
            info = TrailInfo.from_xinfo(dict(zip(flat[::2], flat[1::2], strict=True)))
        now_ms = time.time_ns() // 1_000_000

        def read(start: str, end: str, count: int) -> list[tuple[str, dict[str, str]]]:
            page = self.store.read([("XRANGE", key, start, end, "COUNT", count)])[0]
            return [(i.decode(), {k: v.decode() for k, v in decode_fields(f).items()}) for i, f in page]

        return verify_trail(read, info, sealed, now_ms)


def _check(used: int, requested: int, limit: int | None, resource: str) -> None:
    if limit is not None and requested > 0 and used + requested > limit:
        raise QuotaExceededError(resource, used, requested, limit)
