"""`AgentMemory`: one tenant's (or one agent's) handle on its memory namespace; everything starts here."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import redis

from memory_client import contract
from memory_client._config import MemoryConfig
from memory_client._conversation import ConversationMemory, decode_entries
from memory_client._messages import RejectedEntry
from memory_client._optimize import Summarizer
from memory_client._redis import check_client
from memory_client._resp import Command
from memory_client._session import Session, as_int
from memory_client._shared import SharedContext
from memory_client._store import Plan, Replies, decode_fields
from memory_client._tokens import TokenCounter
from memory_client.audit import GENESIS, AuditEvent, ChainVerification, ChainVerifier
from memory_client.errors import ConfigError, DecryptionError, MemoryPermissionError
from memory_client.seal import Seal, TrailInfo, TrailVerification, verify_trail

__all__ = ["AgentActivity", "AgentMemory", "AuditRecord", "ErasureReceipt", "Usage"]

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
        # The health check PINGs a connection idle for 15 s before using it, so a server-side idle timeout does not
        # surface as an error; the audit fast path never uses a connection that old (_store._PRIMED_MAX_AGE).
        self.client = client or redis.Redis.from_url(
            config.redis_url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            health_check_interval=15,
            protocol=2,  # unless REDIS_URL says protocol=3, which wins in redis-py and is refused here
        )
        check_client(self.client, "client=" if client is not None else "REDIS_URL")
        self._session = Session(config, self.client, audit=audit)
        self._store, self._keys = self._session.store, self._session.keys

    @property
    def auditing(self) -> bool:
        """Whether operations write audit events (`audit=` at construction)."""
        return self._session.auditing

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, keyring_file: str | Path | None = None, **options: Any
    ) -> AgentMemory:
        """From the credentials Secret's variables (default `os.environ`) and the keyring (env or file)."""
        return cls(MemoryConfig.from_env(env, keyring_file=keyring_file), **options)

    def close(self) -> None:
        self._session.close()
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
        return ConversationMemory(self._session, agent, conversation, subject, counter=counter, summarizer=summarizer)

    def shared_context(self, name: str) -> SharedContext:
        return SharedContext(self._session, name)

    def pseudonym(self, subject: str) -> str:
        """The pseudonym `subject` goes by in key names and audit events (never the subject id itself)."""
        return self._keys.subject_token(subject)

    # -- tenant-wide views ------------------------------------------------------------------------------

    def usage(self) -> Usage:
        used_bytes, used_keys = self._store.read([("HGET", self._keys.usage, "bytes"), ("HLEN", self._keys.sizes)])
        return Usage(as_int(used_keys), as_int(used_bytes))

    def agent_report(self, preview_chars: int = 80) -> list[AgentActivity]:
        """Per agent: messages written, last update, a preview of its latest message (where readable)."""
        raw = decode_fields(self._store.read([("HGETALL", self._keys.activity)])[0])
        agents = sorted({name.rsplit(":", 1)[0] for name in raw})
        report = []
        for agent in agents:
            at = raw.get(f"{agent}:at")
            key = raw.get(f"{agent}:key", b"").decode()
            report.append(
                AgentActivity(
                    agent,
                    as_int(raw.get(f"{agent}:n")),
                    datetime.fromtimestamp(int(at) / 1000, tz=UTC) if at else None,
                    self._preview(key, preview_chars),
                )
            )
        self._session.audit_read(self._keys.activity, "", len(report))
        return report

    def _preview(self, key: str, chars: int) -> str | None:
        if not key:
            return None
        try:
            entries = self._store.read([("XREVRANGE", key, "+", "-", "COUNT", 1)])[0]
        except MemoryPermissionError:  # strict isolation: another agent's area
            return None
        rejected: list[RejectedEntry] = []
        messages = decode_entries(self._session.cipher, key, entries, rejected)
        if rejected:
            self._session.audit_rejected(key, "", len(rejected))
        return messages[0].content[:chars] if messages else None

    # -- subject rights ---------------------------------------------------------------------------------

    def export_subject(self, subject: str) -> dict[str, Any]:
        """Everything stored about `subject`, decrypted, as a JSON-ready dict (audited as "export").

        Conversations, summaries, the shared contexts tagged with the subject, and what the LangGraph adapters
        (`memory_client.langgraph`) hold for the subject: store items and checkpoint threads. Values that fail to
        open (or are plain where encryption is required) are not exported but listed under "rejected" (key, entry
        id, reason), and counted in one "read.rejected" audit event.
        """
        index = self._keys.subject_index(subject)
        members = sorted(k.decode() for k in self._store.read([("SMEMBERS", index)])[0])
        graph = [k for k in members if contract.LANGGRAPH_AREA in k]  # memory_client.langgraph's keys
        keys = [k for k in members if contract.LANGGRAPH_AREA not in k]
        readers: list[Command] = []
        for key in keys:
            if key.endswith(":summary"):
                readers.append(("GET", key))
            elif self._keys.is_context(key):
                readers.append(("HMGET", key, "v", "d", "by", "at"))
            else:
                readers.append(("XRANGE", key, "-", "+"))
        replies = self._store.read(readers) if readers else []
        conversations: list[dict[str, Any]] = []
        summaries: list[dict[str, Any]] = []
        contexts: list[dict[str, Any]] = []
        rejected: list[RejectedEntry] = []
        for key, reply in zip(keys, replies, strict=True):
            where = self._describe(key)
            if key.endswith(":summary"):
                if reply is not None:
                    try:
                        summaries.append({**where, "summary": self._session.cipher.open(reply, key).decode()})
                    except DecryptionError as exc:
                        rejected.append(RejectedEntry(key, None, exc.reason))
                    except UnicodeDecodeError:
                        rejected.append(RejectedEntry(key, None, "malformed"))
                continue
            if self._keys.is_context(key):
                context = self.shared_context(key.rpartition(":")[2])
                try:
                    state = context._state(reply)
                except DecryptionError as exc:
                    rejected.append(RejectedEntry(key, None, exc.reason))
                    continue
                if state is not None:
                    contexts.append({"context": context.name, "version": state.version, "data": state.data})
                continue
            messages = [m.to_dict() for m in decode_entries(self._session.cipher, key, reply, rejected)]
            if messages:
                conversations.append({**where, "messages": messages})
        exported: dict[str, list[Any]] = {"storeItems": [], "threads": []}
        if graph:
            try:
                from memory_client.langgraph._export import export_keys  # noqa: PLC0415 - an optional extra
            except ImportError:  # written by an agent with the langgraph extra; this one has none to open them
                rejected += [RejectedEntry(k, None, "langgraph-not-installed") for k in graph]
            else:
                exported, refused = export_keys(self, graph)
                rejected += refused
        pseudonym = self._keys.subject_token(subject)
        if rejected:
            self._session.audit_rejected(index, pseudonym, len(rejected))
        self._store.transact(lambda _: ([], AuditEvent("export", index, len(members), pseudonym)), audited=True)
        return {
            "subject": subject,
            "tenant": self.config.tenant_id,
            "exportedAt": datetime.now(UTC).isoformat(),
            "conversations": conversations,
            "summaries": summaries,
            "contexts": contexts,
            **exported,
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
        index = self._keys.subject_index(subject)
        pseudonym = self._keys.subject_token(subject)
        keys = sorted(k.decode() for k in self._store.read([("SMEMBERS", index)])[0])
        if not keys:
            none = self._store.transact(lambda _: ([], AuditEvent("erase", index, 0, pseudonym)), audited=True)[1]
            return ErasureReceipt(pseudonym, 0, 0, 0, 0, (), none.event_id)
        logs = [self._keys.context_log(k) for k in keys if self._keys.is_context(k)]
        doomed = [*keys, *logs]
        found: dict[str, bool] = {}
        stale: list[str] = []

        def plan(replies: list[Any]) -> Plan:
            exists, sizes, activity = replies[: len(doomed)], replies[len(doomed)], replies[len(doomed) + 1]
            found.clear()
            found.update((key, bool(n)) for key, n in zip(doomed, exists, strict=True))
            released = sum(as_int(v) for v in sizes)
            gone = set(doomed)
            stale[:] = [f for f, v in decode_fields(activity).items() if f.endswith(":key") and v.decode() in gone]
            commands: list[Command] = [
                ("DEL", *doomed, index),
                ("HDEL", self._keys.sizes, *doomed),
                ("HINCRBY", self._keys.usage, "bytes", -released),
            ]
            if stale:
                commands.append(("HDEL", self._keys.activity, *stale))
            return commands, self._session.event(AuditEvent("erase", index, sum(found.values()), pseudonym))

        reads: list[Command] = [("EXISTS", k) for k in doomed]
        reads += [("HMGET", self._keys.sizes, *doomed), ("HGETALL", self._keys.activity)]
        written: Replies = self._store.transact(
            plan,
            reads=reads,
            watch=[self._keys.sizes, self._keys.activity],
            audited=self._session.auditing,
        )[1]
        existed = tuple(k for k in doomed if found.get(k))
        tagged = {k for k in keys if self._keys.is_context(k)}
        contexts = sum(1 for k in existed if k in tagged)
        summaries = sum(1 for k in existed if k.endswith(":summary"))
        conversations = sum(1 for k in existed if k in keys and k not in tagged and not k.endswith(":summary"))
        return ErasureReceipt(pseudonym, conversations, summaries, contexts, len(stale), existed, written.event_id)

    # -- the audit trail --------------------------------------------------------------------------------

    def audit_events(self, count: int = 100) -> list[AuditRecord]:
        """The newest `count` audit events, newest first."""
        entries = self._store.read([("XREVRANGE", self.config.audit_key, "+", "-", "COUNT", count)])[0]
        return [AuditRecord(i.decode(), {k: v.decode() for k, v in decode_fields(f).items()}) for i, f in entries]

    def verify_audit(self, anchor: str = GENESIS) -> ChainVerification:
        """Walk the whole trail oldest first; report the first entry that is edited, missing or out of order.

        `anchor`: the hash of the last event a retention trim removed, where the trail may legitimately start.
        """
        verifier = ChainVerifier(anchor)
        start = "-"
        while True:
            page = self._store.read([("XRANGE", self.config.audit_key, start, "+", "COUNT", _AUDIT_PAGE)])[0]
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
        if int(self._store.read([("XLEN", key)])[0]):
            flat = self._store.read([("XINFO", "STREAM", key)])[0]
            info = TrailInfo.from_xinfo(dict(zip(flat[::2], flat[1::2], strict=True)))
        now_ms = time.time_ns() // 1_000_000

        def read(start: str, end: str, count: int) -> list[tuple[str, dict[str, str]]]:
            page = self._store.read([("XRANGE", key, start, end, "COUNT", count)])[0]
            return [(i.decode(), {k: v.decode() for k, v in decode_fields(f).items()}) for i, f in page]

        return verify_trail(read, info, sealed, now_ms)
