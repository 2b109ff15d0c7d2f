"""`TenantStore`: LangGraph's `BaseStore` (long-term memory by namespace) inside the tenant's namespace.

Plain Valkey/Redis, no modules and no SCAN (the tenant's users may not run it): items are found through index keys
the store keeps itself. Everything is written with the library's own steps: values masked per the policy and
sealed with the tenant keyring, every write and read an audited transaction, quota checked before anything is
written, each data key in the `sizes` index the operator's jobs and survey count, TTLs capped by the retention.

Key layout (B = the agent's own area ``A lg:``, or ``S lg:`` with ``shared=True``; tokens are keyed pseudonyms,
HMAC-SHA256 under the keyring's pseudonym key like a subject's, so neither namespaces nor keys appear in names)::

    B it:{item}      string  envelope(JSON {ns, key, value, created, updated, ttl}), sealed for its key and for
                             its namespace's token (a value moved to another item or namespace fails to open)
    B ns:{ns}        hash    d = envelope(the namespace's labels); i:{item} = the item's deadline in ms (0: none)
    B ns             hash    d = envelope(the index's format marker); {ns} = 1 for each namespace with items

Every key above is in the `sizes` index and sealed where the operator's survey looks (a string, a hash's `d`).
An item's TTL is its put's `ttl` (minutes) but never beyond the retention from its last write; under a retention
the index hashes get it from every write too, so nothing outlives the index that finds it. A write costs its own
items' entries, never the namespace's size. Reads skip entries of expired items; the next listing or search
drops them, namespaces left without items, and root entries of namespaces whose hash is gone (expired, erased).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, cast

from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    validate_op_namespace,
)

from memory_client._client import AgentMemory
from memory_client._messages import mask_values
from memory_client._resp import Command
from memory_client._session import Session, as_int
from memory_client._store import Plan
from memory_client.audit import AuditEvent
from memory_client.contract import DAY_MS
from memory_client.errors import AgentMemoryError, DecryptionError, QuotaExceededError
from memory_client.langgraph._area import area_of

__all__ = ["InvalidFilterError", "Namespace", "SearchNotSupportedError", "TenantStore", "subject_at"]

Namespace = tuple[str, ...]
SubjectOf = Callable[[Namespace], str | None]

_ROOT_PLACE: Final = b"lg-root"
_NAME_PLACE: Final = b"lg-ns"
_MARKER: Final = b'{"format":1,"kind":"langgraph-store"}'
_ENTRY: Final = "i:"
_DOC: Final = "d"
_MINUTE_MS: Final = 60_000
_OPERATORS: Final = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"})


class SearchNotSupportedError(AgentMemoryError, NotImplementedError):
    """A search asked for what this store does not do: natural-language (vector) search (`query=`)."""


class InvalidFilterError(AgentMemoryError, ValueError):
    """A search filter uses an operator other than $eq, $ne, $gt, $gte, $lt, $lte."""


def subject_at(position: int) -> SubjectOf:
    """The data subject of a namespace is its label at `position`, e.g. ``subject_at(1)`` for
    ``("memories", "<user id>")``; namespaces too short to have one belong to no subject."""

    def subject(namespace: Namespace) -> str | None:
        return namespace[position] if len(namespace) > position else None

    return subject


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True)
class _Space:
    """One namespace's keys and subject."""

    labels: Namespace
    token: str
    key: str
    subject: str | None
    pseudonym: str
    index: str | None  # the subject's index set

    def exported(self, key: str, stored: _Stored) -> dict[str, Any]:
        """An item of this namespace as `export_subject` returns it."""
        return {
            "namespace": list(self.labels),
            "key": key,
            "value": stored.value,
            "createdAt": _when(stored.created).isoformat(),
            "updatedAt": _when(stored.updated).isoformat(),
        }


