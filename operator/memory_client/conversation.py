"""Conversation memory per (agent, conversation, subject): an append-only stream, O(1) per message.

Each message is one stream entry (field ``m``: the masked, serialized, encrypted message). The entry id is
the server's clock at the write, so order is the server's order and the timestamp is set once. Retention
trims by that id (XTRIM MINID) and sets a TTL; nothing ever rewrites the history.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memory_client.audit import AuditEvent
from memory_client.messages import Message
from memory_client.optimize import ContextOptimizer, OptimizedContext, Summarizer
from memory_client.resp import HOLE, Command, Packed, Shape, Template
from memory_client.store import Plan, decode_fields
from memory_client.tokens import MESSAGE_OVERHEAD, TokenCounter, default_token_counter

if TYPE_CHECKING:
    from memory_client.client import AgentMemory

__all__ = ["ConversationMemory", "TrimResult"]

_PAGE = 64


@dataclass(frozen=True)
class TrimResult:
    removed: int
    kept: int
    summary: str | None


class ConversationMemory:
    """One conversation of one agent with one subject (the user whose data it is)."""

    def __init__(
        self,
        memory: AgentMemory,
        agent: str,
        conversation: str,
        subject: str,
        *,
        counter: TokenCounter | None = None,
        summarizer: Summarizer | None = None,
    ) -> None:
        self._memory = memory
        self._store = memory.store
        self._config = memory.config
        self.agent = agent
        self.conversation = conversation
        self.subject = subject
        self.key = memory.keys.conversation(agent, conversation, subject)
        self.summary_key = memory.keys.summary(self.key)
        self._index = memory.keys.subject_index(subject)
        self._pseudonym = memory.keys.subject_token(subject)
        # This agent's fields in the activity hash (the cross-agent report): messages, last write, last key.
        self._count_field, self._at_field, self._key_field = f"{agent}:n", f"{agent}:at", f"{agent}:key"
        self.counter = counter or default_token_counter()
        self.summarizer = summarizer

    # -- writing ----------------------------------------------------------------------------------------

    def append(self, role: str, content: str, metadata: dict[str, Any] | None = None) -> Message:
        """Store one message (masked, then encrypted); returns it as stored, with its id and timestamp."""
        text, masked = self._memory.masker.apply(content)
        metadata = dict(metadata) if metadata else {}
        payload = self._memory.cipher.seal(Message.encode(role, text, self.agent, metadata), self.key)
        entry_id: bytes = self._write([payload], masked)[0]
        return Message(role, text, self.agent, metadata, entry_id.decode())

    def extend(self, messages: Iterable[tuple[str, str] | tuple[str, str, dict[str, Any] | None]]) -> list[Message]:
        """Store several messages in one transaction, in order (one audit event for all)."""
        masker, cipher = self._memory.masker, self._memory.cipher
        masked: dict[str, int] = {}
        drafts: list[tuple[str, str, dict[str, Any]]] = []
        payloads: list[bytes] = []
        for item in messages:
            role, content = item[0], item[1]
            metadata = dict(item[2] or {}) if len(item) > 2 else {}  # (role, content[, metadata])
            text, counts = masker.apply(content)
            for name, n in counts.items():
                masked[name] = masked.get(name, 0) + n
            drafts.append((role, text, metadata))
            payloads.append(cipher.seal(Message.encode(role, text, self.agent, metadata), self.key))
        if not payloads:
            return []
        entry_ids = self._write(payloads, masked)
        return [
            Message(role, text, self.agent, metadata, entry_id.decode())
            for (role, text, metadata), entry_id in zip(drafts, entry_ids, strict=True)
        ]

    def _write(self, payloads: Sequence[bytes], masked: dict[str, int]) -> list[Any]:
        """Append sealed messages in one transaction with their upkeep and audit event; their entry ids."""
        size = sum(map(len, payloads))
        event = AuditEvent("save", self.key, len(payloads), self._pseudonym, masked)
        commands = self._append_commands(payloads, size)
        replies = self._memory.write_data(self.key, size, lambda _: (commands, self._memory.event(event)))
        return replies[: len(payloads)]  # the XADDs come first

    @functools.cached_property
    def _append_templates(self) -> tuple[Template, Template, Template]:
        """An append's commands packed once: one XADD per message and the upkeep after them; and both together,
        for the usual append of one message."""
        memory, key = self._memory, self.key
        activity = memory.keys.activity
        xadd: Shape = ("XADD", key, "*", "m", HOLE)
        upkeep: list[Shape] = []
        if self._config.retention_days is not None:
            # `~`: the server trims whole macro-nodes, cheap; exactness is the retention job's.
            upkeep += [("XTRIM", key, "MINID", "~", HOLE), *memory.retention_commands(key)]
        upkeep += [("SADD", self._index, key), *memory.retention_commands(self._index)]
        upkeep += [("HINCRBY", activity, self._count_field, HOLE)]
        upkeep += [("HSET", activity, self._at_field, HOLE, self._key_field, key)]
        upkeep += memory.usage_commands(key, HOLE)
        return Template([xadd]), Template(upkeep), Template([xadd, *upkeep])

    def _append_commands(self, payloads: Sequence[bytes], size: int) -> Packed:
        xadd, upkeep, one = self._append_templates
        now_ms = time.time_ns() // 1_000_000
        written = b"%d" % size
        values: tuple[bytes, ...] = (b"%d" % len(payloads), b"%d" % now_ms, written, written)
        if self._config.retention_days is not None:
            values = (self._memory.retention_cutoff(now_ms), *values)
        if len(payloads) == 1:  # the usual append
            return Packed(one.fill(payloads[0], *values), one.names)
        data = b"".join([*map(xadd.fill, payloads), upkeep.fill(*values)])
        return Packed(data, xadd.names * len(payloads) + upkeep.names)

    def clear(self) -> int:
        """Delete the conversation and its summary; returns how many keys existed."""
        return self._memory.delete_keys([self.key, self.summary_key], self._index, "delete", self._pseudonym)

    # -- reading ----------------------------------------------------------------------------------------

    def _decode(self, entries: Sequence[Any]) -> list[Message]:
        out = []
        for entry_id, flat in entries:
            plain = self._memory.cipher.open(decode_fields(flat)["m"], self.key)
            out.append(Message.from_bytes(plain, entry_id.decode()))
        return out

    def _audited_read(self, command: Command) -> list[Any]:
        entries: list[Any] = self._memory.audited_read([command], self.key, self._pseudonym)[0]
        return entries

    def last(self, n: int) -> list[Message]:
        """The newest `n` messages, oldest first."""
        if n <= 0:
            return []
        return self._decode(self._audited_read(("XREVRANGE", self.key, "+", "-", "COUNT", n)))[::-1]

    def messages(self) -> list[Message]:
        """The whole history, oldest first."""
        return self._decode(self._audited_read(("XRANGE", self.key, "-", "+")))

    def count(self) -> int:
        return int(self._store.read([("XLEN", self.key)])[0])

    def within_tokens(self, budget: int) -> list[Message]:
        """The newest messages whose tokens (with per-message overhead) fit in `budget`, oldest first."""
        chosen: list[Message] = []
        start = "+"
        left = budget
        while left > 0:
            page = self._decode(self._store.read([("XREVRANGE", self.key, start, "-", "COUNT", _PAGE)])[0])
            for message in page:
                cost = self.counter.count(message.content) + MESSAGE_OVERHEAD
                if cost > left:
                    left = 0
                    break
                chosen.append(message)
                left -= cost
            if len(page) < _PAGE:
                break
            start = f"({page[-1].id}"
        self._memory.audit_read(self.key, self._pseudonym, len(chosen))
        return chosen[::-1]

    def summary(self) -> str | None:
        raw = self._store.read([("GET", self.summary_key)])[0]
        return self._memory.cipher.open(raw, self.summary_key).decode() if raw is not None else None

    def optimized(self, budget: int, optimizer: ContextOptimizer | None = None, window: int = 500) -> OptimizedContext:
        """The newest `window` messages fitted into `budget` by the optimizer (importance + summary)."""
        optimizer = optimizer or ContextOptimizer(counter=self.counter, summarizer=self.summarizer)
        return optimizer.optimize(self.last(window), budget, self.summary())

    # -- trimming ---------------------------------------------------------------------------------------

    def trim_to_tokens(self, limit: int) -> TrimResult:
        """Drop the oldest messages until the history fits `limit` tokens.

        With a summarizer, what is dropped is folded into the stored summary in the same transaction that
        drops it, so no trim ever loses the gist. Concurrent appends are safe: only entries up to the first
        kept id are trimmed (XTRIM MINID), and newer entries are always after it.
        """
        history = self.messages()
        total = 0
        first_kept = len(history)
        for i in range(len(history) - 1, -1, -1):
            total += self.counter.count(history[i].content) + MESSAGE_OVERHEAD
            if total > limit:
                break
            first_kept = i
        dropped, kept = history[:first_kept], history[first_kept:]
        if not dropped:
            return TrimResult(0, len(kept), self.summary())
        new_summary: list[str | None] = [None]

        def plan(reads: list[Any]) -> Plan:
            previous = self._memory.cipher.open(reads[0], self.summary_key).decode() if reads[0] else None
            commands: list[Command] = []
            if self.summarizer is not None:
                text = self.summarizer.summarize(dropped, previous)
                new_summary[0] = text
                sealed = self._memory.cipher.seal(text.encode(), self.summary_key)
                commands += [("SET", self.summary_key, sealed), ("SADD", self._index, self.summary_key)]
                grown = len(sealed) - (len(reads[0]) if reads[0] else 0)
                commands += self._memory.usage_commands(self.summary_key, grown)
                commands += self._memory.retention_commands(self.summary_key)
            # MINID keeps entries >= the id given: the first kept one, or past the last dropped when none is kept.
            boundary = (kept[0].id or "0-0") if kept else _after(dropped[-1].id or "0-0")
            commands.append(("XTRIM", self.key, "MINID", boundary))
            return commands, self._memory.event(AuditEvent("trim", self.key, len(dropped), self._pseudonym))

        self._store.transact(
            plan, reads=[("GET", self.summary_key)], watch=[self.summary_key], audited=self._memory.auditing
        )
        return TrimResult(len(dropped), len(kept), new_summary[0])


def _after(entry_id: str) -> str:
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"
