"""`TenantCheckpointer`: LangGraph's `BaseCheckpointSaver` (short-term memory per thread) in the tenant's namespace.

Plain Valkey/Redis, no modules and no SCAN: a thread is one hash, found through an index hash. Everything is written
with the library's own steps: message content masked per the policy, every value sealed with the tenant keyring for
its key and field, every write (and, with access logging, every read) an audited transaction, the quota checked
before anything is written, each key in the `sizes` index the operator's jobs and survey count, TTL from the
effective retention (refreshed by every write: a thread lives `retentionDays` after its last step).

Key layout (B = the agent's own area ``A lg:``, or ``S lg:`` with ``shared=True``; {thread} is a keyed pseudonym,
HMAC-SHA256 under the keyring's pseudonym key like a subject's, so thread ids never appear in key names)::

    B th             hash   d = envelope(the index's format marker); {thread} = 1 for each thread
    B th:{thread}    hash   d = envelope(the thread id); p = the subject's pseudonym (when the thread has one)
                            l|{ns}                 = the newest checkpoint id of namespace ns
                            c|{ns}|{id}            = envelope(parent id, checkpoint without values, metadata)
                            w|{ns}|{id}            = envelope(the pending writes of checkpoint id)
                            b|{ns}|{channel}|{ver} = envelope(one channel value at one version)

(``|`` is the unit separator, 0x1f.) Channel values are stored once per version, as in LangGraph's own savers, and
every envelope is sealed for its field: a value moved to another field, thread or tenant fails to open. A thread
tied to a subject (`subject=`, by default the config's ``user_id``) joins the subject's index, so
`AgentMemory.erase_subject` deletes it and `export_subject` exports it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import random
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from memory_client import contract
from memory_client._client import AgentMemory
from memory_client._resp import Command
from memory_client._session import Session, as_int
from memory_client._store import Plan
from memory_client.audit import AuditEvent
from memory_client.errors import DecryptionError, QuotaExceededError
from memory_client.langgraph._area import area_of

__all__ = ["TenantCheckpointer", "subject_from_config"]

SubjectOfConfig = Callable[[RunnableConfig], str | None]

SEP: Final = "\x1f"
_DOC: Final = "d"
_SUBJECT: Final = "p"
_ROOT_PLACE: Final = b"lg-threads"
_THREAD_PLACE: Final = b"lg-thread"
_MARKER: Final = b'{"format":1,"kind":"langgraph-checkpoints"}'


def subject_from_config(key: str = "user_id") -> SubjectOfConfig:
    """The data subject of a thread is ``config["configurable"][key]`` (LangGraph's convention: ``user_id``)."""

    def subject(config: RunnableConfig) -> str | None:
        value = (config.get("configurable") or {}).get(key)
        return None if value is None else str(value)

    return subject


def _place(field: str) -> bytes:
    """What an envelope is sealed for besides its key: its field (a digest, as fields may be long)."""
    return hashlib.blake2b(field.encode(), digest_size=16).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _field(kind: str, *parts: str) -> str:
    return SEP.join((kind, *parts))


def jsonable(value: Any) -> Any:
    """`value` as JSON can hold it: messages and other pydantic models as their fields, bytes as base64, the
    rest as text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    dump = getattr(value, "model_dump", None)  # a message, or any other pydantic model
    if callable(dump):
        return jsonable(dump())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return _b64(value)
    return str(value)


def _versions(record: _Record) -> list[tuple[str, Any]]:
    return list(record.checkpoint.get("channel_versions", {}).items())


@dataclass(frozen=True)
class _Thread:
    """One thread's keys and subject."""

    thread_id: str
    token: str
    key: str
    pseudonym: str  # "" when the thread belongs to no subject
    index: str | None


@dataclass(frozen=True)
class _Record:
    """A checkpoint as stored: its parent, the checkpoint without channel values, and the metadata."""

    ns: str
    checkpoint_id: str
    parent: str | None
    checkpoint: Checkpoint
    metadata: CheckpointMetadata


class TenantCheckpointer(BaseCheckpointSaver[str]):
    """LangGraph short-term memory (`BaseCheckpointSaver`) in the tenant's namespace, for one agent (or shared).

    `memory`: an `AgentMemory` (its credentials, keyring, policy and audit setting). `agent`: whose area holds the
    threads (default the Secret's MEMORY_AGENT_ID; tenant credentials must name one). `shared=True`: the tenant's
    shared area instead. `subject`: which data subject a thread's data is about, from the config of its first
    write (default ``configurable.user_id``; None: threads belong to no subject); the thread joins that subject's
    index, so `AgentMemory.erase_subject` deletes its checkpoints. `serde`: LangGraph's serializer (its default,
    JsonPlusSerializer); its output is sealed with the tenant keyring, so an `EncryptedSerializer` is not needed.

    Message content in channel values and pending writes is masked per the effective policy before it is stored.
    Synchronous methods talk to the store directly; the async ones run them on a worker thread.
    """

    def __init__(
        self,
        memory: AgentMemory,
        *,
        agent: str | None = None,
        shared: bool = False,
        subject: SubjectOfConfig | None = subject_from_config(),  # noqa: B008 - a pure function, shared safely
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self.memory = memory
        self._session: Session = memory._session
        self.prefix = f"{area_of(memory, agent, shared)}lg:"
        self.root = f"{self.prefix}th"
        self._subject = subject

    # -- names ----------------------------------------------------------------------------------------------

    def _thread(self, thread_id: str, config: RunnableConfig | None = None) -> _Thread:
        keys = self._session.keys
        token = keys.subject_token(f"\x00langgraph.checkpoint.thread\x00{thread_id}")
        key = f"{self.root}:{token}"
        subject = self._subject(config) if config is not None and self._subject is not None else None
        if subject is None:
            return _Thread(thread_id, token, key, "", None)
        return _Thread(thread_id, token, key, keys.subject_token(subject), keys.subject_index(subject))

    def _seal(self, plain: bytes, thread: _Thread, field: str) -> bytes:
        return self._session.cipher.seal(plain, thread.key, _place(field))

    def _open(self, envelope: bytes, thread: _Thread, field: str) -> bytes:
        return self._session.cipher.open(envelope, thread.key, _place(field))

    def _open_json(self, envelope: bytes, thread: _Thread, field: str) -> Any:
        try:
            return json.loads(self._open(envelope, thread, field))
        except ValueError:
            raise DecryptionError(f"value under {thread.key} is not a checkpoint record", "format") from None

    def _loads(self, typed: Sequence[str]) -> Any:
        return self.serde.loads_typed((typed[0], base64.b64decode(typed[1])))

    def _dumps(self, value: Any) -> list[str]:
        kind, data = self.serde.dumps_typed(value)
        return [kind, _b64(data)]

    # -- masking --------------------------------------------------------------------------------------------

    def _mask(self, value: Any, counts: dict[str, int]) -> Any:
        """`value` with the text of every message in it masked (lists, tuples and plain dicts are walked)."""
        if isinstance(value, BaseMessage):
            content = self._mask_content(value.content, counts)
            return value if content is value.content else value.model_copy(update={"content": content})
        if isinstance(value, list | tuple):
            items = [self._mask(v, counts) for v in value]
            if all(a is b for a, b in zip(items, value, strict=True)):
                return value
            return items if isinstance(value, list) else type(value)(items)
        if type(value) is dict:
            masked = {k: self._mask(v, counts) for k, v in value.items()}
            return value if all(masked[k] is value[k] for k in value) else masked
        return value

    def _mask_content(self, content: Any, counts: dict[str, int]) -> Any:
        apply = self._session.masker.apply
        if isinstance(content, str):
            text, found = apply(content)
            for name, n in found.items():
                counts[name] = counts.get(name, 0) + n
            return content if not found else text
        if isinstance(content, list):
            blocks: list[Any] = []
            changed = False
            for block in content:
                new = block
                if isinstance(block, str) or (isinstance(block, dict) and isinstance(block.get("text"), str)):
                    text = block if isinstance(block, str) else block["text"]
                    masked = self._mask_content(text, counts)
                    if masked is not text:
                        new = masked if isinstance(block, str) else {**block, "text": masked}
                        changed = True
                blocks.append(new)
            return blocks if changed else content
        return content

    # -- writing --------------------------------------------------------------------------------------------

    def _write(
        self,
        thread: _Thread,
        fields: dict[str, bytes],
        *,
        action: str,
        masked: dict[str, int],
        extra_reads: Sequence[Command] = (),
        build: Callable[[list[Any]], dict[str, bytes]] | None = None,
        newest: tuple[str, str] | None = None,
    ) -> None:
        """Set `fields` of `thread`'s hash (plus what `build` makes from `extra_reads`) in one audited,
        quota-checked transaction, creating the thread (its sealed id, its index entries) when it is new.
        `newest`: (ns, checkpoint id) to record as the namespace's newest when it is newer than the one stored."""
        session, config = self._session, self.memory.config
        keys = session.keys
        latest = _field("l", newest[0]) if newest else None
        quota = config.quota_keys is not None or config.quota_bytes is not None
        named = [*fields, *([latest] if latest else [])]
        reads: list[Command] = [
            *extra_reads,
            ("HMGET", thread.key, _DOC, _SUBJECT, *([latest] if latest else [])),
            *(("HSTRLEN", thread.key, f) for f in named),
            ("HMGET", keys.sizes, thread.key, self.root),
            ("HEXISTS", self.root, _DOC),
        ]
        if quota:
            reads += [("HGET", keys.usage, "bytes"), ("HLEN", keys.sizes)]
        watch = [thread.key, self.root] + ([keys.usage, keys.sizes] if quota else [])

        def plan(replies: list[Any]) -> Plan:
            built = build(replies[: len(extra_reads)]) if build else {}
            rest = replies[len(extra_reads) :]
            doc, pseudonym, *stored_latest = rest[0]
            lengths = [as_int(n) for n in rest[1 : 1 + len(named)]]
            recorded, root_doc = rest[1 + len(named)], rest[2 + len(named)]
            old = dict(zip(named, lengths, strict=True))
            writing = {**fields, **built}
            if latest and newest and (not stored_latest[0] or stored_latest[0].decode() < newest[1]):
                writing[latest] = newest[1].encode()
            commands: list[Command] = []
            delta = new_keys = 0
            if doc is None:  # a new thread: its sealed id, and its place in the index
                writing[_DOC] = self._seal(json.dumps([thread.thread_id]).encode(), thread, _DOC)
                commands.append(("HSET", self.root, thread.token, 1))
                new_keys += recorded[0] is None
            if thread.pseudonym and pseudonym is None:
                writing[_SUBJECT] = thread.pseudonym.encode()
            for name, value in writing.items():
                before = old.get(name, 0)
                delta += len(value) - before + (len(name) if not before else 0)
            commands.append(("HSET", thread.key, *(x for kv in writing.items() for x in kv)))
            commands.append(("HINCRBY", keys.sizes, thread.key, delta))
            commands += session.retention_commands(thread.key)
            if doc is None:
                root_delta = len(thread.token) + 1
                if not root_doc:
                    marker = session.cipher.seal(_MARKER, self.root, _ROOT_PLACE)
                    commands.append(("HSET", self.root, _DOC, marker))
                    root_delta += len(_DOC) + len(marker)
                    new_keys += recorded[1] is None
                commands.append(("HINCRBY", keys.sizes, self.root, root_delta))
                delta += root_delta
            commands += session.retention_commands(self.root)
            if thread.index is not None:
                commands += [("SADD", thread.index, thread.key), *session.retention_commands(thread.index)]
            if quota:
                used_bytes, used_keys = as_int(rest[3 + len(named)]), as_int(rest[4 + len(named)])
                if config.quota_keys is not None and new_keys and used_keys + new_keys > config.quota_keys:
                    raise QuotaExceededError("keys", used_keys, new_keys, config.quota_keys)
                if config.quota_bytes is not None and delta > 0 and used_bytes + delta > config.quota_bytes:
                    raise QuotaExceededError("bytes", used_bytes, delta, config.quota_bytes)
            commands.append(("HINCRBY", keys.usage, "bytes", delta))
            subject = thread.pseudonym or (pseudonym.decode() if pseudonym else "")
            return commands, session.event(AuditEvent(action, thread.key, len(writing), subject, masked))

        session.store.transact(plan, reads=reads, watch=watch, audited=session.auditing)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint, the channel values at `new_versions`, and its metadata (one transaction)."""
        configurable = config["configurable"]
        thread = self._thread(str(configurable["thread_id"]), config)
        ns = str(configurable.get("checkpoint_ns", ""))
        masked: dict[str, int] = {}
        c = dict(checkpoint)
        values: dict[str, Any] = c.pop("channel_values", {})  # type: ignore[assignment]
        fields: dict[str, bytes] = {}
        for channel, version in new_versions.items():
            name = _field("b", ns, channel, str(version))
            if channel in values:
                kind, data = self.serde.dumps_typed(self._mask(values[channel], masked))
            else:
                kind, data = "empty", b""
            fields[name] = self._seal(kind.encode() + b"\x00" + data, thread, name)
        record = {
            "p": configurable.get("checkpoint_id"),
            "c": self._dumps(c),
            "m": self._dumps(get_checkpoint_metadata(config, metadata)),
        }
        name = _field("c", ns, checkpoint["id"])
        fields[name] = self._seal(json.dumps(record).encode(), thread, name)
        self._write(thread, fields, action="checkpoint.put", masked=masked, newest=(ns, checkpoint["id"]))
        return {"configurable": {"thread_id": thread.thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes for a checkpoint. A write already stored for the same task and index is kept
        (LangGraph's rule: regular writes are idempotent, special channels such as __error__ replace)."""
        configurable = config["configurable"]
        thread = self._thread(str(configurable["thread_id"]), config)
        ns = str(configurable.get("checkpoint_ns", ""))
        name = _field("w", ns, str(configurable["checkpoint_id"]))
        masked: dict[str, int] = {}
        prepared = [
            (WRITES_IDX_MAP.get(channel, idx), channel, self._dumps(self._mask(value, masked)))
            for idx, (channel, value) in enumerate(writes)
        ]

        def build(replies: list[Any]) -> dict[str, bytes]:
            stored: dict[str, list[Any]] = {} if replies[0] is None else self._open_json(replies[0], thread, name)
            for idx, channel, typed in prepared:
                inner = f"{task_id}{SEP}{idx}"
                if idx >= 0 and inner in stored:
                    continue
                stored[inner] = [task_id, idx, channel, typed, task_path]
            return {name: self._seal(json.dumps(stored).encode(), thread, name)}

        self._write(
            thread, {}, action="checkpoint.writes", masked=masked, extra_reads=[("HGET", thread.key, name)], build=build
        )

    def _drop_thread(self, thread: _Thread, size: int, subject: str) -> list[Command]:
        """A thread's hash, its index entry, its subject-index entry and its share of the size index go."""
        keys = self._session.keys
        entry = len(thread.token) + 1
        commands: list[Command] = [
            ("DEL", thread.key),
            ("HDEL", keys.sizes, thread.key),
            ("HDEL", self.root, thread.token),
            ("HINCRBY", keys.sizes, self.root, -entry),
            ("HINCRBY", keys.usage, "bytes", -size - entry),
        ]
        if subject:
            commands.append(("SREM", contract.subject_index(keys.shared, subject), thread.key))
        return commands

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of `thread_id` (one audited transaction; nothing when it has none)."""
        thread = self._thread(str(thread_id))
        session, keys = self._session, self._session.keys

        def plan(replies: list[Any]) -> Plan:
            exists, pseudonym, recorded = replies
            if not exists and recorded is None:
                return [], None
            subject = pseudonym.decode() if pseudonym else ""
            commands = self._drop_thread(thread, as_int(recorded), subject)
            return commands, session.event(AuditEvent("checkpoint.delete", thread.key, 1, subject))

        session.store.transact(
            plan,
            reads=[("EXISTS", thread.key), ("HGET", thread.key, _SUBJECT), ("HGET", keys.sizes, thread.key)],
            watch=[thread.key, keys.sizes],
            audited=session.auditing,
        )

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, channel value and pending write of one thread to another (re-sealed for the
        target; the target joins the source's subject). Nothing happens when the source has no checkpoints."""
        source = self._thread(str(source_thread_id))
        flat = self._session.store.read([("HGETALL", source.key)])[0]
        stored = {k.decode(): v for k, v in zip(flat[::2], flat[1::2], strict=True)}
        if not any(name.startswith(f"c{SEP}") for name in stored):
            return
        pseudonym = stored.get(_SUBJECT, b"").decode()
        target = self._thread(str(target_thread_id))
        if pseudonym:
            index = contract.subject_index(self._session.keys.shared, pseudonym)
            target = _Thread(target.thread_id, target.token, target.key, pseudonym, index)
        fields: dict[str, bytes] = {}
        for name, envelope in stored.items():
            if name in (_DOC, _SUBJECT):
                continue
            if name.startswith(f"l{SEP}"):
                fields[name] = envelope
                continue
            with self._rejecting(source, pseudonym):
                plain = self._open(envelope, source, name)
            fields[name] = self._seal(plain, target, name)
        self._write(target, fields, action="checkpoint.copy", masked={})

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (with their writes, and channel values no remaining checkpoint uses) whose
        metadata names one of `run_ids`, in every thread of this area. Reads every thread: a maintenance call."""
        runs = {str(r) for r in run_ids}
        if not runs:
            return
        for thread in self._threads():
            self._rewrite(thread, lambda record: record.metadata.get("run_id") in runs, "checkpoint.delete_runs")

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """`"keep_latest"`: keep only each namespace's newest checkpoint of each thread (its writes and the channel
        values it uses); `"delete"`: delete the threads. Not DeltaChannel-aware: a delta channel's history before
        the kept checkpoint is dropped (LangGraph's caveat on `prune`), so do not prune graphs that use one."""
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: keep_latest or delete")
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_id)
                continue
            thread = self._thread(str(thread_id))
            self._rewrite(thread, None, "checkpoint.prune")

    def _rewrite(self, thread: _Thread, doomed: Callable[[_Record], bool] | None, action: str) -> None:
        """Delete checkpoints of `thread` that `doomed` picks (None: all but each namespace's newest), their
        writes, and the channel values no remaining checkpoint uses, in one audited transaction under WATCH; the
        thread goes altogether when no checkpoint remains. Reads the whole thread (a maintenance operation)."""
        session, keys = self._session, self._session.keys

        def plan(replies: list[Any]) -> Plan:
            flat, recorded = replies
            stored = {k.decode(): v for k, v in zip(flat[::2], flat[1::2], strict=True)}
            subject = stored.get(_SUBJECT, b"").decode()
            records: list[_Record] = []
            for name, envelope in stored.items():
                kind, _, rest = name.partition(SEP)
                if kind == "c":
                    ns, _, cid = rest.rpartition(SEP)
                    records.append(self._record(thread, ns, cid, envelope))
            newest: dict[str, str] = {}
            for record in records:
                newest[record.ns] = max(newest.get(record.ns, ""), record.checkpoint_id)
            if doomed is None:
                gone = [r for r in records if r.checkpoint_id != newest[r.ns]]
            else:
                gone = [r for r in records if doomed(r)]
            if not gone:
                return [], None
            kept = [r for r in records if r not in gone]
            if not kept:
                commands = self._drop_thread(thread, as_int(recorded), subject)
                return commands, session.event(AuditEvent(action, thread.key, len(gone), subject))
            used = {_field("b", r.ns, ch, str(v)) for r in kept for ch, v in _versions(r)}
            fields = [_field("c", r.ns, r.checkpoint_id) for r in gone]
            fields += [_field("w", r.ns, r.checkpoint_id) for r in gone]
            fields += [n for n in stored if n.startswith(f"b{SEP}") and n not in used]
            fields = [f for f in fields if f in stored]
            freed = sum(len(f) + len(stored[f]) for f in fields)
            commands = [("HDEL", thread.key, *fields)]
            remaining: dict[str, str] = {}
            for record in kept:
                remaining[record.ns] = max(remaining.get(record.ns, ""), record.checkpoint_id)
            for ns, cid in newest.items():
                name = _field("l", ns)
                if ns not in remaining:
                    commands.append(("HDEL", thread.key, name))
                    freed += len(name) + len(stored.get(name, b""))
                elif remaining[ns] != cid:
                    commands.append(("HSET", thread.key, name, remaining[ns]))
                    freed += len(cid) - len(remaining[ns])
            commands += [("HINCRBY", keys.sizes, thread.key, -freed), ("HINCRBY", keys.usage, "bytes", -freed)]
            return commands, session.event(AuditEvent(action, thread.key, len(gone), subject))

        session.store.transact(
            plan,
            reads=[("HGETALL", thread.key), ("HGET", keys.sizes, thread.key)],
            watch=[thread.key, keys.sizes],
            audited=session.auditing,
        )

    # -- reading --------------------------------------------------------------------------------------------

    def _record(self, thread: _Thread, ns: str, checkpoint_id: str, envelope: bytes) -> _Record:
        name = _field("c", ns, checkpoint_id)
        doc = self._open_json(envelope, thread, name)
        try:
            return _Record(ns, checkpoint_id, doc["p"], self._loads(doc["c"]), self._loads(doc["m"]))
        except (KeyError, TypeError, IndexError):
            raise DecryptionError(f"value under {thread.key} is not a checkpoint record", "format") from None

    def _tuples(self, thread: _Thread, records: Sequence[_Record], subject: str) -> list[CheckpointTuple]:
        """The full tuples of `records`: their channel values and pending writes, in one audited read."""
        wanted: list[str] = []
        for record in records:
            wanted.append(_field("w", record.ns, record.checkpoint_id))
            wanted += [_field("b", record.ns, ch, str(v)) for ch, v in _versions(record)]
        read = self._session.audited_read([("HMGET", thread.key, *wanted)], thread.key, subject)[0]
        found = dict(zip(wanted, read, strict=True))
        return [self._tuple(thread, record, found) for record in records]

    def _tuple(self, thread: _Thread, record: _Record, found: Mapping[str, bytes | None]) -> CheckpointTuple:
        """`record` with its channel values and pending writes, opened from the thread's fields in `found`."""
        values: dict[str, Any] = {}
        for channel, version in _versions(record):
            name = _field("b", record.ns, channel, str(version))
            envelope = found.get(name)
            if envelope is None:
                continue
            kind, _, data = self._open(envelope, thread, name).partition(b"\x00")
            if kind != b"empty":
                values[channel] = self.serde.loads_typed((kind.decode(), data))
        name = _field("w", record.ns, record.checkpoint_id)
        envelope = found.get(name)
        stored = {} if envelope is None else self._open_json(envelope, thread, name)
        ordered = sorted(stored.values(), key=lambda w: writes_sort_key(w[4], w[0], w[1]))
        pending: list[PendingWrite] = [(w[0], w[2], self._loads(w[3])) for w in ordered]
        return CheckpointTuple(
            config=self._config(thread, record.ns, record.checkpoint_id),
            checkpoint={**record.checkpoint, "channel_values": values},
            metadata=record.metadata,
            parent_config=self._config(thread, record.ns, record.parent) if record.parent else None,
            pending_writes=pending,
        )

    def export_thread(self, key: str) -> dict[str, Any]:
        """A thread's hash (`key`, found in a subject's index) as `AgentMemory.export_subject` exports it: the
        thread id and every checkpoint with its metadata, channel values and pending writes, JSON-ready.
        DecryptionError when a value does not open where it lies. Reads the hash once, unaudited (the export is)."""
        flat = self._session.store.read([("HGETALL", key)])[0]
        found = {k.decode(): v for k, v in zip(flat[::2], flat[1::2], strict=True)}
        token = key.rpartition(":")[2]
        probe = _Thread("", token, key, "", None)
        if _DOC not in found:
            return {}
        thread_id = str(self._open_json(found[_DOC], probe, _DOC)[0])
        thread = _Thread(thread_id, token, key, "", None)
        checkpoints: list[dict[str, Any]] = []
        for name in sorted(found):
            kind, _, rest = name.partition(SEP)
            if kind != "c":
                continue
            ns, _, cid = rest.rpartition(SEP)
            full = self._tuple(thread, self._record(thread, ns, cid, found[name]), found)
            checkpoints.append(
                {
                    "namespace": ns,
                    "id": cid,
                    "parent": full.parent_config["configurable"]["checkpoint_id"] if full.parent_config else None,
                    "metadata": jsonable(full.metadata),
                    "channelValues": jsonable(full.checkpoint["channel_values"]),
                    "pendingWrites": [jsonable(list(w)) for w in full.pending_writes or []],
                }
            )
        return {"thread": thread_id, "checkpoints": checkpoints}

    @staticmethod
    def _config(thread: _Thread, ns: str, checkpoint_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread.thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint `config` names (its newest in the namespace without a checkpoint_id), or None."""
        configurable = config["configurable"]
        thread = self._thread(str(configurable["thread_id"]))
        ns = str(configurable.get("checkpoint_ns", ""))
        store = self._session.store
        checkpoint_id = get_checkpoint_id(config)
        if not checkpoint_id:
            newest = store.read([("HGET", thread.key, _field("l", ns))])[0]
            if newest is None:
                self._session.audit_read(thread.key, "", 0)
                return None
            checkpoint_id = newest.decode()
        envelope, pseudonym = store.read([("HMGET", thread.key, _field("c", ns, checkpoint_id), _SUBJECT)])[0]
        subject = pseudonym.decode() if pseudonym else ""
        if envelope is None:
            self._session.audit_read(thread.key, subject, 0)
            return None
        with self._rejecting(thread, subject):
            return self._tuples(thread, [self._record(thread, ns, checkpoint_id, envelope)], subject)[0]

    @contextlib.contextmanager
    def _rejecting(self, thread: _Thread, subject: str) -> Iterator[None]:
        """A value that does not open is counted in a "read.rejected" event, then raised: a thread edited around
        the library is not served."""
        try:
            yield
        except DecryptionError:
            self._session.audit_rejected(thread.key, subject, 1)
            raise

    def _threads(self) -> list[_Thread]:
        """Every thread in the index (its ids opened from the threads' own hashes); tokens whose hash is gone
        (expired, erased) are dropped from the index."""
        store = self._session.store
        tokens = [t.decode() for t in store.read([("HKEYS", self.root)])[0] if t != _DOC.encode()]
        if not tokens:
            return []
        docs = store.read([("HGET", f"{self.root}:{token}", _DOC) for token in tokens])
        threads: list[_Thread] = []
        gone: list[str] = []
        for token, doc in zip(tokens, docs, strict=True):
            if doc is None:
                gone.append(token)
                continue
            probe = _Thread("", token, f"{self.root}:{token}", "", None)
            with self._rejecting(probe, ""):
                thread_id = self._open_json(doc, probe, _DOC)[0]
            thread = self._thread(str(thread_id))
            if thread.token != token:
                self._session.audit_rejected(probe.key, "", 1)
                raise DecryptionError(f"thread under {probe.key} was sealed for another thread", "misplaced")
            threads.append(thread)
        if gone:
            self._forget(gone)
        return threads

    def _forget(self, tokens: Sequence[str]) -> None:
        """Drop index entries of threads whose hash is gone, as still found under WATCH (audited "checkpoint.prune")."""
        session, keys = self._session, self._session.keys
        thread_keys = [f"{self.root}:{t}" for t in tokens]

        def plan(replies: list[Any]) -> Plan:
            gone = [t for t, n in zip(tokens, replies, strict=True) if not n]
            if not gone:
                return [], None
            freed = sum(len(t) + 1 for t in gone)
            commands: list[Command] = [
                ("HDEL", self.root, *gone),
                ("HINCRBY", keys.sizes, self.root, -freed),
                ("HINCRBY", keys.usage, "bytes", -freed),
            ]
            return commands, session.event(AuditEvent("checkpoint.prune", self.root, len(gone)))

        session.store.transact(
            plan, reads=[("EXISTS", k) for k in thread_keys], watch=thread_keys, audited=session.auditing
        )

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first: of the thread (and namespace, and checkpoint id) `config` names, or of every
        thread with `config=None`; `filter` matches metadata values exactly, `before` a checkpoint id bound."""
        configurable = (config or {}).get("configurable") or {}
        threads = [self._thread(str(configurable["thread_id"]))] if "thread_id" in configurable else self._threads()
        only_ns = configurable.get("checkpoint_ns")
        only_id = get_checkpoint_id(config) if config else None
        bound = get_checkpoint_id(before) if before else None
        left = limit
        store = self._session.store
        for thread in threads:
            if left is not None and left <= 0:
                return
            names = [n.decode() for n in store.read([("HKEYS", thread.key)])[0]]
            found: list[tuple[str, str]] = []
            for name in names:
                kind, _, rest = name.partition(SEP)
                if kind != "c":
                    continue
                ns, _, checkpoint_id = rest.rpartition(SEP)
                if only_ns is not None and ns != only_ns:
                    continue
                if (only_id and checkpoint_id != only_id) or (bound and checkpoint_id >= bound):
                    continue
                found.append((ns, checkpoint_id))
            if not found:
                continue
            found.sort(key=lambda x: x[1], reverse=True)
            reply = store.read([("HMGET", thread.key, _SUBJECT, *(_field("c", ns, cid) for ns, cid in found))])[0]
            subject = reply[0].decode() if reply[0] else ""
            records: list[_Record] = []
            for (ns, cid), envelope in zip(found, reply[1:], strict=True):
                if envelope is None:
                    continue
                with self._rejecting(thread, subject):
                    record = self._record(thread, ns, cid, envelope)
                if filter and not all(record.metadata.get(k) == v for k, v in filter.items()):
                    continue
                records.append(record)
                if left is not None and len(records) >= left:
                    break
            if left is not None:
                left -= len(records)
            if records:
                with self._rejecting(thread, subject):
                    tuples = self._tuples(thread, records, subject)
                yield from tuples

    # -- versions -------------------------------------------------------------------------------------------

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Versions as LangGraph's own savers make them: a zero-padded counter (sortable as text), then a random
        fraction so concurrent forks of a thread do not collide."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"  # noqa: S311 - tells forks apart, guards nothing

    # -- async ----------------------------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = await asyncio.to_thread(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, list(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(lambda: self.prune(list(thread_ids), strategy=strategy))