@dataclass(frozen=True)
class _Stored:
    """An item as sealed: its value (masked), times in ms and its TTL in minutes (None: none)."""

    value: dict[str, Any]
    created: int
    updated: int
    ttl: float | None

    def search_item(self, space: _Space, key: str) -> SearchItem:
        return SearchItem(space.labels, key, self.value, _when(self.created), _when(self.updated))

    def item(self, space: _Space, key: str) -> Item:
        return Item(
            value=self.value,
            key=key,
            namespace=space.labels,
            created_at=_when(self.created),
            updated_at=_when(self.updated),
        )


@dataclass
class _Listing:
    """What the namespace index holds, read and opened: live namespaces with their live item tokens."""

    spaces: dict[str, _Space] = field(default_factory=dict)
    items: dict[str, list[str]] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)  # tokens whose namespace hash is gone
    expired: list[_Space] = field(default_factory=list)  # namespaces holding entries of expired items


class TenantStore(BaseStore):
    """LangGraph long-term memory (`BaseStore`) in the tenant's namespace, for one agent (or the shared area).

    `memory`: an `AgentMemory` (its credentials, keyring, policy and audit setting). `agent`: whose area holds the
    items (default the Secret's MEMORY_AGENT_ID; tenant credentials must name one). `shared=True`: the tenant's
    shared area instead, which every agent of the tenant reaches under every isolation level, like shared contexts.
    `subject`: which namespaces hold a data subject's data (`subject_at(i)`, or any function of the namespace):
    their items join the subject's index, so `AgentMemory.erase_subject` deletes them. `ttl`: LangGraph's
    TTLConfig (`default_ttl` in minutes, `refresh_on_read`); expired items are always omitted (Redis expires them).

    Search filters on the stored (masked) values; results are ordered by last update, newest first. `query=`
    (vector search) raises SearchNotSupportedError, and a put's `index=` is ignored: there are no embeddings.
    """

    supports_ttl: bool = True

    def __init__(
        self,
        memory: AgentMemory,
        *,
        agent: str | None = None,
        shared: bool = False,
        subject: SubjectOf | None = None,
        ttl: TTLConfig | None = None,
    ) -> None:
        self.memory = memory
        # The handles' building blocks (store, keys, cipher, masker): the store is one more handle of `memory`.
        self._session: Session = memory._session
        config = memory.config
        self.prefix = f"{area_of(memory, agent, shared)}lg:"
        self.root = f"{self.prefix}ns"
        self._subject = subject
        self.ttl_config = ttl
        days = config.retention_days
        self._retention_ms = None if days is None else days * DAY_MS

    # -- names --------------------------------------------------------------------------------------------

    def _token(self, kind: str, parts: Sequence[Any]) -> str:
        return self._session.keys.subject_token(f"\x00langgraph.store.{kind}\x00{json.dumps(list(parts))}")

    def _space(self, labels: Namespace) -> _Space:
        token = self._token("namespace", labels)
        subject = self._subject(labels) if self._subject is not None else None
        if subject is None:
            return _Space(labels, token, f"{self.prefix}ns:{token}", None, "", None)
        keys = self._session.keys
        return _Space(
            labels, token, f"{self.prefix}ns:{token}", subject, keys.subject_token(subject), keys.subject_index(subject)
        )

    def _item_token(self, labels: Namespace, key: str) -> str:
        return self._token("item", [list(labels), key])

    def _item_key(self, token: str) -> str:
        return f"{self.prefix}it:{token}"

    # -- sealing --------------------------------------------------------------------------------------------

    def _open_item(self, envelope: bytes, space: _Space, token: str, key: str | None) -> tuple[str, _Stored]:
        """An item's key and contents; DecryptionError when it is not the one sealed for this place."""
        redis_key = self._item_key(token)
        plain = self._session.cipher.open(envelope, redis_key, space.token.encode())
        try:
            doc = json.loads(plain)
            labels, found = tuple(doc["ns"]), str(doc["key"])
            stored = _Stored(dict(doc["value"]), int(doc["c"]), int(doc["u"]), doc.get("t"))
        except (ValueError, KeyError, TypeError):
            raise DecryptionError(f"value under {redis_key} is not a store item", "format") from None
        if labels != space.labels or (key is not None and found != key):
            raise DecryptionError(f"value under {redis_key} belongs to another item", "misplaced")
        return found, stored

    def export_item(self, key: str) -> dict[str, Any]:
        """An item (`key`, found in a subject's index) as `AgentMemory.export_subject` exports it: namespace, key,
        value and times; {} when it is gone. DecryptionError when it was not sealed for its namespace and key."""
        envelope = self._session.store.read([("GET", key)])[0]
        if envelope is None:
            return {}
        try:
            labels = tuple(str(label) for label in json.loads(self._session.cipher.unseal(envelope, key).plain)["ns"])
        except (ValueError, KeyError, TypeError):
            raise DecryptionError(f"value under {key} is not a store item", "format") from None
        space = self._space(labels)
        return space.exported(*self._open_item(envelope, space, key.rpartition(":")[2], None))

    def _open_name(self, space_key: str, token: str, envelope: bytes) -> Namespace:
        plain = self._session.cipher.open(envelope, space_key, _NAME_PLACE)
        try:
            labels = tuple(str(label) for label in json.loads(plain))
        except (ValueError, TypeError):
            raise DecryptionError(f"namespace under {space_key} is not a namespace", "format") from None
        if self._token("namespace", labels) != token:
            raise DecryptionError(f"namespace under {space_key} was sealed for another one", "misplaced")
        return labels

    # -- time -----------------------------------------------------------------------------------------------

    def _deadline(self, now: int, updated: int, ttl: float | None) -> int | None:
        """When an item expires: its TTL from now, never later than the retention from its last write."""
        ends = [] if ttl is None else [now + max(1, math.ceil(ttl * _MINUTE_MS))]
        if self._retention_ms is not None:
            ends.append(updated + self._retention_ms)
        return min(ends) if ends else None

    # -- batch ----------------------------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run `ops` in order. Consecutive gets and consecutive puts are grouped by namespace: one audited
        transaction per namespace (puts: one for writes, one for deletions), so a group is all or nothing."""
        todo = list(ops)
        for op in todo:
            validate_op_namespace(op)
            if isinstance(op, PutOp) and not op.namespace:
                raise InvalidNamespaceError("Namespace cannot be empty.")
            if isinstance(op, SearchOp) and op.query:
                raise SearchNotSupportedError(
                    "TenantStore has no vector index: search by namespace and filter, without query="
                )
        results: list[Result] = [None] * len(todo)
        at = 0
        while at < len(todo):
            op = todo[at]
            end = at + 1
            if isinstance(op, GetOp | PutOp):
                while end < len(todo) and type(todo[end]) is type(op):
                    end += 1
            if isinstance(op, GetOp):
                self._gets(todo, range(at, end), results)
            elif isinstance(op, PutOp):
                self._puts([cast(PutOp, todo[i]) for i in range(at, end)])
            elif isinstance(op, SearchOp):
                results[at] = self._search(op)
            elif isinstance(op, ListNamespacesOp):
                results[at] = self._list(op)
            else:
                raise TypeError(f"unknown store operation {type(op).__name__}")
            at = end
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """`batch` on a worker thread (the library is synchronous), so the event loop never blocks."""
        return await asyncio.to_thread(self.batch, list(ops))

    # -- writing --------------------------------------------------------------------------------------------

    def _puts(self, ops: Sequence[PutOp]) -> None:
        latest: dict[tuple[Namespace, str], PutOp] = {}
        for op in ops:  # the last write of an item in a batch wins, as in LangGraph's own stores
            latest.pop((op.namespace, op.key), None)
            latest[(op.namespace, op.key)] = op
        groups: dict[Namespace, list[PutOp]] = {}
        for op in latest.values():
            groups.setdefault(op.namespace, []).append(op)
        for labels, group in groups.items():
            space = self._space(labels)
            writes = [op for op in group if op.value is not None]
            deletes = [op for op in group if op.value is None]
            if writes:
                self._write(space, writes, delete=False)
            if deletes:
                self._write(space, deletes, delete=True)

    def _write(self, space: _Space, ops: Sequence[PutOp], *, delete: bool) -> None:
        """Write (or delete) items of one namespace in one audited, quota-checked transaction. O(items written):
        only their own index entries are read, never the whole namespace (see `_tidy` for expired entries)."""
        session, config = self._session, self.memory.config
        keys = session.keys
        tokens = [self._item_token(space.labels, op.key) for op in ops]
        item_keys = [self._item_key(t) for t in tokens]
        entries = [f"{_ENTRY}{t}" for t in tokens]
        # Masked before the transaction: the quota check needs the sizes, and a retry must not mask twice.
        masked: dict[str, int] = {}
        values = [] if delete else [mask_values(session.masker.apply, dict(op.value or {}), masked) for op in ops]
        quota = config.quota_keys is not None or config.quota_bytes is not None
        reads: list[Command] = [
            ("HMGET", space.key, _DOC, *entries),
            ("HLEN", space.key),
            ("MGET", *item_keys),
            ("HMGET", keys.sizes, space.key, self.root, *item_keys),
            ("HEXISTS", self.root, _DOC),
        ]
        if quota:
            reads += [("HGET", keys.usage, "bytes"), ("HLEN", keys.sizes)]
        watch = [space.key, *item_keys] + ([keys.usage, keys.sizes] if quota else [])

        def plan(replies: list[Any]) -> Plan:
            now = _now_ms()
            (name, *old_entries), held, old_items, recorded, root_doc = replies[:5]
            space_size, root_size, *item_sizes = (as_int(v) for v in recorded)
            item_known = [v is not None for v in recorded[2:]]
            if delete and not any(
                old is not None or known or entry is not None
                for old, known, entry in zip(old_items, item_known, old_entries, strict=True)
            ):
                return [], None  # nothing to delete: nothing written, nothing to record
            commands: list[Command] = []
            index_set: list[bytes | str] = []  # entries (field, value) this write sets
            index_del: list[str] = []
            space_delta = deltas = new_keys = 0
            remaining = int(held) - (name is not None)  # entries after this write (expired ones included)
            for i, op in enumerate(ops):
                old_entry = old_entries[i]
                if delete:
                    if old_entry is not None:
                        index_del.append(entries[i])
                        space_delta -= len(entries[i]) + len(old_entry)
                        remaining -= 1
                    if old_items[i] is not None or item_known[i]:
                        commands += [("DEL", item_keys[i]), ("HDEL", keys.sizes, item_keys[i])]
                        deltas -= item_sizes[i]
                    if space.index is not None:
                        commands.append(("SREM", space.index, item_keys[i]))
                    continue
                created = now
                if old_items[i] is not None:
                    # A value that does not open is replaced below; its creation time is lost with it.
                    with contextlib.suppress(DecryptionError):
                        created = self._open_item(old_items[i], space, tokens[i], op.key)[1].created
                doc = {"ns": list(space.labels), "key": op.key, "value": values[i], "c": created, "u": now}
                if op.ttl is not None:
                    doc["t"] = op.ttl
                plain = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
                envelope = session.cipher.seal(plain, item_keys[i], space.token.encode())
                deadline = self._deadline(now, now, op.ttl)
                if deadline is None:
                    commands.append(("SET", item_keys[i], envelope))
                else:
                    commands.append(("SET", item_keys[i], envelope, "PX", deadline - now))
                entry_value = b"%d" % (deadline or 0)
                index_set += [entries[i], entry_value]
                if old_entry is None:
                    space_delta += len(entries[i]) + len(entry_value)
                    remaining += 1
                else:
                    space_delta += len(entry_value) - len(old_entry)
                size = len(envelope)
                commands.append(("HINCRBY", keys.sizes, item_keys[i], size - item_sizes[i]))
                deltas += size - item_sizes[i]
                new_keys += not item_known[i]
                if space.index is not None:
                    commands.append(("SADD", space.index, item_keys[i]))
            if remaining > 0:
                if name is None:  # a new namespace: its sealed name, its place in the index root
                    name = session.cipher.seal(json.dumps(list(space.labels)).encode(), space.key, _NAME_PLACE)
                    commands.append(("HSET", space.key, _DOC, name))
                    space_delta += len(_DOC) + len(name) + len(space.token) + 1 - (space_size if held == 0 else 0)
                    commands.append(("HSET", self.root, space.token, 1))
                    new_keys += recorded[0] is None
                if index_del:
                    commands.append(("HDEL", space.key, *index_del))
                if index_set:
                    commands.append(("HSET", space.key, *index_set))
                commands.append(("HINCRBY", keys.sizes, space.key, space_delta))
                deltas += space_delta
                commands += session.retention_commands(space.key)
                if not root_doc:
                    marker = session.cipher.seal(_MARKER, self.root, _ROOT_PLACE)
                    commands.append(("HSET", self.root, _DOC, marker))
                    commands.append(("HINCRBY", keys.sizes, self.root, len(marker) - root_size))
                    deltas += len(marker) - root_size
                    new_keys += recorded[1] is None
                commands += session.retention_commands(self.root)
                if space.index is not None:
                    commands += [("SADD", space.index, space.key), *session.retention_commands(space.index)]
            elif held or recorded[0] is not None:  # the namespace holds no item any more
                commands += self._drop_space(space, space_size)
                deltas -= space_size
            if quota:
                used_bytes, used_keys = as_int(replies[5]), as_int(replies[6])
                if config.quota_keys is not None and new_keys and used_keys + new_keys > config.quota_keys:
                    raise QuotaExceededError("keys", used_keys, new_keys, config.quota_keys)
                if config.quota_bytes is not None and deltas > 0 and used_bytes + deltas > config.quota_bytes:
                    raise QuotaExceededError("bytes", used_bytes, deltas, config.quota_bytes)
            commands.append(("HINCRBY", keys.usage, "bytes", deltas))
            action = "store.delete" if delete else "store.put"
            return commands, session.event(AuditEvent(action, space.key, len(ops), space.pseudonym, masked))

        session.store.transact(plan, reads=reads, watch=watch, audited=session.auditing)

    def _drop_space(self, space: _Space, recorded: int) -> list[Command]:
        """A namespace without items: its hash, its index entries and its share of the size index go."""
        keys = self._session.keys
        commands: list[Command] = [
            ("DEL", space.key),
            ("HDEL", keys.sizes, space.key),
            ("HDEL", self.root, space.token),
        ]
        if space.index is not None:
            commands.append(("SREM", space.index, space.key))
        return commands

    # -- reading --------------------------------------------------------------------------------------------

    def _refresh(self, op_refresh: bool | None) -> bool:
        if op_refresh is not None and not op_refresh:
            return False
        return self.ttl_config is None or self.ttl_config.get("refresh_on_read", True)

    def _read(
        self,
        found: list[tuple[_Space, str, str]],
        refresh: bool,
        target: str,
        pseudonym: str,
        count: Callable[[list[tuple[_Space, str, _Stored]]], int],
    ) -> list[tuple[_Space, str, _Stored] | None]:
        """Read items (space, token, key or "" for any) in one audited transaction; refresh the TTLs of the ones
        that have one (`refresh`). A value that does not open raises DecryptionError (after a "read.rejected"
        event): a store edited around the library is not served."""
        session = self._session
        item_keys = [self._item_key(token) for _, token, _ in found]
        if not item_keys:
            session.audit_read(target, pseudonym, 0)
            return []
        spaces = sorted({space.key for space, _, _ in found})
        reads: list[Command] = [("MGET", *item_keys), *(("EXISTS", key) for key in spaces)]
        watch = [*item_keys, *spaces] if refresh else []
        out: list[tuple[_Space, str, _Stored] | None] = []
        rejected: list[DecryptionError] = []

        def plan(replies: list[Any]) -> Plan:
            out.clear()
            rejected.clear()
            now = _now_ms()
            alive = {key for key, n in zip(spaces, replies[1:], strict=True) if n}
            commands: list[Command] = []
            for (space, token, key), envelope in zip(found, replies[0], strict=True):
                if envelope is None:
                    out.append(None)
                    continue
                try:
                    name, stored = self._open_item(envelope, space, token, key or None)
                except DecryptionError as exc:
                    rejected.append(exc)
                    out.append(None)
                    continue
                out.append((space, name, stored))
                if refresh and stored.ttl is not None and space.key in alive:
                    deadline = self._deadline(now, stored.updated, stored.ttl)
                    if deadline is not None and deadline > now:
                        commands += [
                            ("PEXPIRE", self._item_key(token), deadline - now),
                            ("HSET", space.key, f"{_ENTRY}{token}", deadline),
                        ]
            logged = session.auditing and session.config.access_logging
            event = AuditEvent("read", target, count([x for x in out if x is not None]), pseudonym)
            if rejected:  # nothing refreshed when the read fails
                return [], None
            return commands, event if logged else None

        session.store.transact(plan, reads=reads, watch=watch, audited=session.auditing)
        if rejected:
            session.audit_rejected(target, pseudonym, len(rejected))
            raise rejected[0]
        return out

    def _gets(self, ops: Sequence[Op], positions: range, results: list[Result]) -> None:
        groups: dict[Namespace, list[int]] = {}
        for i in positions:
            op = ops[i]
            assert isinstance(op, GetOp)
            groups.setdefault(op.namespace, []).append(i)
        for labels, where in groups.items():
            space = self._space(labels)
            gets = [cast(GetOp, ops[i]) for i in where]
            found = [(space, self._item_token(labels, op.key), op.key) for op in gets]
            refresh = any(self._refresh(op.refresh_ttl) for op in gets)
            read = self._read(found, refresh, space.key, space.pseudonym, len)
            for i, got in zip(where, read, strict=True):
                results[i] = None if got is None else got[2].item(got[0], got[1])

    def _listing(self, wanted: Callable[[Namespace], bool]) -> _Listing:
        """The live namespaces `wanted` says are of interest, with their live items. Three round trips: the index
        root, every namespace's name, then the entries of the wanted ones only (a search reads its own namespaces'
        entries, never the whole store's)."""
        listing = _Listing()
        session = self._session
        tokens = [t.decode() for t in session.store.read([("HKEYS", self.root)])[0] if t != _DOC.encode()]
        if not tokens:
            return listing
        names = session.store.read(
            [
                c
                for token in tokens
                for c in (("HGET", f"{self.prefix}ns:{token}", _DOC), ("EXISTS", f"{self.prefix}ns:{token}"))
            ]
        )
        spaces: list[_Space] = []
        for token, name, exists in zip(tokens, names[::2], names[1::2], strict=True):
            space_key = f"{self.prefix}ns:{token}"
            if not exists:
                listing.stale.append(token)
                continue
            try:
                if name is None:
                    raise DecryptionError(f"namespace under {space_key} has no name", "format")
                labels = self._open_name(space_key, token, name)
            except DecryptionError:
                session.audit_rejected(space_key, "", 1)
                raise
            if wanted(labels):
                spaces.append(self._space(labels))
        if not spaces:
            return listing
        hashes = session.store.read([("HGETALL", space.key) for space in spaces])
        now = _now_ms()
        for space, flat in zip(spaces, hashes, strict=True):
            entries = {
                flat[i][len(_ENTRY) :].decode(): int(flat[i + 1] or 0)
                for i in range(0, len(flat) - 1, 2)
                if flat[i].startswith(b"i:")
            }
            live = [item for item, deadline in entries.items() if deadline == 0 or deadline > now]
            if live:
                listing.spaces[space.token] = space
                listing.items[space.token] = live
            if len(live) < len(entries):
                listing.expired.append(space)
        return listing

    def _tidy(self, listing: _Listing) -> None:
        """After a listing: drop the entries of expired items, namespaces left without items, and the index
        root's entries of namespaces whose hash is gone (expired or erased), each as still found under WATCH.
        One audited "store.prune" transaction; nothing when there is nothing to drop."""
        if not listing.stale and not listing.expired:
            return
        session, keys = self._session, self._session.keys
        stale = [f"{self.prefix}ns:{token}" for token in listing.stale]
        spaces = listing.expired
        reads: list[Command] = [("EXISTS", key) for key in stale]
        reads += [("HGETALL", space.key) for space in spaces]
        reads += [("HMGET", keys.sizes, *(space.key for space in spaces))] if spaces else []
        watch = [*stale, *(space.key for space in spaces)]

        def plan(replies: list[Any]) -> Plan:
            now = _now_ms()
            commands: list[Command] = []
            gone = [token for token, n in zip(listing.stale, replies, strict=False) if not n]
            if gone:
                commands.append(("HDEL", self.root, *gone))
            hashes = replies[len(stale) : len(stale) + len(spaces)]
            recorded = [as_int(v) for v in replies[-1]] if spaces else []
            released = dropped = 0
            for space, flat, size in zip(spaces, hashes, recorded, strict=True):
                fields = dict(zip(flat[::2], flat[1::2], strict=True))
                entries = {k: int(v or 0) for k, v in fields.items() if k.startswith(_ENTRY.encode())}
                expired = [k for k, deadline in entries.items() if 0 < deadline <= now]
                if not fields or not expired:
                    continue
                dropped += len(expired)
                if len(expired) == len(entries):
                    commands += self._drop_space(space, size)
                    released += size
                    continue
                freed = sum(len(k) + len(fields[k]) for k in expired)
                commands += [("HDEL", space.key, *expired), ("HINCRBY", keys.sizes, space.key, -freed)]
                released += freed
            if not commands:
                return [], None
            if released:
                commands.append(("HINCRBY", keys.usage, "bytes", -released))
            event = AuditEvent("store.prune", self.root, len(gone) + dropped)
            return commands, session.event(event)

        session.store.transact(plan, reads=reads, watch=watch, audited=session.auditing)

    def _search(self, op: SearchOp) -> list[SearchItem]:
        if op.filter:
            _check_filter(op.filter)
        n, prefix = len(op.namespace_prefix), tuple(op.namespace_prefix)
        listing = self._listing(lambda labels: labels[:n] == prefix)
        self._tidy(listing)
        found = [(space, token, "") for ns_token, space in listing.spaces.items() for token in listing.items[ns_token]]
        subjects = {space.pseudonym for space, _, _ in found}
        pseudonym = subjects.pop() if len(subjects) == 1 else ""
        target = found[0][0].key if len({s.key for s, _, _ in found}) == 1 else self.root
        page: list[tuple[_Space, str, _Stored]] = []

        def select(read: list[tuple[_Space, str, _Stored]]) -> int:
            matching = [x for x in read if not op.filter or _matches(x[2].value, op.filter)]
            matching.sort(key=lambda x: (-x[2].updated, x[0].labels, x[1]))
            page[:] = matching[op.offset : op.offset + op.limit] if op.limit >= 0 else matching[op.offset :]
            return len(page)

        # TTLs are refreshed for every item read, not only the page returned: one transaction reads and refreshes.
        self._read(found, self._refresh(op.refresh_ttl), target, pseudonym, select)
        return [stored.search_item(space, key) for space, key, stored in page]

    def _list(self, op: ListNamespacesOp) -> list[Namespace]:
        listing = self._listing(lambda labels: all(_does_match(c, labels) for c in op.match_conditions or ()))
        self._tidy(listing)
        names = [space.labels for space in listing.spaces.values()]
        names = sorted({ns[: op.max_depth] for ns in names} if op.max_depth is not None else names)
        page = names[op.offset : op.offset + op.limit]
        self._session.audit_read(self.root, "", len(page))
        return page

    # -- subject rights -------------------------------------------------------------------------------------

    def export_subject(self, subject: str) -> list[dict[str, Any]]:
        """The items of `subject` this store holds (namespace, key, value, times), read through its index;
        audited as one "read". What `AgentMemory.export_subject` should include for store items."""
        session = self._session
        index = session.keys.subject_index(subject)
        members = sorted(m.decode() for m in session.store.read([("SMEMBERS", index)])[0])
        spaces = [m for m in members if m.startswith(f"{self.prefix}ns:")]
        if not spaces:
            session.audit_read(index, session.keys.subject_token(subject), 0)
            return []
        hashes = session.store.read([("HGETALL", key) for key in spaces])
        found: list[tuple[_Space, str, str]] = []
        for space_key, flat in zip(spaces, hashes, strict=True):
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            if _DOC.encode() not in fields:
                continue
            token = space_key.rpartition(":")[2]
            space = self._space(self._open_name(space_key, token, fields[_DOC.encode()]))
            for name in fields:
                if name.startswith(_ENTRY.encode()):
                    found.append((space, name.decode()[len(_ENTRY) :], ""))
        read = self._read(found, False, index, session.keys.subject_token(subject), len)
        return [space.exported(key, stored) for space, key, stored in (x for x in read if x is not None)]


