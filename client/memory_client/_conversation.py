"""Conversation memory per (agent, conversation, subject): an append-only stream, O(1) per message.

Each message is one stream entry (field ``m``: the masked, serialized, encrypted message). The entry id is
the server's clock at the write, so order is the server's order and the timestamp is set once. Retention
trims by that id (XTRIM MINID) and sets a TTL; nothing ever rewrites the history.

Each message is sealed for its conversation's key and its write time (see `memory_client._crypto`); its nonce is
its id. A reader refuses an entry whose stream time is more than `SKEW_MS` away from its sealed time (copied
later: a replay), one whose id it already read (a replay within the skew), a plain one where encryption is
required, and any that fails authentication. Refused entries are skipped, never fatal to the rest: `rejected`
lists the last read's, and each read that refused some appends one ``read.rejected`` audit event (a count).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from memory_client._crypto import Cipher
from memory_client._messages import Message, RejectedEntry, mask_values
from memory_client._optimize import ContextOptimizer, OptimizedContext, Summarizer
from memory_client._resp import HOLE, Command, Packed, Shape, Template
from memory_client._session import Session
from memory_client._store import Plan
from memory_client._tokens import MESSAGE_OVERHEAD, TokenCounter, default_token_counter
from memory_client.audit import AuditEvent
from memory_client.contract import ENVELOPE_PLACED, MESSAGE_FIELD, SKEW_MS
from memory_client.errors import DecryptionError

__all__ = ["ConversationMemory", "TrimResult", "decode_entries"]

_PAGE = 64


_MESSAGE: Final = MESSAGE_FIELD.encode()


def _envelope(flat: Sequence[bytes]) -> bytes:
    for i in range(0, len(flat) - 1, 2):
        if flat[i] == _MESSAGE:
            return flat[i + 1]
    raise DecryptionError("a stream entry without a message", "format")


def decode_entries(
    cipher: Cipher,
    key: str,
    entries: Sequence[Any],
    rejected: list[RejectedEntry],
    seen: dict[bytes, str] | None = None,
    ids: list[bytes] | None = None,
) -> list[Message]:
    """The messages of stream entries (oldest first) that open and sit where they were sealed; the others are
    added to `rejected`. `seen` (message id -> entry id) carries the ids read so far; `ids` collects the message
    id (nonce) of each message returned."""
    out: list[Message] = []
    seen = {} if seen is None else seen
    for raw_id, flat in entries:
        entry_id = raw_id.decode()
        try:
            envelope = _envelope(flat)
            opened = cipher.unseal(envelope, key)
            if envelope[0] == ENVELOPE_PLACED:
                written = int(opened.place or b"-1")
                if abs(int(entry_id.partition("-")[0]) - written) > SKEW_MS:
                    raise DecryptionError(f"entry {entry_id} was not stored when it was sealed", "misplaced")
            if opened.nonce:
                if opened.nonce in seen:
                    raise DecryptionError(f"entry {entry_id} repeats entry {seen[opened.nonce]}", "replayed")
                seen[opened.nonce] = entry_id
            message = Message.from_bytes(opened.plain, entry_id)
        except DecryptionError as exc:
            rejected.append(RejectedEntry(key, entry_id, exc.reason))
            continue
        except (ValueError, KeyError, TypeError, AttributeError):  # not a message record (only if unencrypted)
            rejected.append(RejectedEntry(key, entry_id, "malformed"))
            continue
        out.append(message)
        if ids is not None:
            ids.append(opened.nonce)
    return out


@dataclass(frozen=True)
class TrimResult:
    removed: int
    kept: int
    summary: str | None


class ConversationMemory:
    """One conversation of one agent with one subject (the user whose data it is)."""

    def __init__(
        self,
        session: Session,
        agent: str,
        conversation: str,
        subject: str,
        *,
        counter: TokenCounter | None = None,
        summarizer: Summarizer | None = None,
    ) -> None:
        self._session = session
        self._store = session.store
        self._config = session.config
        self.agent = agent
        self.conversation = conversation
        self.subject = subject
        self.key = session.keys.conversation(agent, conversation, subject)
        self.summary_key = session.keys.summary(self.key)
        self._index = session.keys.subject_index(subject)
        self._pseudonym = session.keys.subject_token(subject)
        # This agent's fields in the activity hash (the cross-agent report): messages, last write, last key.
        self._count_field, self._at_field, self._key_field = f"{agent}:n", f"{agent}:at", f"{agent}:key"
        self.counter = counter or default_token_counter()
        self.summarizer = summarizer
        self._rejected: tuple[RejectedEntry, ...] = ()

    @property
    def rejected(self) -> tuple[RejectedEntry, ...]:
        """What the last read on this handle skipped (entries that failed authentication, plain values where
        encryption is required, replayed or misplaced entries, an unreadable summary); empty when all was read."""
        return self._rejected

    def _report(self, rejected: Sequence[RejectedEntry]) -> None:
        self._rejected = tuple(rejected)
        if rejected:
            self._session.audit_rejected(self.key, self._pseudonym, len(rejected))

    # -- writing ----------------------------------------------------------------------------------------

    def append(self, role: str, content: str, metadata: dict[str, Any] | None = None) -> Message:
        """Store one message (masked, then encrypted); returns it as stored, with its id and timestamp."""
        masker = self._session.masker
        text, masked = masker.apply(content)
        if metadata:
            masked = dict(masked)
            metadata = mask_values(masker.apply, metadata, masked)
        else:
            metadata = {}
        now_ms = time.time_ns() // 1_000_000
        payload = self._session.cipher.seal(Message.encode(role, text, self.agent, metadata), self.key, b"%d" % now_ms)
        entry_id: bytes = self._write([payload], masked, now_ms)[0]
        return Message(role, text, self.agent, metadata, entry_id.decode())

    def extend(self, messages: Iterable[tuple[str, str] | tuple[str, str, dict[str, Any] | None]]) -> list[Message]:
        """Store several messages in one transaction, in order (one audit event for all)."""
        masker, cipher = self._session.masker, self._session.cipher
        masked: dict[str, int] = {}
        drafts: list[tuple[str, str, dict[str, Any]]] = []
        payloads: list[bytes] = []
        now_ms = time.time_ns() // 1_000_000
        place = b"%d" % now_ms
        for item in messages:
            role, content = item[0], item[1]
            raw = item[2] if len(item) > 2 else None  # (role, content[, metadata])
            metadata: dict[str, Any] = mask_values(masker.apply, raw, masked) if raw else {}
            text, counts = masker.apply(content)
            for name, n in counts.items():
                masked[name] = masked.get(name, 0) + n
            drafts.append((role, text, metadata))
            payloads.append(cipher.seal(Message.encode(role, text, self.agent, metadata), self.key, place))
        if not payloads:
            return []
        entry_ids = self._write(payloads, masked, now_ms)
        return [
            Message(role, text, self.agent, metadata, entry_id.decode())
            for (role, text, metadata), entry_id in zip(drafts, entry_ids, strict=True)
        ]

    def _write(self, payloads: Sequence[bytes], masked: dict[str, int], now_ms: int) -> list[Any]:
        """Append sealed messages in one transaction with their upkeep and audit event; their entry ids."""
        size = sum(map(len, payloads))
        event = AuditEvent("save", self.key, len(payloads), self._pseudonym, masked)
        commands = self._append_commands(payloads, size, now_ms)
        replies = self._session.write_data(self.key, size, lambda _: (commands, self._session.event(event)))
        return replies[: len(payloads)]  # the XADDs come first

    @functools.cached_property
    def _append_templates(self) -> tuple[Template, Template, Template]:
        """An append's commands packed once: one XADD per message and the upkeep after them; and both together,
        for the usual append of one message."""
        session, key = self._session, self.key
        activity = session.keys.activity
        xadd: Shape = ("XADD", key, "*", MESSAGE_FIELD, HOLE)
        upkeep: list[Shape] = []
        if self._config.retention_days is not None:
            # `~`: the server trims whole macro-nodes, cheap; exactness is the retention job's.
            upkeep += [("XTRIM", key, "MINID", "~", HOLE), *session.retention_commands(key)]
        upkeep += [("SADD", self._index, key), *session.retention_commands(self._index)]
        upkeep += [("HINCRBY", activity, self._count_field, HOLE)]
        upkeep += [("HSET", activity, self._at_field, HOLE, self._key_field, key)]
        upkeep += session.usage_commands(key, HOLE)
        return Template([xadd]), Template(upkeep), Template([xadd, *upkeep])

    def _append_commands(self, payloads: Sequence[bytes], size: int, now_ms: int) -> Packed:
        xadd, upkeep, one = self._append_templates
        written = b"%d" % size
        values: tuple[bytes, ...] = (b"%d" % len(payloads), b"%d" % now_ms, written, written)
        if self._config.retention_days is not None:
            values = (self._session.retention_cutoff(now_ms), *values)
        if len(payloads) == 1:  # the usual append
            return Packed(one.fill(payloads[0], *values), one.names)
        data = b"".join([*map(xadd.fill, payloads), upkeep.fill(*values)])
        return Packed(data, xadd.names * len(payloads) + upkeep.names)

    def clear(self) -> int:
        """Delete the conversation and its summary; returns how many keys existed."""
        return self._session.delete_keys([self.key, self.summary_key], self._index, "delete", self._pseudonym)

    # -- reading ----------------------------------------------------------------------------------------

    def _decode(self, entries: Sequence[Any]) -> list[Message]:
        """Entries oldest first -> the messages that were accepted; the rest reported."""
        rejected: list[RejectedEntry] = []
        out = decode_entries(self._session.cipher, self.key, entries, rejected)
        self._report(rejected)
        return out

    def _audited_read(self, command: Command) -> list[Any]:
        entries: list[Any] = self._session.audited_read([command], self.key, self._pseudonym)[0]
        return entries

    def last(self, n: int) -> list[Message]:
        """The newest `n` messages, oldest first (refused entries skipped: see `rejected`)."""
        if n <= 0:
            self._rejected = ()
            return []
        return self._decode(self._audited_read(("XREVRANGE", self.key, "+", "-", "COUNT", n))[::-1])

    def messages(self) -> list[Message]:
        """The whole history, oldest first (refused entries skipped: see `rejected`)."""
        return self._decode(self._audited_read(("XRANGE", self.key, "-", "+")))

    def count(self) -> int:
        """Stream entries, refused ones included."""
        return int(self._store.read([("XLEN", self.key)])[0])

    def within_tokens(self, budget: int) -> list[Message]:
        """The newest messages whose tokens (with per-message overhead) fit in `budget`, oldest first."""
        chosen: list[Message] = []
        rejected: list[RejectedEntry] = []
        newer: dict[bytes, str] = {}  # message ids of the pages read so far (newer than the current page)
        start = "+"
        left = budget
        while left > 0:
            raw = self._store.read([("XREVRANGE", self.key, start, "-", "COUNT", _PAGE)])[0]
            ids: list[bytes] = []
            page = decode_entries(self._session.cipher, self.key, raw[::-1], rejected, None, ids)
            copies = {newer[i] for i in ids if i and i in newer}  # plain messages (b"") have no id
            if copies:  # this older page holds the original of a message chosen already: that one was the copy
                chosen = [m for m in chosen if m.id not in copies]
                rejected += [RejectedEntry(self.key, c, "replayed") for c in sorted(copies)]
            newer.update((i, m.id or "") for i, m in zip(ids, page, strict=True) if i)
            for message in page[::-1]:
                cost = self.counter.count(message.content) + MESSAGE_OVERHEAD
                if cost > left:
                    left = 0
                    break
                chosen.append(message)
                left -= cost
            if len(raw) < _PAGE:
                break
            start = f"({raw[-1][0].decode()}"
        self._report(rejected)
        self._session.audit_read(self.key, self._pseudonym, len(chosen))
        return chosen[::-1]

    def summary(self) -> str | None:
        """The stored summary of trimmed messages; None when there is none or it was refused (see `rejected`)."""
        raw = self._store.read([("GET", self.summary_key)])[0]
        text, rejected = self._open_summary(raw)
        self._report(rejected)
        return text

    def _open_summary(self, raw: bytes | None) -> tuple[str | None, list[RejectedEntry]]:
        if raw is None:
            return None, []
        try:
            return self._session.cipher.open(raw, self.summary_key).decode(), []
        except DecryptionError as exc:
            return None, [RejectedEntry(self.summary_key, None, exc.reason)]
        except UnicodeDecodeError:
            return None, [RejectedEntry(self.summary_key, None, "malformed")]

    def optimized(self, budget: int, optimizer: ContextOptimizer | None = None, window: int = 500) -> OptimizedContext:
        """The newest `window` messages fitted into `budget` by the optimizer (importance + summary)."""
        optimizer = optimizer or ContextOptimizer(counter=self.counter, summarizer=self.summarizer)
        recent = self.last(window)
        skipped = self._rejected
        summary = self.summary()
        self._rejected = skipped + self._rejected
        return optimizer.optimize(recent, budget, summary)

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
        skipped: list[RejectedEntry] = []
        history_rejected = self._rejected

        def plan(reads: list[Any]) -> Plan:
            previous, unreadable = self._open_summary(reads[0])  # an unreadable summary is replaced
            skipped[:] = unreadable
            commands: list[Command] = []
            if self.summarizer is not None:
                text = self.summarizer.summarize(dropped, previous)
                new_summary[0] = text
                sealed = self._session.cipher.seal(text.encode(), self.summary_key)
                commands += [("SET", self.summary_key, sealed), ("SADD", self._index, self.summary_key)]
                grown = len(sealed) - (len(reads[0]) if reads[0] else 0)
                commands += self._session.usage_commands(self.summary_key, grown)
                commands += self._session.retention_commands(self.summary_key)
            # MINID keeps entries >= the id given: the first kept one, or past the last dropped when none is kept.
            boundary = (kept[0].id or "0-0") if kept else _after(dropped[-1].id or "0-0")
            commands.append(("XTRIM", self.key, "MINID", boundary))
            return commands, self._session.event(AuditEvent("trim", self.key, len(dropped), self._pseudonym))

        self._store.transact(
            plan, reads=[("GET", self.summary_key)], watch=[self.summary_key], audited=self._session.auditing
        )
        if skipped:
            self._report(skipped)
        self._rejected = history_rejected + tuple(skipped)
        return TrimResult(len(dropped), len(kept), new_summary[0])


def _after(entry_id: str) -> str:
    ms, _, seq = entry_id.partition("-")
    return f"{ms}-{int(seq or 0) + 1}"