# -- filters (LangGraph's documented semantics, as its InMemoryStore applies them) ------------------------------


def _check_filter(spec: Mapping[str, Any]) -> None:
    for value in spec.values():
        if isinstance(value, dict):
            unknown = sorted(k for k in value if k.startswith("$") and k not in _OPERATORS)
            if unknown:
                raise InvalidFilterError(f"unsupported filter operator(s) {unknown}; supported: {sorted(_OPERATORS)}")
            if not any(k.startswith("$") for k in value):
                _check_filter(value)


def _matches(value: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    return all(_compare(value.get(key), wanted) for key, wanted in spec.items())


def _compare(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict):
        if any(k.startswith("$") for k in wanted):
            return all(_apply(actual, op, operand) for op, operand in wanted.items())
        return isinstance(actual, dict) and all(_compare(actual.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list | tuple):
        return (
            isinstance(actual, list | tuple)
            and len(actual) == len(wanted)
            and all(_compare(a, w) for a, w in zip(actual, wanted, strict=True))
        )
    return bool(actual == wanted)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _apply(actual: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return bool(actual == operand)
    if op == "$ne":
        return bool(actual != operand)
    left, right = _number(actual), _number(operand)
    if left is None or right is None:  # an order between non-numbers (or a missing field) matches nothing
        return False
    if op == "$gt":
        return left > right
    if op == "$gte":
        return left >= right
    if op == "$lt":
        return left < right
    return left <= right  # $lte (operators are checked before the search runs)


def _does_match(condition: MatchCondition, labels: Namespace) -> bool:
    path = condition.path
    if len(labels) < len(path):
        return False
    if condition.match_type == "prefix":
        pairs = zip(labels, path, strict=False)
    elif condition.match_type == "suffix":
        pairs = zip(reversed(labels), reversed(path), strict=False)
    else:
        raise ValueError(f"unsupported match type {condition.match_type!r}")
    return all(p in ("*", label) for label, p in pairs)
